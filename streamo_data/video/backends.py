"""Frame decoding behind one small interface: decord by default, PyAV when decord is missing or fails.

Stages ask for frames by native index and never import a decoder themselves, so adding a backend
(or swapping the default on a cluster whose decord build is broken) touches only this module.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from streamo_data.core.schema import MAX_VIDEO_DURATION_S

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

    def iter_frames(self, path: str, indices: Sequence[int], batch_size: int,
                    bgr: bool = False) -> Iterator[np.ndarray]:
        """RGB batches ``[<= batch_size, height, width, 3]`` for ascending ``indices``, in order, one
        pass over the file; stops early, without error, where the stream ends before an index (the
        caller counts what came). Memory holds one batch, whatever the video's length. ``bgr``: in
        OpenCV's channel order instead, for a caller that encodes with it (no copy to swap channels)."""
        ...


# A timestamp this far from zero is no time but FFmpeg's "unset" (AV_NOPTS_VALUE, which decord hands on as
# 9.2e15 s); real ones, even an MPEG-TS clock near its 26.5 h wrap, stay far below it.
UNSET_TIMESTAMP_S = 1e12


def _times(starts: Sequence[float], last_duration: float | None) -> FrameTimes | None:
    """Starts made relative to the first frame; the last frame lasts ``last_duration`` when the
    container says so, else the median gap (a container need not store the last frame's length).
    DecodeError for stamps that time nothing (unset, not finite, or every frame at one instant), so
    that the next backend is asked instead of a division by a zero duration."""
    ordered = np.sort(np.asarray(starts, dtype=np.float64))
    if len(ordered) == 0:
        return None
    largest = float(np.max(np.abs(ordered)))
    if not largest < UNSET_TIMESTAMP_S:  # NaN too
        raise DecodeError(f"nonsense frame timestamps: unset or not finite (up to {largest:g} s)")
    if len(ordered) > 1 and ordered[-1] == ordered[0]:
        raise DecodeError(f"nonsense frame timestamps: all {len(ordered)} frames at one instant")
    if last_duration is not None and not math.isfinite(last_duration):
        last_duration = None
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
def container_facts(path: str) -> tuple[str | None, float | None]:
    """FFmpeg's name for the file's container (``mpegts``, ``mov,mp4,...``) and the duration it claims in
    seconds, each None when PyAV cannot say; read from the header, nothing decoded."""
    try:
        import av

        with av.open(path) as container:
            duration = None if container.duration is None else container.duration / 1_000_000
            return str(container.format.name), duration
    except Exception:  # not installed, or not a container: the decoders report their own reasons
        return None, None


def container_format(path: str) -> str | None:
    """FFmpeg's name for the file's container, None when PyAV cannot say."""
    return container_facts(path)[0]


def _refuse_unsafe_container(path: str) -> None:
    """DecodeError for a file decord must not open: an MPEG stream (wrong frames or a hang), or one whose
    container claims more than the longest video the corpus takes, because decord's reader allocates per
    claimed frame when it opens a file (a 1.4 KB MKV whose last frame claims 1e9 s is a std::bad_alloc
    abort of the whole process, which no caller can catch); PyAV reads such a file by its packets."""
    name, claimed_s = container_facts(path)
    unsafe = (name in DECORD_UNSAFE_FORMATS if name is not None
              else os.path.splitext(path)[1].lower() in DECORD_UNSAFE_SUFFIXES)
    if unsafe:
        raise DecodeError(f"decord: does not seek reliably in {name or 'MPEG'} streams (wrong frames or a hang)")
    if claimed_s is not None and not claimed_s <= MAX_VIDEO_DURATION_S:
        raise DecodeError(f"decord: not opened, the container claims {claimed_s:g} s, past the maximum of"
                          f" {MAX_VIDEO_DURATION_S:g} s a video may last (decord would allocate per claimed frame)")


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

    def iter_frames(self, path: str, indices: Sequence[int], batch_size: int,
                    bgr: bool = False) -> Iterator[np.ndarray]:
        import decord

        _refuse_unsafe_container(path)
        try:
            reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            readable = [i for i in indices if i < len(reader)]
            for start in range(0, len(readable), batch_size):
                batch = reader.get_batch(readable[start:start + batch_size]).asnumpy()
                yield np.ascontiguousarray(batch[..., ::-1]) if bgr else batch
        except Exception as error:
            raise DecodeError(f"decord: {_first_line(error)}") from error


