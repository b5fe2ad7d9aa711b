"""The cyclic garbage collector held off for the length of one batch of work.

A batch builds hundreds of thousands of small containers (events, turns, per-frame label lists) that all
live until the batch is written, and reference cycles among them are rare; with the collector on, each
generation-2 pass walks every one of them again, which cost a seventh of a mixture batch's time.
Whatever cycles a batch leaves are collected when it ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collection off inside (unless it was off already), on again and one pass run after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect()
