"""A sample's sampled frames as the image processor wants them: decoded once per video (the indices ingest
and the stream format use), resized so the model's pixel budget holds, and cached as ``.npy``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from streamo_data.store.io import write_atomic
from streamo_data.video.backends import DecodeError, FrameBackend, available_backends
from streamo_data.video.probe import plan_sampling

DECODE_CHUNK = 64


def square(frame: np.ndarray, side: int) -> np.ndarray:
    """A frame at ``side`` x ``side`` (area-averaged), the size the model's pixel budget was set for."""
    return cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA)


def decode_frames(path: Path, fps: float, side: int, backends: Sequence[FrameBackend]) -> np.ndarray:
    """``[frames, side, side, 3]`` uint8 of the video's sampled frames; the next backend starts over if one fails."""
    indices = plan_sampling(str(path), fps, backends).indices
    reasons = []
    for backend in backends:
        try:
            parts = [np.stack([square(f, side) for f in frames])
                     for frames in backend.iter_frames(str(path), indices, DECODE_CHUNK)]
        except DecodeError as error:
            reasons.append(str(error))
            continue
        decoded = np.concatenate(parts) if parts else np.zeros((0, side, side, 3), np.uint8)
        if len(decoded) == len(indices):
            return decoded
        reasons.append(f"{backend.name}: stream ended after {len(decoded)} of {len(indices)} sampled frames")
    raise DecodeError(f"{path}: " + "; ".join(reasons))


class FrameCache:
    """``<dir>/<video_id>@<fps>x<side>.npy``: a video decoded once for every sample and epoch."""

    def __init__(self, directory: Path, video_root: Path, side: int) -> None:
        self.directory, self.video_root, self.side = directory, video_root, side
        self.backends = available_backends()

    def get(self, video_id: str, video_path: str, fps: float) -> np.ndarray:
        cached = self.directory / f"{video_id}@{fps:g}x{self.side}.npy"
        if cached.exists():
            return np.load(cached)
        frames = decode_frames(self.video_root / video_path, fps, self.side, self.backends)
        write_atomic(cached, lambda tmp: np.save(tmp.open("wb"), frames))
        return frames
