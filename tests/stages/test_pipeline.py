"""End to end on real video files: the demo path, bad files beside good ones, and the Ray path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import load_dataset
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.schema import StreamingSample
from streamo_data.runtime.runner import Executor
from streamo_data.stages.annotate_offline import run_annotate_offline
from streamo_data.stages.build import run_build
from streamo_data.stages.ingest import run_ingest
from streamo_data.store.tables import iter_rows
from tests.video.test_video import write_truncated_avi

LOCAL = Executor(kind="local")
TASKS = ["temporal_grounding", "dense_captioning"]


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_end_to_end_to_a_release_that_datasets_loads(sample_videos: Path, tmp_path: Path) -> None:
    work, release = tmp_path / "work", tmp_path / "release"
    run("ingest", str(sample_videos), "--out", str(work), "--executor", "local")
    run("annotate", "offline", str(work), "--executor", "local")
    run("build", str(work), "--executor", "local")
    run("release", str(work), "--out", str(release), "--validation-fraction", "0.3")
    assert "valid:" in run("validate", str(release))

    grounding = load_dataset(str(release), "temporal_grounding", split="train")
    assert grounding.num_rows > 0
    assert set(grounding.features) == set(StreamingSample.model_fields)
    assert grounding.features["states"].feature.dtype == "string"
    everything = load_dataset(str(release))
    assert set(everything) == {"train", "validation"}
    rows = [row for split in everything.values() for row in split]
    assert {row["task"] for row in rows} == set(TASKS)
    for row in rows:
        StreamingSample.model_validate(row)
    train_videos = {r["video_id"] for r in everything["train"]}
    assert not train_videos & {r["video_id"] for r in everything["validation"]}

    # grounding answers agree with the generator's truth for the synthetic videos
    truth = json.loads((sample_videos / "synthetic_00.truth.json").read_text())["events"]
    answered = {(r["responses"][0]["st_time"], r["responses"][0]["end_time"]) for r in rows
                if r["task"] == "temporal_grounding" and r["video_path"] == "synthetic_00.mp4"}
    assert answered and answered <= {(e["start_s"], e["end_s"]) for e in truth}

    stats = json.loads(run("stats", str(release), "--json"))
    assert stats["samples"] == len(rows)
    assert sum(stats["state_share"].values()) == pytest.approx(1.0, abs=1e-3)


def test_bad_files_next_to_good_ones(sample_copy: Path, tmp_path: Path) -> None:
    (sample_copy / "bad").mkdir()
    (sample_copy / "bad" / "empty.mp4").write_bytes(b"")
    (sample_copy / "bad" / "readme.mp4").write_text("not a video")
    write_truncated_avi(sample_copy / "bad" / "cut.avi")
    work = tmp_path / "work"
    output = run("ingest", str(sample_copy), "--out", str(work), "--executor", "local")
    assert "empty file (0 bytes)" in output and "failed" in output

    rows = list(iter_rows(work / "videos.parquet"))
    errors = {r["path"]: r["error"] for r in rows if r["status"] == "error"}
    assert set(errors) == {"bad/empty.mp4", "bad/readme.mp4", "bad/cut.avi"}
    assert "truncated or corrupt" in errors["bad/cut.avi"]
    good = [r for r in rows if r["status"] == "ok"]
    assert len(good) == len(rows) - 3 and all(r["num_frames"] > 0 for r in good)

    # the rest of the pipeline goes on around the error rows
    run_annotate_offline(work, LOCAL)
    summary = run_build(work, TASKS, 0, LOCAL)
    assert sum(summary.produced.values()) > 0


def test_rerun_reuses_work_and_gives_the_same_samples(sample_videos: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    run_ingest(sample_videos, work, 1.0, LOCAL)
    run_annotate_offline(work, LOCAL)
    run_build(work, TASKS, 0, LOCAL)
    first = (work / "samples.parquet").read_bytes()
    again = run_ingest(sample_videos, work, 1.0, LOCAL)
    assert again.done == 0 and again.reused > 0
    assert run_annotate_offline(work, LOCAL).done == 0
    run_build(work, TASKS, 0, LOCAL)
    assert (work / "samples.parquet").read_bytes() == first


def test_ray_path_gives_the_same_result_as_in_process(sample_videos: Path, tmp_path: Path) -> None:
    import ray

    local, distributed = tmp_path / "local", tmp_path / "ray"
    for work, executor in ((local, LOCAL), (distributed, Executor(kind="ray", num_cpus=2))):
        run_ingest(sample_videos, work, 1.0, executor)
        run_annotate_offline(work, executor)
        run_build(work, TASKS, 0, executor)
    try:
        assert ray.is_initialized()
        assert ray.cluster_resources().get("CPU") == 2
        assert [node["NodeManagerAddress"] for node in ray.nodes()] == ["127.0.0.1"]  # loopback only
    finally:
        ray.shutdown()
    for name in ("videos.parquet", "events.parquet", "samples.parquet"):
        assert list(iter_rows(local / name)) == list(iter_rows(distributed / name)), name
