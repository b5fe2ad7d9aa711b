"""A batch runs with the cyclic collector off and hands its freed memory back when it ends; the collector
comes back on (or stays off, if the caller had it off), whatever the batch raised."""

from __future__ import annotations

import gc

import psutil
import pytest

from streamo_data.runtime.batch_scope import batch_scope


def test_the_collector_is_off_inside_and_restored_after_even_on_error() -> None:
    assert gc.isenabled()
    with batch_scope():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), batch_scope():
        raise ValueError("a bad batch")
    assert gc.isenabled()
    gc.disable()
    try:
        with batch_scope():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_memory_a_batch_freed_goes_back_to_the_system() -> None:
    process = psutil.Process()
    before = process.memory_info().rss
    with batch_scope():
        held = [bytes(1000) + bytes([k % 256]) for k in range(300_000)]  # ~300 MB of small objects
        pin = bytes(1000) + b"pin"  # allocated after them: the allocator cannot shrink its heap past it alone
        peak = process.memory_info().rss
        del held
    after = process.memory_info().rss
    del pin
    assert peak - before > 200 << 20
    assert after - before < (peak - before) / 2, (before >> 20, peak >> 20, after >> 20)
