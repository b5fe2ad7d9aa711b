"""A work dir and a release made once for all the bad-input tests (read only: tests that damage them take
a private copy)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streamo_data.release.write import write_release
from streamo_data.store.workdir import SAMPLES
from tests.conftest import built_work_dir


@pytest.fixture(scope="package")
def work_dir(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_work_dir(sample_videos, tmp_path_factory.mktemp("bad_inputs_work"),
                          ["temporal_grounding", "dense_captioning"])


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
