"""A benchmark video's frames at a fixed rate, decoded once for all its questions by the ``export frames``
extractor (one finished-or-absent folder per video, reused by every later run), and the frames each
protocol shows for a question: frame ``k`` stands for the second ``[k/fps, (k+1)/fps)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from streamo_data.exports.frames.extract import FrameJob, extract_video
from streamo_data.exports.frames.layout import IMAGE_SUFFIXES, FrameSettings
from streamo_data.video.backends import DecodeError
from streamo_data.video.probe import opencv_metadata, video_id_for
from streamo_data.video.timing import Timing


def video_frames(video_root: Path, video: str, frames_dir: Path, fps: float, max_side: int) -> list[Path]:
    """The frame files of ``video_root / video``, written first if they are not there yet; DecodeError
    with the reason for a missing or undecodable file."""
    path = video_root / video
    if not path.is_file():
        raise DecodeError(f"video not found: {path}")
    count, native_fps, _, _ = opencv_metadata(str(path))
    if count <= 0 or native_fps <= 0:
        raise DecodeError(f"{path}: no decodable video stream")
    turns = max(1, math.floor(count / native_fps * fps + 1e-6))
    settings = FrameSettings(timing=Timing.EXACT, fps=fps, format="jpeg", quality=90, max_side=max_side)
    folder = video_id_for(video)
    job = FrameJob(video=video, full_path=str(path), out_dir=str(frames_dir), folder=folder, settings=settings,
                   turns=turns)
    result = extract_video(job)
    if result.status == "error":
        raise DecodeError(f"{path}: {result.reason}")
    return sorted(p for p in (frames_dir / folder).iterdir() if p.suffix in IMAGE_SUFFIXES)


def frames_until(seconds: float, fps: float) -> int:
    """How many frames a clip cut at ``seconds`` holds (OVO-Bench cuts its clips at ``ceil(realtime)``)."""
    return max(1, math.ceil(seconds) * round(fps)) if fps >= 1 else max(1, math.ceil(seconds * fps))


def uniform(count: int, most: int) -> list[int]:
    """``most`` frame indices spread evenly over ``count`` (all of them when there are fewer), as
    OVO-Bench's offline models sample their clip (``np.linspace(0, n - 1, k, dtype=int)``)."""
    return np.linspace(0, count - 1, min(most, count), dtype=int).tolist()
