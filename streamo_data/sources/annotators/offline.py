"""The offline annotator: deterministic events with no network and no model.

It exists so that the whole pipeline runs anywhere (CI, a laptop on a plane) and produces real,
checkable events: for a synthetic video it reports its generator's ground truth; for any other video
it measures with OpenCV at a few frames per second: scene changes (a jump in the colour histogram
between consecutive frames), and within each shot, where motion against the shot's static background
starts and stops; each segment is described from what was measured: where in the frame it happened,
which way it moved, its dominant colour. Same input, same events, on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamo_data.core.schema import Event, EventKind, Provenance, VideoRecord, VideoStatus
from streamo_data.sources.sample_data import COLOURS, read_truth
from streamo_data.video.backends import FrameBackend, read_frames_with_fallback
from streamo_data.video.probe import native_indices_at

ANALYSIS_FPS = 4.0
MIN_SEGMENT_S = 1.0
MAX_GAP_S = 0.75
ANALYSIS_SIZE = (160, 120)
FOREGROUND_LEVEL = 40  # grey levels; above MPEG-4 compression noise on flat regions
MIN_FOREGROUND_PIXELS = 12


# Colour names for describing what moved: the generator's palette plus the neutral tones of real scenes.
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    **COLOURS, "white": (235, 235, 235), "grey": (128, 128, 128), "black": (20, 20, 20),
    "brown": (40, 75, 120), "orange": (30, 140, 240),
}
WHOLE_VIEW_FRACTION = 0.4
CUT_DISTANCE = 0.5  # Bhattacharyya distance between consecutive colour histograms that marks a new shot


@dataclass(frozen=True)
class MotionSegment:
    start_s: float
    end_s: float
    centroids: list[tuple[float, float]]
    colour: str
    coverage: float  # mean share of the frame that differs from the background


def _analysis_times(record: VideoRecord) -> list[float]:
    """Analysis instants every 1/ANALYSIS_FPS s: chosen in time, then mapped to the frames on screen by
    their timestamps, so a variable-frame-rate video is measured at the times the events report."""
    return [k / ANALYSIS_FPS for k in range(max(1, math.ceil(record.grid.duration_s * ANALYSIS_FPS)))]


def _nearest_colour(bgr: np.ndarray) -> str:
    return min(NAMED_COLOURS, key=lambda name: float(np.sum((np.array(NAMED_COLOURS[name], float) - bgr) ** 2)))


def measure_motion(frames_rgb: np.ndarray, times_s: Sequence[float]) -> list[MotionSegment]:
    """Segments in which something differs from the video's static background.

    The background is the per-pixel median over time, which is exact for a fixed camera; a pixel is
    foreground when a channel differs from it by more than compression noise. A moving camera makes
    everything foreground, so the whole clip becomes one segment: still true, just coarse.
    """
    small = np.stack([cv2.resize(f, ANALYSIS_SIZE, interpolation=cv2.INTER_AREA) for f in frames_rgb])
    if len(small) < 2:
        return []
    background = np.median(small, axis=0)
    foreground = np.abs(small.astype(np.int16) - background.astype(np.int16)).max(axis=3) > FOREGROUND_LEVEL
    counts = foreground.reshape(len(small), -1).sum(axis=1)
    active = counts >= max(MIN_FOREGROUND_PIXELS, int(np.median(counts)) // 2 + 1)
    step = float(np.median(np.diff(times_s))) if len(times_s) > 1 else 1 / ANALYSIS_FPS

    runs: list[list[int]] = []
    for k in map(int, np.flatnonzero(active)):
        if runs and times_s[k] - times_s[runs[-1][1]] <= MAX_GAP_S + step:
            runs[-1][1] = int(k)
        else:
            runs.append([int(k), int(k)])

    found: list[MotionSegment] = []
    for first, last in runs:
        start_s, end_s = float(times_s[first]), float(times_s[last]) + step
        if end_s - start_s < MIN_SEGMENT_S:
            continue
        centroids = []
        for k in range(first, last + 1):
            ys, xs = np.nonzero(foreground[k])
            if len(xs):
                centroids.append((float(xs.mean()) / ANALYSIS_SIZE[0], float(ys.mean()) / ANALYSIS_SIZE[1]))
        pixels = small[first : last + 1][foreground[first : last + 1]]
        colour = _nearest_colour(pixels.reshape(-1, 3).mean(axis=0)[::-1]) if len(pixels) else "grey"
        coverage = float(foreground[first : last + 1].mean())
        found.append(MotionSegment(start_s, end_s, centroids, colour, coverage))
    return found


def colour_histograms(frames_rgb: np.ndarray) -> np.ndarray:
    """A normalised 8x8x8 RGB histogram per frame, at the analysis size."""
    hists = []
    for frame in frames_rgb:
        small = cv2.resize(frame, ANALYSIS_SIZE, interpolation=cv2.INTER_AREA)
        hist = cv2.calcHist([small], [0, 1, 2], None, [8, 8, 8], [0, 256, 0, 256, 0, 256])
        hists.append(cv2.normalize(hist, hist).flatten())
    return np.array(hists, np.float32)


def detect_cuts(frames_rgb: np.ndarray) -> list[int]:
    """Indices k where frame k starts a new shot (frame k-1 and k look like different scenes)."""
    hists = colour_histograms(frames_rgb)
    return [k for k in range(1, len(hists))
            if cv2.compareHist(hists[k - 1], hists[k], cv2.HISTCMP_BHATTACHARYYA) > CUT_DISTANCE]


def describe_cut(frame_rgb: np.ndarray) -> str:
    colour = _nearest_colour(frame_rgb.reshape(-1, 3).mean(axis=0)[::-1])
    return f"The scene cuts to a new shot, mostly {colour}."


def describe_segment(segment: MotionSegment) -> str:
    """A caption built only from measurements, so it is true of the video by construction."""
    if not segment.centroids:
        return "The scene changes."
    x0, y0 = segment.centroids[0]
    x1, y1 = segment.centroids[-1]
    horizontal = "left" if x0 < 1 / 3 else "right" if x0 > 2 / 3 else "centre"
    vertical = "top" if y0 < 1 / 3 else "bottom" if y0 > 2 / 3 else "middle"
    where = "the centre" if (horizontal, vertical) == ("centre", "middle") else f"the {vertical} {horizontal}"
    dx, dy = x1 - x0, y1 - y0
    if max(abs(dx), abs(dy)) < 0.08:
        movement = "stays in place"
    elif abs(dx) >= abs(dy):
        movement = "moves to the right" if dx > 0 else "moves to the left"
    else:
        movement = "moves down" if dy > 0 else "moves up"
    if segment.coverage > WHOLE_VIEW_FRACTION:
        return f"The whole view is in motion, mostly {segment.colour} tones, and the activity {movement}."
    return f"Something mostly {segment.colour} appears in {where} of the frame and {movement}."


def annotate_video(record: VideoRecord, video_dir: Path, backends: Sequence[FrameBackend]) -> list[Event]:
    """Events for one probed video: ground truth when a sidecar exists, measured motion otherwise."""
    if record.status is not VideoStatus.OK:
        return []
    duration = record.grid.duration_s
    truth = read_truth(video_dir / record.path)
    if truth is not None:
        provenance = Provenance(model="synthetic-generator", params={"sidecar": "truth.json"})
        return [
            Event.create(video_id=record.video_id, duration_s=duration, start_s=e.start_s,
                         end_s=min(e.end_s, duration), text=e.text, kind=EventKind.CAPTION,
                         source="offline:truth", provenance=provenance)
            for e in truth
        ]
    path = str(video_dir / record.path)
    times = _analysis_times(record)
    indices = native_indices_at(path, times, backends, record.native.native_fps)
    frames, backend = read_frames_with_fallback(path, indices, backends)
    provenance = Provenance(model="opencv-motion", params={"analysis_fps": f"{ANALYSIS_FPS:g}", "backend": backend})

    def event(start: float, end: float, text: str) -> Event:
        return Event.create(video_id=record.video_id, duration_s=duration, start_s=round(start, 3),
                            end_s=round(min(end, duration), 3), text=text, kind=EventKind.CAPTION,
                            source="offline:motion", provenance=provenance)

    cuts = detect_cuts(frames)
    events = [event(times[k], times[k], describe_cut(frames[k])) for k in cuts]
    for first, last in zip([0, *cuts], [*cuts, len(frames)], strict=True):  # motion within each shot
        events.extend(event(s.start_s, s.end_s, describe_segment(s))
                      for s in measure_motion(frames[first:last], times[first:last]))
    return events
