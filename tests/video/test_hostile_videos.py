"""Crafted videos whose timing is nonsense (a 1.4 KB MKV whose last frame claims to be shown a million
seconds in, where a billion made decord abort the process, or whose frames all carry FFmpeg's "unset"
timestamp for decord) become error rows naming the reason, quickly and without memory per claimed
frame, and never stop an ingest: the good video beside them is ingested."""

from __future__ import annotations

import shutil
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from streamo_data.core.schema import MAX_VIDEO_DURATION_S, VideoStatus
from streamo_data.runtime.runner import Executor
from streamo_data.stages.ingest import run_ingest
from streamo_data.store.tables import iter_rows
from streamo_data.store.workdir import VIDEOS
from streamo_data.video.backends import DecodeError, FrameTimes, _times, available_backends
from streamo_data.video.probe import check_length, plan_sampling, probe_video
from tests.conftest import write_video

av = pytest.importorskip("av", reason="PyAV writes the crafted MKVs")
if "libx264" not in av.codecs_available:
    pytest.skip("this PyAV has no libx264 encoder (the crafted files need its B-frames)", allow_module_level=True)


def crafted_mkv(path: Path, times_s: list[float]) -> Path:
    """An H.264 MKV (B-frames, millisecond time base) whose frames are shown at ``times_s``: what
    ``ffmpeg -vf setpts=... -fps_mode passthrough`` makes of a three-frame clip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for k, seconds in enumerate(times_s):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), (40 * k) % 255, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(seconds * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def ingest_beside_a_good_video(tmp_path: Path, bad: Path) -> dict[str, dict]:
    videos = tmp_path / "videos"
    write_video(videos / "good.mp4", num_frames=30, fps=10)
    shutil.copyfile(bad, videos / bad.name)
    run_ingest(videos, tmp_path / "work", 1.0, Executor(kind="local"))
    return {row["path"]: row for row in iter_rows(tmp_path / "work" / VIDEOS)}


def test_frames_out_of_order_with_unset_stamps_are_an_error_row_and_the_good_video_is_ingested(
        tmp_path: Path) -> None:
    # Decode order 0, 1e6, 1 (B-frames); decord reports every frame at AV_NOPTS_VALUE, which made the
    # duration 0 and the probe a ZeroDivisionError that stopped the whole ingest.
    bad = crafted_mkv(tmp_path / "crafted" / "zero.mkv", [0, 1, 1e6])
    rows = ingest_beside_a_good_video(tmp_path, bad)
    assert rows["good.mp4"]["status"] == VideoStatus.OK and rows["good.mp4"]["num_frames"] == 3
    assert rows["zero.mkv"]["status"] == VideoStatus.ERROR
    assert "implausible timing" in rows["zero.mkv"]["error"] and "maximum" in rows["zero.mkv"]["error"]


def test_a_last_frame_far_past_the_others_is_an_error_row_not_a_frame_per_second_of_claim(tmp_path: Path) -> None:
    bad = crafted_mkv(tmp_path / "crafted" / "gap.mkv", [0, 1, 2, 1e6])
    started = time.monotonic()
    record = probe_video(bad.parent, bad.name, 1.0, available_backends())
    assert time.monotonic() - started < 10
    assert record.status is VideoStatus.ERROR and record.frame_indices is None
    assert record.error is not None and "implausible timing" in record.error and "1e+06 s long" in record.error
    rows = ingest_beside_a_good_video(tmp_path, bad)
    assert rows["good.mp4"]["status"] == VideoStatus.OK
    assert rows["gap.mkv"]["status"] == VideoStatus.ERROR


def test_decord_does_not_open_a_file_whose_container_claims_more_than_the_maximum(tmp_path: Path) -> None:
    """decord's reader allocates per claimed frame as it opens a file: at a claimed 1e9 s that is a
    std::bad_alloc abort of the whole process, which no ``except`` catches, so it must never be opened."""
    pytest.importorskip("decord", reason="the guard is decord's")
    from streamo_data.video.backends import DecordBackend

    bad = crafted_mkv(tmp_path / "gap.mkv", [0, 1, 2, 1e6])
    for call in (lambda: DecordBackend().frame_times(str(bad)), lambda: DecordBackend().read_frames(str(bad), [0])):
        with pytest.raises(DecodeError, match="decord: not opened, the container claims 1e\\+06 s"):
            call()


def test_the_same_frames_within_the_maximum_are_still_sampled_by_time(tmp_path: Path) -> None:
    """A held frame is real variable-rate video (a slideshow, a screen recording): below the maximum
    it is sampled by time, as before."""
    video = crafted_mkv(tmp_path / "held.mkv", [0, 1, 2, 30])
    plan = plan_sampling(str(video), 1.0, available_backends())
    assert plan.variable_frame_rate is True and len(plan.indices) == 31
    assert plan.indices[:3] == [0, 1, 2] and set(plan.indices[3:30]) == {2} and plan.indices[30] == 3


@pytest.mark.parametrize("stamps", [[9.2e15, 9.2e15, 9.2e15], [0.0, float("nan"), 2.0], [5.0, 5.0]],
                         ids=["unset", "nan", "one-instant"])
def test_frame_times_that_time_nothing_make_the_backend_step_aside(stamps: list[float]) -> None:
    with pytest.raises(DecodeError, match="nonsense frame timestamps"):
        _times(stamps, 1.0)


def test_ordinary_frame_times_are_unchanged() -> None:
    times = _times([0.08, 0.0, 0.04], 0.04)
    assert isinstance(times, FrameTimes)
    assert times.starts.tolist() == [0.0, 0.04, 0.08] and times.duration_s == pytest.approx(0.12)
    single = _times([3.0], None)
    assert single is not None and single.duration_s == 0.0


@pytest.mark.parametrize("duration", [MAX_VIDEO_DURATION_S * 2, 1e9, float("inf"), float("nan")])
def test_the_length_check_refuses_what_no_video_lasts(duration: float) -> None:
    with pytest.raises(DecodeError, match="implausible timing"):
        check_length(duration, "the claims")
    check_length(MAX_VIDEO_DURATION_S, "twelve hours")  # the maximum itself is a video
