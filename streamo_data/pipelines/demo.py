"""The main job on the bundled sample, end to end with the offline annotator: what `make demo` runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streamo_data.core.schema import ReleaseManifest
from streamo_data.corpus.tasks import BUILDERS
from streamo_data.release.validate import ValidationReport, validate_release
from streamo_data.release.write import write_release
from streamo_data.runtime.runner import Executor
from streamo_data.sources.sample_data import make_sample_videos
from streamo_data.stages.annotate_offline import run_annotate_offline
from streamo_data.stages.build import run_build
from streamo_data.stages.ingest import run_ingest
from streamo_data.stages.summary import StageSummary
from streamo_data.store.workdir import SAMPLES

DEMO_TASKS = list(BUILDERS)  # every task; action captioning finds no action events in the sample


@dataclass
class DemoResult:
    video_dir: Path
    work_dir: Path
    release_dir: Path
    ingest: StageSummary
    annotate: StageSummary
    build: StageSummary
    manifest: ReleaseManifest
    validation: ValidationReport


def run_demo(out_dir: Path, executor: Executor, fps: float = 1.0, seed: int = 0) -> DemoResult:
    video_dir, work_dir, release_dir = out_dir / "videos", out_dir / "work", out_dir / "release"
    make_sample_videos(video_dir, seed=seed, with_broken=True)
    ingest = run_ingest(video_dir, work_dir, fps, executor)
    annotate = run_annotate_offline(work_dir, executor)
    build = run_build(work_dir, DEMO_TASKS, seed, executor)
    manifest = write_release(work_dir / SAMPLES, release_dir, name="streamo-demo", validation_fraction=0.25,
                             seed=seed)
    return DemoResult(video_dir, work_dir, release_dir, ingest, annotate, build, manifest,
                      validate_release(release_dir))
