"""A work dir built once for the release tests (read only: each test writes its release elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import built_work_dir


@pytest.fixture(scope="package")
def work_dir(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_work_dir(sample_videos, tmp_path_factory.mktemp("work"), ["temporal_grounding", "dense_captioning"])
