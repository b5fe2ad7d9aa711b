"""Probing: what a video is (duration, rate, size, frames) and which frames a stage will sample.

Frames are counted as the reference converter counts them (OpenCV's container frame count), because
the number of sampled frames fixes the number of turns in the stream format; the sampled frames are
then decoded once through the backends to prove the file is really readable, so a truncated file is
caught here, with its reason, instead of in the middle of a training run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import cv2

from streamo_data.reference_format import sampled_frame_count
from streamo_data.schema import VideoRecord, VideoStatus, stable_id
from streamo_data.video.backends import DecodeError, FrameBackend, read_frames_with_fallback

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ts"})


def video_id_for(relative_path: str) -> str:
    """Readable and stable: the file stem, slugged, plus a hash of the whole relative path."""
    stem = re.sub(r"[^A-Za-z0-9_.\-]+", "_", Path(relative_path).stem).strip("._-") or "video"
    return f"{stem[:48]}-{stable_id(relative_path, length=8)}"


def find_videos(video_dir: Path) -> list[str]:
    """Video files under ``video_dir`` (by extension), as sorted paths relative to it."""
    found = [
        str(path.relative_to(video_dir).as_posix())
        for path in video_dir.rglob("*")
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS
    ]
    return sorted(found)


def sampled_frame_indices(num_native_frames: int, native_fps: float, fps: float) -> list[int]:
    """Native index of each sampled frame: the last native frame of each sampling window, because
    frame i stands for the interval that *ends* at its tag's upper bound."""
    step = max(1, int(native_fps / fps))
    return [(i + 1) * step - 1 for i in range(sampled_frame_count(num_native_frames, native_fps, fps))]


def opencv_metadata(path: str) -> tuple[int, float, int, int]:
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise DecodeError("OpenCV cannot open it as a video")
        return (
            int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
            float(capture.get(cv2.CAP_PROP_FPS)),
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        capture.release()


def probe_video(
    video_dir: Path, relative_path: str, fps: float, backends: Sequence[FrameBackend]
) -> VideoRecord:
    """A VideoRecord for one file; never raises for a bad file, which becomes an error row instead."""
    video_id = video_id_for(relative_path)
    full_path = str(video_dir / relative_path)

    def error(reason: str) -> VideoRecord:
        return VideoRecord(video_id=video_id, path=relative_path, status=VideoStatus.ERROR, error=reason)

    try:
        size = os.path.getsize(full_path)
    except OSError as exc:
        return error(f"cannot stat file: {exc.strerror}")
    if size == 0:
        return error("empty file (0 bytes)")
    try:
        num_native, native_fps, width, height = opencv_metadata(full_path)
    except DecodeError as exc:
        return error(str(exc))
    if num_native <= 0 or native_fps <= 0 or width <= 0 or height <= 0:
        return error(f"no decodable video stream (frames={num_native}, fps={native_fps:g}, size={width}x{height})")
    indices = sampled_frame_indices(num_native, native_fps, fps)
    if not indices:
        return error(f"shorter than one sampled frame at {fps:g} fps ({num_native} native frames)")
    try:
        frames, backend = read_frames_with_fallback(full_path, [indices[0], indices[-1]], backends)
    except DecodeError as exc:
        return error(f"cannot decode sampled frames (truncated or corrupt?): {exc}")
    if frames.shape[1:3] != (height, width):
        height, width = int(frames.shape[1]), int(frames.shape[2])
    return VideoRecord(
        video_id=video_id, path=relative_path, status=VideoStatus.OK,
        duration_s=num_native / native_fps, native_fps=native_fps, num_native_frames=num_native,
        width=width, height=height, sample_fps=fps, num_frames=len(indices), frame_indices=indices,
        backend=backend,
    )
