"""Small pictures of a sample's sampled frames, for looking at a timeline (not for training)."""

from __future__ import annotations

import cv2
import numpy as np

from streamo_data.video.backends import DecodeError, available_backends, frame_times_with_fallback
from streamo_data.video.probe import opencv_metadata
from streamo_data.video.timing import exact_indices, nominal_starts


def fit(frame_rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """The frame shrunk to fit ``width`` x ``height``, centred on black (letterboxed, aspect kept)."""
    h, w = frame_rgb.shape[:2]
    scale = min(width / w, height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(frame_rgb, size, interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[top:top + size[1], left:left + size[0]] = small
    return canvas


def sample_thumbnails(path: str, num_frames: int, fps: float, width: int, height: int) -> list[np.ndarray] | None:
    """One thumbnail per sampled frame (the native frame nearest ``i / fps``, as ``export frames
    --timing exact`` picks it), or None when the video cannot be read."""
    try:
        count, native_fps, _, _ = opencv_metadata(path)
        backends = available_backends("pyav")
        times = frame_times_with_fallback(path, backends)
    except DecodeError:
        return None
    starts = times.starts if times is not None else nominal_starts(count, native_fps)
    indices = exact_indices(starts, num_frames, fps)
    for backend in backends:
        try:
            thumbs = [fit(frame, width, height) for batch in backend.iter_frames(path, indices, 32) for frame in batch]
        except DecodeError:
            continue
        if thumbs:
            return thumbs + [thumbs[-1]] * (num_frames - len(thumbs))
    return None
