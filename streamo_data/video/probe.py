"""Probing: what a video is (duration, rate, size, frames) and which frames a stage will sample.

Frames are counted as the reference converter counts them (OpenCV's container frame count), because
the number of sampled frames fixes the number of turns in the stream format; the sampled frames are
then decoded once through the backends to prove the file is really readable, so a truncated file is
caught here, with its reason, instead of in the middle of a training run.

That count assumes a constant frame rate. A variable-frame-rate file (phones, screen recordings,
edited clips) is detected from its frame timestamps and sampled by time instead: see
:func:`sampled_frame_indices_by_time`.
"""

from __future__ import annotations

import bisect
import errno
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from streamo_data.core.schema import MAX_VIDEO_DURATION_S, VideoRecord, VideoStatus, stable_id
from streamo_data.core.video_identity import VIDEO_EXTENSIONS
from streamo_data.video.backends import (
    DecodeError,
    FrameBackend,
    FrameTimes,
    frame_times_with_fallback,
    read_frames_with_fallback,
)

log = logging.getLogger(__name__)

# Every container that decord, PyAV and OpenCV (all FFmpeg underneath) read; the camera and broadcast
# ones (.3gp/.3g2 phones, .mts/.m2ts AVCHD, .wmv/.asf) are common in DiDeMo, Charades and Ego4D-like sets.

# A frame whose duration differs from the median by more than this share of it makes the video
# variable-rate. Container time bases round durations (29.97 fps in milliseconds is 33 or 34 ms), which
# stays far below it; a held frame or a rate change does not.
VFR_TOLERANCE = 0.5


def is_video_name(name: str) -> bool:
    """A video by its file name: a known container extension, or a bare trailing dot (``foo.``),
    which is how DiDeMo names some of its files."""
    return Path(name).suffix.lower() in VIDEO_EXTENSIONS or (name.endswith(".") and bool(name.strip(".")))


def video_id_for(relative_path: str) -> str:
    """Readable and stable: the file stem, slugged, plus a hash of the whole relative path."""
    stem = re.sub(r"[^A-Za-z0-9_.\-]+", "_", Path(relative_path).stem).strip("._-") or "video"
    return f"{stem[:48]}-{stable_id(relative_path, length=8)}"


