"""Per-frame visual features for the baseline, computed once per video and cached on disk.

The baseline has no pretrained vision encoder (nothing may be downloaded), so a frame is described by
what a small model can use to decide *when* something starts and ends: an 8x6 colour thumbnail, its
difference from the previous sampled frame (motion), and global colour statistics. Frames are the
same sampled frames the stream format uses (one per ``1/fps`` seconds, counted as the reference does).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from streamo_data.core.errors import MissingInput
from streamo_data.store.io import write_atomic
from streamo_data.video.backends import DecodeError, FrameBackend, available_backends
from streamo_data.video.probe import plan_sampling

THUMBNAIL = (8, 6)
FEATURE_DIM = 2 * THUMBNAIL[0] * THUMBNAIL[1] * 3 + 7
DECODE_CHUNK = 64


def thumbnails(frames_rgb: np.ndarray) -> np.ndarray:
    thumbs = np.stack([cv2.resize(f, THUMBNAIL, interpolation=cv2.INTER_AREA) for f in frames_rgb]).astype(np.float32)
    return thumbs / 255.0


def frame_features(frames_rgb: np.ndarray, previous_thumbnail: np.ndarray | None = None) -> np.ndarray:
    """``[frames, FEATURE_DIM]`` float32 from ``[frames, H, W, 3]`` uint8; motion of the first frame is
    against ``previous_thumbnail`` (the frame before this batch), or none."""
    thumbs = thumbnails(frames_rgb)
    before = thumbs[:1] if previous_thumbnail is None else previous_thumbnail[None]
    motion = np.diff(thumbs, axis=0, prepend=before)
    flat = frames_rgb.reshape(len(frames_rgb), -1, 3).astype(np.float32) / 255.0
    stats = np.concatenate([flat.mean(1), flat.std(1), np.abs(motion).mean((1, 2, 3))[:, None]], axis=1)
    return np.concatenate([thumbs.reshape(len(thumbs), -1), motion.reshape(len(motion), -1), stats], 1)


def video_features(path: Path, fps: float, backends: Sequence[FrameBackend]) -> np.ndarray:
    """Features of the frames ingest indexed (VFR included), decoded in one pass and a batch at a time, so
    memory holds one batch of pictures whatever the video's length; the next backend starts over if one
    fails."""
    indices = plan_sampling(str(path), fps, backends).indices
    reasons = []
    for backend in backends:
        try:
            parts, previous = [], None
            for frames in backend.iter_frames(str(path), indices, DECODE_CHUNK):
                parts.append(frame_features(frames, previous))
                previous = thumbnails(frames[-1:])[0]
        except DecodeError as error:
            reasons.append(str(error))
            continue
        decoded = sum(len(part) for part in parts)
        if decoded != len(indices):
            reasons.append(f"{backend.name}: stream ended after {decoded} of {len(indices)} sampled frames")
            continue
        return np.concatenate(parts) if parts else np.zeros((0, FEATURE_DIM), np.float32)
    raise DecodeError(f"{path}: " + "; ".join(reasons))


class FeatureStore:
    """``<dir>/<video_id>@<fps>.npy``, computed on first use (decode once), reused by every epoch and run."""

    def __init__(self, directory: Path, video_root: Path) -> None:
        self.directory, self.video_root = directory, video_root
        self.backends = available_backends()
        self.unusable: dict[str, DecodeError] = {}  # a video that failed once is not decoded again per sample

    def get(self, video_id: str, video_path: str, fps: float) -> np.ndarray:
        cached = self.directory / f"{video_id}@{fps:g}.npy"
        if cached.exists():
            return np.load(cached)
        source = self.video_root / video_path
        if not source.exists():
            raise MissingInput(f"video {video_path} not found under {self.video_root} (pass --video-root)")
        if video_id in self.unusable:
            raise self.unusable[video_id]
        try:
            features = video_features(source, fps, self.backends).astype(np.float32)
        except DecodeError as error:
            self.unusable[video_id] = error
            raise
        write_atomic(cached, lambda tmp: np.save(tmp.open("wb"), features))
        return features