class PyAVBackend:
    name = "pyav"

    def __init__(self, single_threaded: bool = False) -> None:
        """``single_threaded`` for a process that already has a core to itself (a Ray worker among one per
        core): no frame threads, only FFmpeg's slice threads (PyAV's default, 20% faster than none at all on
        single-slice H.264 here); otherwise frame threads as well."""
        import av  # noqa: F401

        self.thread_type = "SLICE" if single_threaded else "AUTO"

    def read_frames(self, path: str, indices: Sequence[int]) -> np.ndarray:
        if not indices:
            return np.zeros((0, 0, 0, 3), np.uint8)
        wanted = sorted(set(indices))
        batches = list(self.iter_frames(path, wanted, len(wanted)))  # one batch: a single copy of the pixels
        decoded = batches[0] if len(batches) == 1 else np.zeros((0, 0, 0, 3), np.uint8)
        if len(decoded) < len(wanted):
            raise DecodeError(f"pyav: stream ended before frame {wanted[len(decoded)]} ({len(decoded)} decoded)")
        if list(indices) == wanted:
            return decoded
        position = {index: k for k, index in enumerate(wanted)}
        return decoded[[position[i] for i in indices]]

    def frame_times(self, path: str) -> FrameTimes | None:
        stamped, time_base = _packet_stamps(path)
        if not stamped or time_base is None:
            return None
        stamped.sort()
        return _times([float(pts * time_base) for pts, _ in stamped], float(stamped[-1][1] * time_base) or None)

    def iter_frames(self, path: str, indices: Sequence[int], batch_size: int,
                    bgr: bool = False) -> Iterator[np.ndarray]:
        """In a stream with B-frames whose every packet is stamped, frames are known by their timestamps
        before decoding, so frames that no other frame refers to are skipped unless asked for (libavcodec's
        ``skip_frame``): 1.6x faster on H.264 at 1 fps, the same pictures. Otherwise every frame is decoded
        (there is nothing to skip, and the timestamp pass would only cost a read of the file)."""
        import av

        try:
            with av.open(path) as container:
                stream = container.streams.video[0]
                stream.thread_type = self.thread_type
                presentation = _presentation_order(path) if stream.codec_context.has_b_frames else None
                if presentation is not None:
                    keys = [presentation[i] for i in indices if i < len(presentation)]
                    frames: Iterator[tuple[int | None, Any]] = _decode_wanted(container, stream, set(keys))
                else:
                    keys, frames = list(indices), enumerate(container.decode(stream))
                yield from _batched(frames, keys, batch_size, "bgr24" if bgr else "rgb24")
        except DecodeError:
            raise
        except Exception as error:
            raise DecodeError(f"pyav: {error}") from error


def _presentation_order(path: str) -> list[int] | None:
    """Every frame's pts in presentation order, when each packet has its own; else None."""
    stamped, _ = _packet_stamps(path)
    presentation = sorted(pts for pts, _ in stamped)
    return presentation if presentation and len(set(presentation)) == len(presentation) else None


def _packet_stamps(path: str) -> tuple[list[tuple[int, int]], Any]:
    """(pts, duration) of every video packet with data, read without decoding, and the time base. A
    file's stamps are read once while it stays the same: planning a video's frames and decoding them
    both need them, and each read is a pass over the whole file."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise DecodeError(f"pyav: {error}") from error
    stamped, time_base = _stamps_of(path, info.st_size, info.st_mtime_ns)
    return list(stamped), time_base


@functools.lru_cache(maxsize=2)  # the file being exported (two for a caller that alternates)
def _stamps_of(path: str, size: int, mtime_ns: int) -> tuple[tuple[tuple[int, int], ...], Any]:
    import av

    stamped: list[tuple[int, int]] = []
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size:
                    if packet.pts is None:
                        return (), None
                    stamped.append((packet.pts, packet.duration or 0))
            return tuple(stamped), stream.time_base
    except Exception as error:
        raise DecodeError(f"pyav: {error}") from error


def _decode_wanted(container: Any, stream: Any, wanted: set[int]) -> Iterator[tuple[int | None, Any]]:
    """(pts, frame) in presentation order; a frame that is neither wanted nor a reference is not decoded.
    With frame threads too: FFmpeg copies ``skip_frame`` into a thread's context as each packet is sent."""
    context = stream.codec_context
    current = None
    for packet in container.demux(stream):
        skip = "NONREF" if packet.size and packet.pts not in wanted else "DEFAULT"
        if skip != current:  # set on a change only: most packets of a 1 fps sampling are skipped in a row
            context.skip_frame = current = skip
        for frame in packet.decode():
            yield frame.pts, frame


def _batched(frames: Iterator[tuple[int | None, Any]], keys: Sequence[int], batch_size: int,
             pixel_format: str = "rgb24") -> Iterator[np.ndarray]:
    """RGB batches of the frames whose keys (position or pts, ascending) are asked, each as often as asked;
    stops at the end of the stream, and raises if a frame asked for was passed without being decoded."""
    batch: list[np.ndarray] = []
    position = 0
    for key, frame in frames:
        if position == len(keys):
            break
        if key is None or key > keys[position]:
            raise DecodeError(f"pyav: frame {keys[position]} was not decoded (got {key})")
        if key == keys[position]:
            picture = frame.to_ndarray(format=pixel_format)  # libswscale converts straight to it
            while position < len(keys) and keys[position] == key:  # a frame asked twice (held) comes twice
                batch.append(picture)
                position += 1
            if len(batch) >= batch_size:
                yield np.stack(batch)
                batch = []
    if batch:
        yield np.stack(batch)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


_BACKENDS: dict[str, type[FrameBackend]] = {"decord": DecordBackend, "pyav": PyAVBackend}


def available_backends(preferred: str = "decord", single_threaded: bool = False) -> list[FrameBackend]:
    """Backends that import here, the preferred one first; ``single_threaded`` for one process per core
    (decord always decodes on one thread here)."""
    order = [preferred] + [name for name in _BACKENDS if name != preferred]
    backends: list[FrameBackend] = []
    for name in order:
        try:
            backends.append(PyAVBackend(single_threaded) if name == "pyav" else _BACKENDS[name]())
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