def _folder_key(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def find_videos(video_dir: Path) -> list[str]:
    """Video files under ``video_dir`` (by name), as sorted paths relative to it.

    Symlinked folders are followed (a dataset is often assembled from links into other disks), each
    real folder once, so a link back up the tree cannot loop and a link to a folder that is also
    inside the tree does not list its videos twice (they keep their real path). A dangling symlink
    with a video name is listed too, so that probing turns it into an error row instead of the video
    vanishing without a trace."""
    root = str(video_dir)
    inside = {_folder_key(folder) for folder, _, _ in os.walk(root)}
    visited: set[tuple[int, int]] = set()
    found: list[str] = []

    def walk(folder: str, relative: PurePosixPath) -> None:
        try:
            key = _folder_key(folder)
            if key in visited:
                return
            visited.add(key)
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            log.warning("cannot list %s (%s): its videos are left out", folder, error.strerror)
            return
        for entry in entries:
            path = relative / entry.name
            if os.path.isdir(entry.path):  # follows symlinks; False for a broken one
                if entry.is_symlink() and _folder_key(entry.path) in inside:
                    continue  # walked under its real path
                walk(entry.path, path)
            elif os.path.isfile(entry.path):
                if is_video_name(entry.name):
                    found.append(path.as_posix())
            elif (entry.is_symlink() and not os.path.exists(entry.path)
                  and (is_video_name(entry.name) or is_video_name(os.readlink(entry.path)))):
                found.append(path.as_posix())

    walk(root, PurePosixPath())
    return sorted(found)


def sampled_frame_count(num_native_frames: int, native_fps: float, fps: float) -> int:
    """The one sampled-frame counter: frames the reference trainer sees, native frames // whole native
    frames per sampled frame (its cache keeps every ``int(native_fps / fps)``-th frame)."""
    step = max(1, int(native_fps / fps)) if fps > 0 else 1
    return num_native_frames // step


def sampled_frame_indices(num_native_frames: int, native_fps: float, fps: float) -> list[int]:
    """Native index of each sampled frame: the last native frame of each sampling window, because
    frame i stands for the interval that *ends* at its tag's upper bound."""
    step = max(1, int(native_fps / fps))
    return [(i + 1) * step - 1 for i in range(sampled_frame_count(num_native_frames, native_fps, fps))]


def is_variable_rate(times: FrameTimes) -> bool:
    """Whether frame durations spread so far that timing frames by their index would drift."""
    gaps = np.diff(times.starts)
    if len(gaps) < 2:
        return False
    median = float(np.median(gaps))
    return median <= 0 or float(np.max(np.abs(gaps - median))) > VFR_TOLERANCE * median


def sampled_frame_indices_by_time(times: FrameTimes, fps: float) -> list[int]:
    """The same rule as :func:`sampled_frame_indices`, by time: sampled frame i is the native frame
    on screen at the end of its window ``(i/fps, (i+1)/fps]``, i.e. the last one that starts before
    ``(i+1)/fps``. A frame held across several windows is sampled for each of them; the video has
    ``floor(duration * fps)`` sampled frames, as many whole windows as it fills."""
    starts = times.starts.tolist()
    count = math.floor(times.duration_s * fps + 1e-6)
    return [max(0, bisect.bisect_left(starts, (i + 1) / fps - 1e-6) - 1) for i in range(count)]


def opencv_metadata(path: str) -> tuple[int, float, int, int]:
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise DecodeError("OpenCV cannot open it as a video")
        return (
            int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
            float(capture.get(cv2.CAP_PROP_FPS)),
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        capture.release()


@dataclass(frozen=True)
class SampledFrames:
    """A video's frame grid as the reference counts it: sampled frames, and the native length."""

    num_frames: int
    duration_s: float


def count_sampled_frames(full_path: str, fps: float) -> SampledFrames | str:
    """The frames of a video file on the reference's grid (OpenCV's count, :func:`sampled_frame_count`),
    or why it has none: the one place both converters (ours and the reference's) ask, so one short or
    broken video has one reason whichever path reads it."""
    if not os.path.exists(full_path):
        return f"video not found: {full_path}"
    try:
        num_native, native_fps, _, _ = opencv_metadata(full_path)
        frames = sampled_frame_count(num_native, native_fps, fps) if native_fps > 0 else 0
    except Exception as error:  # noqa: BLE001 - any failure to read is the video's reason, said as such
        return f"cannot read video {full_path}: {error}"
    if frames <= 0:
        return f"no frames in video {full_path} ({num_native} native frames at {native_fps:g} fps)"
    return SampledFrames(frames, num_native / native_fps)


def _stat_failure(full_path: str, error: OSError) -> str:
    """Why a listed file cannot be read, naming a broken link as such (it points somewhere)."""
    if os.path.islink(full_path):
        target = os.readlink(full_path)
        if error.errno == errno.ELOOP:
            return f"symlink loop: points to '{target}', which leads back to itself"
        return f"dangling symlink: points to '{target}', which does not exist"
    return f"cannot stat file: {error.strerror}"


def check_length(duration_s: float, claimed_by: str) -> None:
    """DecodeError for timing past the longest video the corpus takes (``MAX_VIDEO_DURATION_S``) or not a
    number: checked before any list per sampled frame is made, so a 1.4 KB file whose last frame claims
    1e9 s becomes an error row instead of a billion-entry allocation."""
    if not duration_s <= MAX_VIDEO_DURATION_S:
        raise DecodeError(f"implausible timing: {claimed_by} make it {duration_s:g} s long, past the maximum of"
                          f" {MAX_VIDEO_DURATION_S:g} s ({MAX_VIDEO_DURATION_S / 3600:g} h) a video may last")


@dataclass(frozen=True)
class SamplingPlan:
    """Which native frames a video is sampled at, and the facts the choice rests on."""

    indices: list[int]
    num_native_frames: int
    native_fps: float
    duration_s: float
    width: int
    height: int
    variable_frame_rate: bool | None  # None: the container gave no frame times to judge by


def plan_sampling(path: str, fps: float, backends: Sequence[FrameBackend]) -> SamplingPlan:
    """The sampled frames of a file: the reference count and indices for a constant-rate video, by
    frame timestamps for a variable-rate one. Every stage that samples frames from a file uses this,
    so features, annotations and the stream format agree. DecodeError when there is no video stream or
    its timing is past the maximum length (see :func:`check_length`)."""
    num_native, native_fps, width, height = opencv_metadata(path)
    if num_native <= 0 or native_fps <= 0 or width <= 0 or height <= 0:
        raise DecodeError(f"no decodable video stream (frames={num_native}, fps={native_fps:g},"
                          f" size={width}x{height})")
    check_length(num_native / native_fps, f"the container's {num_native} frames at {native_fps:g} fps")
    times = frame_times_with_fallback(path, backends)
    variable = None if times is None else is_variable_rate(times)
    if times is not None and variable:
        count, duration = len(times.starts), times.duration_s
        check_length(duration, f"its {count} frame timestamps")
        return SamplingPlan(sampled_frame_indices_by_time(times, fps), count, count / duration, duration,
                            width, height, True)
    return SamplingPlan(sampled_frame_indices(num_native, native_fps, fps), num_native, native_fps,
                        num_native / native_fps, width, height, variable)


def native_indices_at(path: str, times_s: Sequence[float], backends: Sequence[FrameBackend],
                      native_fps: float) -> list[int]:
    """The native frame on screen at each time (the last one starting at or before it): by the frame
    timestamps when the container has them, so a variable-rate video is right too; else by rate."""
    times = frame_times_with_fallback(path, backends)
    if times is None:
        return [int(t * native_fps) for t in times_s]
    starts = times.starts.tolist()
    return [max(0, bisect.bisect_right(starts, t + 1e-6) - 1) for t in times_s]


def probe_video(
    video_dir: Path, relative_path: str, fps: float, backends: Sequence[FrameBackend]
) -> VideoRecord:
    """A VideoRecord for one file; never raises for a bad file, which becomes an error row instead."""
    video_id = video_id_for(relative_path)
    full_path = str(video_dir / relative_path)

    def error(reason: str) -> VideoRecord:
        return VideoRecord(video_id=video_id, path=relative_path, status=VideoStatus.ERROR, error=reason)

    try:
        size = os.path.getsize(full_path)
    except OSError as exc:
        return error(_stat_failure(full_path, exc))
    if size == 0:
        return error("empty file (0 bytes)")
    try:
        plan = plan_sampling(full_path, fps, backends)
    except DecodeError as exc:
        return error(str(exc))
    indices, height, width = plan.indices, plan.height, plan.width
    if not indices:
        return error(f"shorter than one sampled frame at {fps:g} fps ({plan.num_native_frames} native frames)")
    try:
        frames, backend = read_frames_with_fallback(full_path, [indices[0], indices[-1]], backends)
    except DecodeError as exc:
        return error(f"cannot decode sampled frames (truncated or corrupt?): {exc}")
    if frames.shape[1:3] != (height, width):
        height, width = int(frames.shape[1]), int(frames.shape[2])
    return VideoRecord(
        video_id=video_id, path=relative_path, status=VideoStatus.OK,
        duration_s=plan.duration_s, native_fps=plan.native_fps, num_native_frames=plan.num_native_frames,
        width=width, height=height, sample_fps=fps, num_frames=len(indices), frame_indices=indices,
        backend=backend, variable_frame_rate=plan.variable_frame_rate,
    )
