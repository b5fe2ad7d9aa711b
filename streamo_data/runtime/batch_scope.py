"""One batch of work in a long-lived worker: the cyclic garbage collector held off while it runs, and the
memory it freed handed back to the system when it ends.

A batch builds hundreds of thousands of small containers (events, turns, per-frame label lists) that all
live until the batch is written, and reference cycles among them are rare; with the collector on, each
generation-2 pass walks every one of them again, which cost a seventh of a mixture batch's time.

A Ray worker lives for the whole run and takes one batch after another, while the allocators (Python's,
glibc's, Arrow's mimalloc) keep what a batch freed for the next one: after its largest batch (a recipe
reading a 200K-event file) a worker held half a gigabyte through every later stage, and with two workers
that was the build's peak. Returning it at the end of each batch keeps a worker's memory to the batch it
is on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pyarrow as pa


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def release_memory() -> None:
    """Give the system back what the allocators hold free. No full collection first: in a process that
    holds much (a run in-process, one batch after another) one costs more than the batch's cycles free."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@contextmanager
def batch_scope() -> Iterator[None]:
    """Collection off inside (unless it was off already); on again after (the next allocations run it),
    and the freed memory released."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        release_memory()
