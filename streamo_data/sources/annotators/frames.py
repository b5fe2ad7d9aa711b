"""Frames of a segment as images for a chat message: evenly spaced, downscaled, JPEG, base64 data URLs.

Downscaling to a 512-pixel long side keeps each image in the cheapest ("low detail") token band of
the usual vision APIs; JPEG encoding is deterministic, so the same segment gives the same request and
therefore the same cache key on every run.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamo_data.core.schema import VideoRecord
from streamo_data.video.backends import FrameBackend, read_frames_with_fallback
from streamo_data.video.probe import native_indices_at

MAX_SIDE = 512
JPEG_QUALITY = 85
LOW_DETAIL_TOKENS, TILE_TOKENS = 85, 170


DETAILS = ("low", "high", "auto")


@dataclass(frozen=True)
class ImageSizing:
    """How frames are sent: downscaled to ``max_side`` pixels on the long side, with the vision API's
    ``detail`` level. The defaults are the cheapest band of the usual APIs (one fixed cost per image);
    ``high`` pays per 512-pixel tile of the image (see :func:`image_tokens`)."""

    max_side: int = MAX_SIDE
    detail: str = "low"

    def __post_init__(self) -> None:
        if self.detail not in DETAILS:
            raise ValueError(f"image detail must be one of {', '.join(DETAILS)}, not {self.detail!r}")
        if self.max_side < 16:
            raise ValueError(f"image max side must be at least 16 pixels, not {self.max_side}")

    def sent_size(self, width: int | None, height: int | None) -> tuple[int, int]:
        """The pixels of a frame as sent (a video of unknown size is taken as 16:9 at the max side)."""
        if not width or not height:
            return self.max_side, round(self.max_side * 9 / 16)
        scale = min(1.0, self.max_side / max(width, height))
        return round(width * scale), round(height * scale)


DEFAULT_SIZING = ImageSizing()


def sizing_params(sizing: ImageSizing) -> dict[str, str]:
    """Provenance of a non-default sizing (the default one, 512 pixels at low detail, is not repeated
    on every event)."""
    if sizing == DEFAULT_SIZING:
        return {}
    return {"image_max_side": str(sizing.max_side), "image_detail": sizing.detail}


def image_tokens(width: int, height: int, detail: str) -> int:
    """Input tokens of one image by the published rule of OpenAI-style vision models: 85 at ``low``; at
    ``high`` (and ``auto``, counted as high: the upper bound), the image is fitted into 2048x2048, then its
    short side to 768, and each 512-pixel tile costs 170 on top of the 85."""
    if detail == "low":
        return LOW_DETAIL_TOKENS
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return LOW_DETAIL_TOKENS + TILE_TOKENS * math.ceil(w / 512) * math.ceil(h / 512)


def frame_parts(frames: Sequence[tuple[float, str]], detail: str) -> list[dict[str, Any]]:
    """The frames of a request as message parts, each its time then its image. They go after all of the
    prompt's text, so that requests of one stage share everything up to the first frame: the prefix a
    server with prefix caching reuses."""
    parts: list[dict[str, Any]] = []
    for time_s, url in frames:
        parts.append({"type": "text", "text": f"t={time_s:g}s"})
        parts.append({"type": "image_url", "image_url": {"url": url, "detail": detail}})
    return parts


def segment_times(start: float, end: float, count: int) -> list[float]:
    """``count`` times at the centres of equal slices of [start, end]."""
    step = (end - start) / count
    return [round(start + step * (k + 0.5), 3) for k in range(count)]


def encode_jpeg(frame_rgb: np.ndarray, max_side: int = MAX_SIDE) -> str:
    height, width = frame_rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1:
        frame_rgb = cv2.resize(frame_rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def segment_images(video: VideoRecord, video_dir: Path, start: float, end: float, count: int,
                   backends: Sequence[FrameBackend], sizing: ImageSizing = DEFAULT_SIZING) -> list[tuple[float, str]]:
    """(time, data URL) for ``count`` frames of the segment, decoded from the video file."""
    return images_at(video, video_dir, segment_times(start, end, count), backends, sizing)


def images_at(video: VideoRecord, video_dir: Path, times: Sequence[float], backends: Sequence[FrameBackend],
              sizing: ImageSizing = DEFAULT_SIZING) -> list[tuple[float, str]]:
    """(time, data URL) for the frame on screen at each of ``times``, decoded from the video file."""
    native_fps, num_native_frames = video.native
    last = num_native_frames - 1
    path = str(video_dir / video.path)
    # by frame timestamps, so a variable-frame-rate video shows the model the frames at these times
    indices = [min(last, i) for i in native_indices_at(path, times, backends, native_fps)]
    frames, _ = read_frames_with_fallback(path, indices, backends)
    return [(t, encode_jpeg(frame, sizing.max_side)) for t, frame in zip(times, frames, strict=True)]
