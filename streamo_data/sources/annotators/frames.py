"""Frames of a segment as images for a chat message: evenly spaced, downscaled, JPEG, base64 data URLs.

Downscaling to a 512-pixel long side keeps each image in the cheapest ("low detail") token band of
the usual vision APIs; JPEG encoding is deterministic, so the same segment gives the same request and
therefore the same cache key on every run.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from streamo_data.core.schema import VideoRecord
from streamo_data.video.backends import FrameBackend, read_frames_with_fallback
from streamo_data.video.probe import native_indices_at

MAX_SIDE = 512
JPEG_QUALITY = 85


def segment_times(start: float, end: float, count: int) -> list[float]:
    """``count`` times at the centres of equal slices of [start, end]."""
    step = (end - start) / count
    return [round(start + step * (k + 0.5), 3) for k in range(count)]


def encode_jpeg(frame_rgb: np.ndarray) -> str:
    height, width = frame_rgb.shape[:2]
    scale = MAX_SIDE / max(height, width)
    if scale < 1:
        frame_rgb = cv2.resize(frame_rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def segment_images(video: VideoRecord, video_dir: Path, start: float, end: float, count: int,
                   backends: Sequence[FrameBackend]) -> list[tuple[float, str]]:
    """(time, data URL) for ``count`` frames of the segment, decoded from the video file."""
    times = segment_times(start, end, count)
    native_fps, num_native_frames = video.native
    last = num_native_frames - 1
    path = str(video_dir / video.path)
    # by frame timestamps, so a variable-frame-rate video shows the model the frames at these times
    indices = [min(last, i) for i in native_indices_at(path, times, backends, native_fps)]
    frames, _ = read_frames_with_fallback(path, indices, backends)
    return [(t, encode_jpeg(frame)) for t, frame in zip(times, frames, strict=True)]
