"""Atomic file writes: a reader (or a crash) never sees half a file, only the old one or the new one."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streamo_data.core.errors import UserError
from streamo_data.store.storage import AnyPath, is_remote, make_dirs, uploaded_on_success


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
        with uploaded_on_success(target) as upload:
            yield upload
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


# ---- JSON that parses by the grammar but not in Python ----------------------------------------------------
# json raises two errors besides JSONDecodeError, neither naming a file or a place: RecursionError for
# nesting deeper than Python's stack ("[" * 100000), and ValueError for an integer of more digits than
# int() converts (sys.get_int_max_str_digits(), 4300 by default). Every reader turns them into a reason
# with these helpers, so a crafted file is one line naming it, never a traceback.

def _digit_limit() -> int:
    """The most digits json converts to an integer; 0 when the limit is switched off."""
    return sys.get_int_max_str_digits()


def json_limit_reason(error: BaseException) -> str | None:
    """Why json could not load text it parsed (too deep, or an integer too long), or None when ``error``
    is any other error (the caller's own, or a JSONDecodeError with its line and column)."""
    if isinstance(error, RecursionError):
        return "JSON nested too deeply to read (deeper than Python's stack; annotations nest a few levels)"
    if isinstance(error, ValueError) and not isinstance(error, json.JSONDecodeError) and (
            "integer string conversion" in str(error)):
        return f"an integer of more than {_digit_limit()} digits, longer than Python converts"
    return None


def long_number_at(text: str, start: int = 0) -> int | None:
    """The offset of the first integer in ``text`` (from ``start``) too long for json to convert, if any:
    the place a :func:`json_limit_reason` about digits points at."""
    limit = _digit_limit()
    if limit <= 0:
        return None
    found = re.compile(rf"[0-9]{{{limit + 1},}}").search(text, start)
    return found.start() if found else None


def where_in(text: str, offset: int) -> str:
    """``line L column C`` of ``offset`` in ``text``, as json's own messages say it."""
    line, line_start = text.count("\n", 0, offset) + 1, text.rfind("\n", 0, offset) + 1
    return f"line {line} column {offset - line_start + 1}"


def loads_json(text: str, item: str) -> Any:
    """``json.loads(text)``; a text too deep or with a too-long integer is a UserError ``<item>: <reason>``
    (at the long number's line and column). A JSONDecodeError passes through for the caller to word."""
    try:
        return json.loads(text)
    except (RecursionError, ValueError) as error:
        reason = json_limit_reason(error)
        if reason is None:
            raise
        offset = long_number_at(text) if isinstance(error, ValueError) else None
        place = f" (at {where_in(text, offset)})" if offset is not None else ""
        raise UserError(f"{item}: {reason}{place}") from error
