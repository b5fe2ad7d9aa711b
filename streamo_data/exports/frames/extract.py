"""One video's frames, decoded once and written as image files into a folder that is finished or absent.

This is the per-item function that Ray runs over a release's videos (:mod:`streamo_data.exports.frames.export`);
it never raises for a bad video: a missing, corrupt or too-short file is a result row with its reason.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel

from streamo_data.exports.frames.layout import (
    DONE,
    EXTENSIONS,
    SIDECAR,
    FolderRecord,
    FolderState,
    FrameSettings,
    done_text,
    frame_file,
    inspect_folder,
    new_partial,
    publish,
    remove_frame_folder,
)
from streamo_data.video.backends import (
    DecodeError,
    FrameBackend,
    available_backends,
    frame_times_with_fallback,
    read_frames_with_fallback,
)
from streamo_data.video.probe import opencv_metadata, sampled_frame_count
from streamo_data.video.timing import (
    Timing,
    drift_at_last,
    exact_indices,
    nominal_starts,
    reference_indices,
    turn_tolerance,
)

BATCH_BYTES = 64 << 20  # decoded pixels held at once per worker: memory stays flat in a video's length


class FrameJob(BaseModel):
    """One video to write: where it is, where its frames go, how many frame turns its samples have."""

    video: str  # as the samples name it (relative to the video root)
    full_path: str
    out_dir: str
    folder: str  # name under out_dir
    settings: FrameSettings
    turns: int
    replace: bool = False
    backend: str = "pyav"


class FrameResult(BaseModel):
    """What became of one video: ``written``, ``skipped`` (a finished folder was there) or ``error``."""

    video: str
    folder: str
    status: str
    reason: str = ""
    frames: int = 0
    bytes: int = 0
    drift_s: float | None = None
    backend: str = ""
    extension: str = ""  # of the frame files (a folder the reference made may hold .png)
    seconds: float = 0.0
    replaced: str = ""  # why a folder that was there was replaced


def encode(frame: np.ndarray, settings: FrameSettings, bgr: bool = False) -> bytes:
    """One frame (RGB, or BGR with ``bgr``) as image bytes, at most ``max_side`` pixels on its longer side
    (area-averaged)."""
    height, width = frame.shape[:2]
    size = output_size(width, height, settings.max_side)
    if size != (width, height):
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    opencv_order = frame if bgr else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    if settings.format == "jpeg":
        ok, data = cv2.imencode(".jpg", opencv_order, [cv2.IMWRITE_JPEG_QUALITY, settings.quality or 90])
    else:
        ok, data = cv2.imencode(".png", opencv_order)
    if not ok:
        raise DecodeError(f"OpenCV could not encode a {width}x{height} frame as {settings.format}")
    return data.tobytes()


def batch_size_for(width: int, height: int) -> int:
    return max(1, min(64, BATCH_BYTES // max(1, width * height * 3)))


@dataclass(frozen=True)
class FramePlan:
    """The native frames to write and the facts they were chosen from."""

    indices: list[int]
    starts: np.ndarray  # presentation time of every native frame
    native_fps: float  # OpenCV's, as the reference reads it
    opencv_frame_count: int
    width: int
    height: int


def plan_frames(job: FrameJob, path: str, backends: Sequence[FrameBackend]) -> FramePlan:
    """Which native frames the job writes; DecodeError with the reason when the file cannot say."""
    count, native_fps, width, height = opencv_metadata(path)
    if count <= 0 or native_fps <= 0 or width <= 0 or height <= 0:
        raise DecodeError(f"no decodable video stream (frames={count}, fps={native_fps:g}, size={width}x{height})")
    times = frame_times_with_fallback(path, backends)
    starts = times.starts if times is not None else nominal_starts(count, native_fps)
    fps = job.settings.fps
    # The turns this file has room for, counted as ingest counts them (the reference's count, or whole
    # windows of a variable-rate video): a release built from the whole file has more than a cut copy.
    duration = times.duration_s if times is not None else count / native_fps
    room = max(sampled_frame_count(min(count, len(starts)), native_fps, fps), math.floor(duration * fps + 1e-6))
    if job.turns > room + turn_tolerance(job.settings.timing):
        raise DecodeError(f"its samples have {job.turns} frame turns but the video has frames for {room}"
                          " (truncated, or not the file the release was built from?)")
    if job.settings.timing == Timing.REFERENCE:
        return FramePlan(reference_indices(count, native_fps, fps), starts, native_fps, count, width, height)
    # Turns past the video's end (the reference's count of 29.97 fps video has 62 turns for 60 s) show its
    # last frame, the nearest one to their time.
    return FramePlan(exact_indices(starts, job.turns, fps), starts, native_fps, count, width, height)


def _write_frames(frames: Iterator[np.ndarray], folder: Path, settings: FrameSettings) -> tuple[int, int]:
    """Write BGR batches (a backend's ``bgr=True``: OpenCV encodes them as they are) as numbered files."""
    extension = EXTENSIONS[settings.format]
    written = size = 0
    for batch in frames:
        for frame in batch:
            data = encode(frame, settings, bgr=True)
            with open(folder / frame_file(written, extension), "wb") as handle:
                handle.write(data)
            written += 1
            size += len(data)
    return written, size


def refusal(final: Path, state: FolderState, replace: bool) -> str:
    """Why the folder at ``final`` is not replaced ('' when it may be): what is not frames never is, and
    frames made otherwise only with ``--replace``."""
    if state.kind == "foreign":
        return f"{final} {state.reason}; it is left as it is: move it away to export this video"
    if state.kind == "other" and not replace:
        return f"{final} holds {state.reason}; remove it or pass --replace"
    return ""


def extract_video(job: FrameJob) -> FrameResult:
    started = time.perf_counter()
    result = FrameResult(video=job.video, folder=job.folder, status="error")
    final = Path(job.out_dir) / job.folder
    try:
        video_bytes = os.path.getsize(job.full_path)
    except OSError as error:
        result.reason = f"video not found: {job.full_path} ({error.strerror})"
        return result
    state = inspect_folder(final, job.settings, job.video, video_bytes)
    if state.kind == "done" and not job.replace:
        record = state.record
        return result.model_copy(update={
            "status": "skipped", "frames": len(state.images),
            "bytes": sum(os.path.getsize(final / name) for name in state.images),
            "drift_s": record.drift_s if record else None, "backend": record.backend if record else "reference",
            "extension": state.images[0].rsplit(".", 1)[-1],
        })
    result.reason = refusal(final, state, job.replace)
    if result.reason:
        return result
    if state.kind in ("incomplete", "other"):
        result.replaced = state.reason
    if video_bytes == 0:
        result.reason = "empty file (0 bytes)"
        return result
    try:
        backends = available_backends(job.backend, single_threaded=True)  # Ray runs one video per core
        plan = plan_frames(job, job.full_path, backends)
    except DecodeError as error:
        result.reason = str(error)
        return result
    needed = job.turns - turn_tolerance(job.settings.timing)
    reasons: list[str] = []
    for backend in backends:
        partial = new_partial(Path(job.out_dir), job.folder)
        try:
            frames = backend.iter_frames(job.full_path, plan.indices, batch_size_for(plan.width, plan.height),
                                         bgr=True)
            written, size = _write_frames(frames, partial, job.settings)
        except DecodeError as error:
            remove_frame_folder(partial)
            reasons.append(str(error))
            continue
        if written < max(1, needed):
            remove_frame_folder(partial)
            reasons.append(f"{backend.name}: decodes {written} of the {len(plan.indices)} frames to sample and its"
                           f" samples need {job.turns} (truncated or corrupt?)")
            continue
        picked = plan.indices[:written]
        drift = drift_at_last(picked, plan.starts, job.settings.fps)
        record = FolderRecord(video=job.video, video_bytes=video_bytes, settings=job.settings,
                              native_fps=plan.native_fps, opencv_frame_count=plan.opencv_frame_count,
                              native_indices=picked, drift_s=drift, backend=backend.name)
        (partial / SIDECAR).write_text(record.model_dump_json(), encoding="utf-8")
        (partial / DONE).write_text(done_text(written, plan.native_fps, job.settings.fps), encoding="utf-8")
        publish(partial, final)
        return result.model_copy(update={
            "status": "written", "frames": written, "bytes": size, "drift_s": drift, "backend": backend.name,
            "extension": EXTENSIONS[job.settings.format], "seconds": time.perf_counter() - started,
        })
    result.reason = "; ".join(reasons)
    return result


def extract_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The Ray stage function: a job's JSON fields in, its result row out (never raises for a bad video)."""
    job = FrameJob.model_validate(item)
    try:
        result = extract_video(job)
    except Exception as error:  # a bug or a full disk must name the video, not end the whole run
        result = FrameResult(video=job.video, folder=job.folder, status="error",
                             reason=f"{type(error).__name__}: {error}")
    return [result.model_dump()]


class FrameEstimate(BaseModel):
    """A dry run's view of one video: frames it would write, their pixels, and a measured frame's size."""

    video: str
    folder: str
    status: str  # "would write" | "done" | "error"
    reason: str = ""
    frames: int = 0
    pixels: int = 0  # per output frame
    sample_bytes: int | None = None  # one encoded frame, for the videos asked to measure one


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    return width, height


def estimate_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Ray stage function of ``--dry-run``: reads metadata only, plus one frame when ``measure`` is set."""
    job = FrameJob.model_validate({k: v for k, v in item.items() if k != "measure"})
    estimate = FrameEstimate(video=job.video, folder=job.folder, status="error")
    try:
        video_bytes = os.path.getsize(job.full_path)
        final = Path(job.out_dir) / job.folder
        state = inspect_folder(final, job.settings, job.video, video_bytes)
        if state.kind == "done" and not job.replace:
            return [estimate.model_copy(update={"status": "done", "frames": len(state.images)}).model_dump()]
        estimate.reason = refusal(final, state, job.replace)
        if estimate.reason:
            return [estimate.model_dump()]
        backends = available_backends(job.backend, single_threaded=True)
        plan = plan_frames(job, job.full_path, backends)
        width, height = output_size(plan.width, plan.height, job.settings.max_side)
        estimate = estimate.model_copy(update={"status": "would write", "frames": len(plan.indices),
                                               "pixels": width * height})
        if item.get("measure"):
            frames, _ = read_frames_with_fallback(job.full_path, [plan.indices[len(plan.indices) // 2]], backends)
            estimate.sample_bytes = len(encode(frames[0], job.settings))
    except OSError as error:
        estimate.reason = f"video not found: {job.full_path} ({error.strerror})"
    except DecodeError as error:
        estimate.reason = str(error)
    return [estimate.model_dump()]
