"""Frame decoding behind one small interface: decord by default, PyAV when decord is missing or fails.

Stages ask for frames by native index and never import a decoder themselves, so adding a backend
(or swapping the default on a cluster whose decord build is broken) touches only this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class DecodeError(RuntimeError):
    """A file that a backend cannot decode, with the backend's own reason."""


class FrameBackend(Protocol):
    name: str

    def read_frames(self, path: str, indices: Sequence[int]) -> np.ndarray:
        """RGB frames ``[len(indices), height, width, 3]`` (uint8) at the given native indices."""
        ...


class DecordBackend:
    name = "decord"

    def __init__(self) -> None:
        import decord  # noqa: F401  (fail at construction when it is not installed)

    def read_frames(self, path: str, indices: Sequence[int]) -> np.ndarray:
        import decord

        try:
            reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            if indices and max(indices) >= len(reader):
                raise DecodeError(f"frame {max(indices)} requested but decord sees {len(reader)} frames")
            return reader.get_batch(list(indices)).asnumpy()
        except DecodeError:
            raise
        except Exception as error:  # decord raises its own DECORDError and plain RuntimeErrors
            raise DecodeError(f"decord: {str(error).splitlines()[0] if str(error) else type(error).__name__}")\
                from error


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
