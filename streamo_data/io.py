"""Atomic file writes: a reader (or a crash) never sees half a file, only the old one or the new one."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from streamo_data.storage import AnyPath, is_remote, make_dirs, uploaded_on_success


def _umask() -> int:
    """The process umask; Linux shows it in /proc, elsewhere it can only be read by setting it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: AnyPath) -> Iterator[Path]:
    """A temporary path beside ``target`` that replaces it on success and vanishes on failure (for a
    URL: a local temporary file, uploaded on success)."""
    if is_remote(target):
        make_dirs(target)
        with uploaded_on_success(target) as temporary:
            yield temporary
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared like any other file
        yield Path(temporary)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_text_atomic(target: AnyPath, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_atomic(target: AnyPath, write: Callable[[Path], None]) -> None:
    with atomic_path(target) as temporary:
        write(temporary)


def sha256_of(path: AnyPath, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
