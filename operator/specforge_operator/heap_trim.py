"""Give freed C-heap pages back to the OS every so often, so the operator's RSS follows its live memory.

A burst of reconciles (a thousand runs created at once, a peering take-over) allocates and frees
tens of MiB of short-lived response bodies and manifests. glibc keeps freed memory in its arenas
(only the top of the main heap is returned by itself), so without this RSS stays at the burst's
high-water mark: measured on 1,000 runs, ``malloc_trim(0)`` took the operator from 230 to 175 MiB
with the same live objects. Python's own small-object arenas are not touched (they are freed only
when empty). Where libc has no ``malloc_trim`` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable

HEAP_TRIM_ENV = "SPECFORGE_HEAP_TRIM_SECONDS"
DEFAULT_HEAP_TRIM_SECONDS = 5.0


def heap_trim_interval_from_env(environ: dict[str, str] | None = None) -> float:
    """Seconds between trims from ``$SPECFORGE_HEAP_TRIM_SECONDS`` (0 turns trimming off)."""
    raw = (os.environ if environ is None else environ).get(HEAP_TRIM_ENV, "").strip()
    if not raw:
        return DEFAULT_HEAP_TRIM_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{HEAP_TRIM_ENV} must be a number of seconds (0 = off), got {raw!r}") from None
    if seconds < 0 or seconds != seconds:  # NaN fails every comparison
        raise ValueError(f"{HEAP_TRIM_ENV} must be >= 0 (0 = off), got {raw!r}")
    return seconds


def libc_malloc_trim() -> Callable[[], None] | None:
    """glibc's ``malloc_trim(0)`` as a callable, or None where the C library lacks it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


def start_heap_trimming(interval: float, stop: threading.Event) -> threading.Thread | None:
    """Trim every ``interval`` seconds from a daemon thread until ``stop`` is set; None when off."""
    trim = libc_malloc_trim()
    if interval <= 0 or trim is None:
        return None

    def trim_until_stopped() -> None:
        while not stop.wait(interval):
            trim()

    thread = threading.Thread(target=trim_until_stopped, name="heap-trim", daemon=True)
    thread.start()
    return thread
