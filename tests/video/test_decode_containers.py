"""Containers in which decord cannot be trusted to seek: MPEG program streams (.mpg) give the wrong frames
and H.264 in MPEG-TS (.ts, .m2ts) never returns. Those go to PyAV, and every stage gets the right frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamo_data.runtime.runner import Executor
from streamo_data.stages.ingest import run_ingest
from streamo_data.store.tables import read_table
from streamo_data.video.backends import DecodeError, DecordBackend, available_backends, read_frames_with_fallback
from tests.frame_codes import RATES, read_code, write_coded_video

CASES = [("program.mpg", "mpeg2video"), ("broadcast.m2ts", "libx264"), ("camera.ts", "mpeg2video")]


@pytest.fixture(scope="module")
def mpeg_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mpeg")
    for name, codec in CASES:
        write_coded_video(folder / name, 300, RATES["ntsc"], codec=codec)
    return folder


@pytest.mark.parametrize(("name", "codec"), CASES)
def test_mpeg_streams_are_decoded_by_pyav_at_the_asked_frames(mpeg_videos: Path, name: str, codec: str) -> None:
    path = str(mpeg_videos / name)
    with pytest.raises(DecodeError, match="does not seek reliably"):
        DecordBackend().read_frames(path, [100])
    frames, backend = read_frames_with_fallback(path, [0, 100, 200, 290], available_backends())
    assert backend == "pyav"
    assert [read_code(frame) for frame in frames] == [0, 100, 200, 290]


def test_ingest_of_mpeg_streams_finishes_with_every_video(mpeg_videos: Path, tmp_path: Path) -> None:
    run_ingest(mpeg_videos, tmp_path / "work", 1.0, Executor(kind="local"))
    videos = read_table(tmp_path / "work" / "videos.parquet").to_pylist()
    assert sorted(v["path"] for v in videos) == sorted(name for name, _ in CASES)
    assert all(v["status"] == "ok" and v["backend"] == "pyav" and v["num_frames"] == 10 for v in videos)
