"""Heap trimming: the interval is read strictly, 0 turns it off, and on glibc a trim really returns memory."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import pytest
from specforge_operator.heap_trim import (
    DEFAULT_HEAP_TRIM_SECONDS,
    HEAP_TRIM_ENV,
    heap_trim_interval_from_env,
    libc_malloc_trim,
    start_heap_trimming,
)


def _rss_kib() -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1])


@pytest.mark.parametrize(("raw", "expected"), [("", DEFAULT_HEAP_TRIM_SECONDS), ("0", 0.0), (" 5.5 ", 5.5)])
def test_interval_from_env(raw: str, expected: float) -> None:
    assert heap_trim_interval_from_env({HEAP_TRIM_ENV: raw}) == expected


@pytest.mark.parametrize("raw", ["soon", "-1", "nan"])
def test_bad_interval_is_a_clear_error(raw: str) -> None:
    with pytest.raises(ValueError, match=HEAP_TRIM_ENV):
        heap_trim_interval_from_env({HEAP_TRIM_ENV: raw})


def test_zero_interval_starts_nothing() -> None:
    assert start_heap_trimming(0, threading.Event()) is None


def test_trim_returns_freed_fragmented_heap_to_the_os() -> None:
    trim = libc_malloc_trim()
    if trim is None:
        pytest.skip("this C library has no malloc_trim")
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    # 64 KiB blocks stay under the mmap threshold, so they live in the heap; freeing all but every
    # 16th leaves free holes glibc does not give back by itself (the top of the heap stays in use).
    blocks = []
    for _ in range(2048):
        block = libc.malloc(64 * 1024)
        ctypes.memset(block, 1, 64 * 1024)
        blocks.append(block)
    kept = blocks[::16]
    for block in blocks:
        if block not in kept:
            libc.free(block)
    before = _rss_kib()
    trim()
    after = _rss_kib()
    for block in kept:
        libc.free(block)
    assert before - after > 50 * 1024, f"RSS {before} KiB -> {after} KiB after malloc_trim"


def test_trimming_thread_stops_when_asked() -> None:
    stop = threading.Event()
    thread = start_heap_trimming(0.01, stop)
    if thread is None:
        pytest.skip("this C library has no malloc_trim")
    assert thread.daemon and thread.is_alive()
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
