"""Bounds on the numbers a command is given, checked before any work starts.

A thread count far above the cores, an input of a hundred thousand images, a billion
iterations: each is a typo or a probe, and each would otherwise run for hours, or fill
memory until the allocator fails deep in a runtime with a traceback. The limits are
generous for real use and named in the error line.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

from .base import ProfilerError

MAX_ITERATIONS = 1_000_000     # a fixed-count run of a 0.01 ms model: 10 s of calls
MAX_DURATION_S = 3600.0        # an hour of sampling per session
MAX_INPUT_SHARE = 0.25         # the input tensor's share of the memory available now


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads: int, flag: str = "--threads") -> int:
    """0 (one per core) up to this machine's logical cores."""
    n = cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= n:
        raise ProfilerError(f"{flag} must be 0 (one per core) to {n} (this machine's logical "
                            f"cores), got {threads!r}")
    return threads


def check_counts(iterations: int, duration: float) -> None:
    if not 0 <= iterations <= MAX_ITERATIONS:
        raise ProfilerError(f"--iterations must be 1 to {MAX_ITERATIONS:,}, got {iterations}")
    if not (math.isfinite(duration) and 0 <= duration <= MAX_DURATION_S):
        raise ProfilerError(f"--duration must be 0 to {MAX_DURATION_S:.0f} seconds, got "
                            f"{duration}")


def available_bytes() -> int:
    """Memory available to a new allocation now (Linux: MemAvailable), else physical."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 8 * 2**30


def check_input(shape: Sequence[int], what: str = "the input", itemsize: int = 4) -> None:
    """An input tensor of ``shape`` fits in a quarter of the memory available now (the
    runtime's activations need the rest)."""
    need = itemsize * math.prod(int(d) for d in shape)
    room = int(available_bytes() * MAX_INPUT_SHARE)
    if need > room:
        raise ProfilerError(f"{what} {'x'.join(str(int(d)) for d in shape)} needs "
                            f"{need / 2**30:.2f} GiB; this machine has room for "
                            f"{room / 2**30:.2f} GiB (a quarter of the memory available "
                            "now): use a smaller --batch or shape")
