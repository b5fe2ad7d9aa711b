"""Frame decoding behind one small interface: decord by default, PyAV when decord is missing or fails.

Stages ask for frames by native index and never import a decoder themselves, so adding a backend
(or swapping the default on a cluster whose decord build is broken) touches only this module.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class DecodeError(RuntimeError):
    """A file that a backend cannot decode, with the backend's own reason."""


@dataclass(frozen=True)
class FrameTimes:
    """When each native frame is shown, in presentation order (the order of native indices), in
    seconds from the first frame; ``duration_s`` runs to the end of the last frame."""

    starts: np.ndarray
    duration_s: float


class FrameBackend(Protocol):
    name: str

    def read_frames(self, path: str, indices: Sequence[int]) -> np.ndarray:
        """RGB frames ``[len(indices), height, width, 3]`` (uint8) at the given native indices."""
        ...

    def frame_times(self, path: str) -> FrameTimes | None:
        """Presentation times of every native frame, read from the container (no decoding); None
        when the container carries none."""
        ...

    def iter_frames(self, path: str, indices: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
        """RGB batches ``[<= batch_size, height, width, 3]`` for ascending ``indices``, in order, one
        pass over the file; stops early, without error, where the stream ends before an index (the
        caller counts what came). Memory holds one batch, whatever the video's length."""
        ...


def _times(starts: Sequence[float], last_duration: float | None) -> FrameTimes | None:
    """Starts made relative to the first frame; the last frame lasts ``last_duration`` when the
    container says so, else the median gap (a container need not store the last frame's length)."""
    ordered = np.sort(np.asarray(starts, dtype=np.float64))
    if len(ordered) == 0:
        return None
    ordered -= ordered[0]
    gaps = np.diff(ordered)
    if last_duration is None or not last_duration > 0:
        last_duration = float(np.median(gaps)) if len(gaps) else 0.0
    return FrameTimes(ordered, float(ordered[-1] + last_duration))


# Containers in which decord's frame seeking cannot be trusted: on MPEG program and transport streams
# (.mpg, .vob, .ts, .mts, .m2ts) it returns the wrong frames (asked for frame 100 of an .mpg, it gave
# frame 0) or never returns (H.264 in MPEG-TS, even a whole file). PyAV decodes them in order, exactly.
DECORD_UNSAFE_FORMATS = frozenset({"mpeg", "mpegts", "mpegvideo"})
DECORD_UNSAFE_SUFFIXES = frozenset({".mpg", ".mpeg", ".m2v", ".vob", ".ts", ".mts", ".m2ts"})


@functools.lru_cache(maxsize=4096)
def container_format(path: str) -> str | None:
    """FFmpeg's name for the file's container (``mpegts``, ``mov,mp4,...``), None when PyAV cannot say."""
    try:
        import av

        with av.open(path) as container:
            return str(container.format.name)
    except Exception:  # not installed, or not a container: the decoders report their own reasons
        return None


def _refuse_unsafe_container(path: str) -> None:
    name = container_format(path)
    unsafe = (name in DECORD_UNSAFE_FORMATS if name is not None
              else os.path.splitext(path)[1].lower() in DECORD_UNSAFE_SUFFIXES)
    if unsafe:
        raise DecodeError(f"decord: does not seek reliably in {name or 'MPEG'} streams (wrong frames or a hang)")


class DecordBackend:
    name = "decord"

    def __init__(self) -> None:
        import decord  # noqa: F401  (fail at construction when it is not installed)

    def read_frames(self, path: str, indices: Sequence[int]) -> np.ndarray:
        import decord

        _refuse_unsafe_container(path)
        try:
            reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            if indices and max(indices) >= len(reader):
                raise DecodeError(f"frame {max(indices)} requested but decord sees {len(reader)} frames")
            return reader.get_batch(list(indices)).asnumpy()
        except DecodeError:
            raise
        except Exception as error:  # decord raises its own DECORDError and plain RuntimeErrors
            raise DecodeError(f"decord: {_first_line(error)}") from error

    def frame_times(self, path: str) -> FrameTimes | None:
        import decord

        _refuse_unsafe_container(path)
        try:
            reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            stamps = reader.get_frame_timestamp(list(range(len(reader))))
        except Exception as error:
            raise DecodeError(f"decord: {_first_line(error)}") from error
        if len(stamps) == 0:
            return None
        return _times(stamps[:, 0].tolist(), float(stamps[-1, 1] - stamps[-1, 0]))

    def iter_frames(self, path: str, indices: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
        import decord

        _refuse_unsafe_container(path)
        try:
            reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            readable = [i for i in indices if i < len(reader)]
            for start in range(0, len(readable), batch_size):
                yield reader.get_batch(readable[start:start + batch_size]).asnumpy()
        except Exception as error:
            raise DecodeError(f"decord: {_first_line(error)}") from error


class PyAVBackend:
    name = "pyav"

    def __init__(self) -> None:
        import av  # noqa: F401

    def read_frames(self, path: str, indices: Sequence[int]) -> np.ndarray:
        import av

        wanted = sorted(set(indices))
        found: dict[int, np.ndarray] = {}
        try:
            with av.open(path) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for position, frame in enumerate(container.decode(stream)):
                    if position in wanted:
                        found[position] = frame.to_ndarray(format="rgb24")
                    if len(found) == len(wanted):
                        break
        except Exception as error:
            raise DecodeError(f"pyav: {error}") from error
        missing = [i for i in wanted if i not in found]
        if missing:
            raise DecodeError(f"pyav: stream ended before frame {missing[0]} ({len(found)} decoded)")
        return np.stack([found[i] for i in indices]) if indices else np.zeros((0, 0, 0, 3), np.uint8)

    def frame_times(self, path: str) -> FrameTimes | None:
        import av

        stamped: list[tuple[int, int]] = []
        try:
            with av.open(path) as container:
                stream = container.streams.video[0]
                time_base = stream.time_base
                for packet in container.demux(stream):
                    if packet.pts is not None and packet.size:
                        stamped.append((packet.pts, packet.duration or 0))
        except Exception as error:
            raise DecodeError(f"pyav: {error}") from error
        if not stamped or time_base is None:
            return None
        stamped.sort()
        return _times([float(pts * time_base) for pts, _ in stamped], float(stamped[-1][1] * time_base) or None)

    def iter_frames(self, path: str, indices: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
        import av

        wanted = iter(indices)
        target = next(wanted, None)
        batch: list[np.ndarray] = []
        try:
            with av.open(path) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for position, frame in enumerate(container.decode(stream)):
                    if target is None:
                        break
                    if position == target:
                        picture = frame.to_ndarray(format="rgb24")
                        while target == position:  # an index asked twice (a held frame) is given twice
                            batch.append(picture)
                            target = next(wanted, None)
                        if len(batch) >= batch_size:
                            yield np.stack(batch)
                            batch = []
        except Exception as error:
            raise DecodeError(f"pyav: {error}") from error
        if batch:
            yield np.stack(batch)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


_BACKENDS: dict[str, type] = {"decord": DecordBackend, "pyav": PyAVBackend}


def available_backends(preferred: str = "decord") -> list[FrameBackend]:
    """Backends that import here, the preferred one first."""
    order = [preferred] + [name for name in _BACKENDS if name != preferred]
    backends: list[FrameBackend] = []
    for name in order:
        try:
            backends.append(_BACKENDS[name]())
        except ImportError:
            log.info("frame backend %s is not installed", name)
    if not backends:
        raise RuntimeError("no frame backend: install decord or av")
    return backends


def read_frames_with_fallback(
    path: str, indices: Sequence[int], backends: Sequence[FrameBackend]
) -> tuple[np.ndarray, str]:
    """Frames from the first backend that decodes them, and its name; every reason if none does."""
    reasons: list[str] = []
    for backend in backends:
        try:
            return backend.read_frames(path, indices), backend.name
        except DecodeError as error:
            reasons.append(str(error))
    raise DecodeError("; ".join(reasons))


def frame_times_with_fallback(path: str, backends: Sequence[FrameBackend]) -> FrameTimes | None:
    """Frame times from the first backend that can read them; None when no backend can (the caller
    then times frames by their index, as the reference does)."""
    for backend in backends:
        try:
            times = backend.frame_times(path)
        except DecodeError as error:
            log.info("%s: no frame times from %s: %s", path, backend.name, error)
            continue
        if times is not None:
            return times
    return None
