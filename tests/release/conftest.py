"""A work dir built once for the release tests (read only: each test writes its release elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamo_data.pipelines.runner import Executor
from streamo_data.pipelines.stages import run_annotate_offline, run_build, run_ingest

LOCAL = Executor(kind="local")


@pytest.fixture(scope="package")
def work_dir(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("work")
    run_ingest(sample_videos, work, 1.0, LOCAL)
    run_annotate_offline(work, LOCAL)
    run_build(work, ["temporal_grounding", "dense_captioning"], 0, LOCAL)
    return work
