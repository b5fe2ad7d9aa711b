"""A work dir and a release made once for all the bad-input tests (read only: tests that damage them take
a private copy)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streamo_data.pipelines.stages import SAMPLES, run_annotate_offline, run_build, run_ingest
from streamo_data.release import write_release
from tests.cli.bad_inputs.parts import LOCAL


@pytest.fixture(scope="package")
def work_dir(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("bad_inputs_work")
    run_ingest(sample_videos, work, 1.0, LOCAL)
    run_annotate_offline(work, LOCAL)
    run_build(work, ["temporal_grounding", "dense_captioning"], 0, LOCAL)
    return work


@pytest.fixture(scope="package")
def release(work_dir: Path) -> Path:
    out = work_dir.parent / "bad_inputs_release"
    write_release(work_dir / SAMPLES, out, validation_fraction=0.3)
    return out


@pytest.fixture()
def work_copy(work_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "work"
    shutil.copytree(work_dir, target)
    return target


@pytest.fixture()
def release_copy(release: Path, tmp_path: Path) -> Path:
    target = tmp_path / "release"
    shutil.copytree(release, target)
    return target
