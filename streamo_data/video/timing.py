"""Which native frame each sampled frame shows, in the two timing modes.

Sampled frame ``i`` is tagged ``<i/fps s - (i+1)/fps s>``; its picture is meant to be the one on screen
at the start of that window, ``i / fps`` seconds (frame 0 is the video's first frame).

* ``reference``: what the reference trainer's preprocessor (its ms-swift plugin) picks: native frames
  ``0, step, 2*step, ...`` below OpenCV's frame count, with ``step = max(1, int(native_fps / fps))``.
  Where the native rate is not a whole multiple of ``fps`` the step is too short (29.97 fps: 29 frames,
  0.968 s), so the pictures run ahead of their tags: sampled frame 150 shows 145.1 s. We reproduce it so
  that a reference training run finds its own frames; the drift is reported per video.
* ``exact``: the native frame whose presentation time is nearest ``i / fps`` (by the container's frame
  timestamps, so a variable-rate video is right too; by the nominal rate when it has none). Where the rate
  is a whole multiple of ``fps`` (25, 30, 60 fps at 1 fps) both modes pick the same frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np


class Timing(StrEnum):
    REFERENCE = "reference"
    EXACT = "exact"


REFERENCE_TOLERANCE = 1  # the reference preprocessor accepts a video one frame short of its turns


def turn_tolerance(timing: str) -> int:
    """Frames a video may lack for its samples' turns: the reference preprocessor repeats the last frame
    of a video one frame short; exact frames are counted for the turns and may lack none."""
    return REFERENCE_TOLERANCE if timing == Timing.REFERENCE else 0


def reference_step(native_fps: float, fps: float) -> int:
    """Native frames between two sampled frames as the reference counts them."""
    return max(1, int(native_fps / fps)) if fps > 0 else 1


def reference_indices(opencv_frame_count: int, native_fps: float, fps: float) -> list[int]:
    """Every native frame the reference preprocessor reads: each ``step``-th below OpenCV's count. That
    is one more than the stream format's ``count // step`` turns when ``step`` does not divide the count;
    the reference then drops the extra frame, as :func:`images_for_turns` does."""
    return list(range(0, max(0, opencv_frame_count), reference_step(native_fps, fps)))


def exact_indices(frame_starts: Sequence[float] | np.ndarray, num_frames: int, fps: float) -> list[int]:
    """For each sampled frame ``i < num_frames``, the native frame starting nearest ``i / fps`` (the
    earlier of two equally near)."""
    starts = np.asarray(frame_starts, dtype=np.float64)
    if len(starts) == 0:
        return []
    targets = np.arange(num_frames, dtype=np.float64) / fps
    after = np.clip(np.searchsorted(starts, targets, side="left"), 0, len(starts) - 1)
    before = np.clip(after - 1, 0, len(starts) - 1)
    take_before = np.abs(targets - starts[before]) <= np.abs(starts[after] - targets)
    return np.where(take_before, before, after).astype(int).tolist()


def nominal_starts(num_native_frames: int, native_fps: float) -> np.ndarray:
    """Frame start times of a constant-rate video whose container gives none."""
    return np.arange(num_native_frames, dtype=np.float64) / native_fps


def drift_at_last(indices: Sequence[int], frame_starts: np.ndarray, fps: float) -> float:
    """Seconds by which the last sampled frame's tag is later than its picture (positive: the picture
    was taken before the time its tag says; 4.85 s at 150 s for the reference on 29.97 fps)."""
    if not indices:
        return 0.0
    last = len(indices) - 1
    return float(last / fps - frame_starts[min(indices[-1], len(frame_starts) - 1)])


def images_for_turns(images: Sequence[str], turns: int, tolerance: int) -> list[str] | None:
    """The images of a sample with ``turns`` frame turns: the first ``turns`` of its video's frames; a
    video short by at most ``tolerance`` frames repeats its last frame (the reference preprocessor's own
    rule, tolerance 1); None when the frames cannot cover the turns."""
    if len(images) >= turns:
        return list(images[:turns])
    if not images or turns - len(images) > tolerance:
        return None
    return list(images) + [images[-1]] * (turns - len(images))
