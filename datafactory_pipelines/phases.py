"""Phase timings and memory of a long change (an import's link and curate): what the log and the Dagster
run show per phase, and the memory a full pass gives back between phases."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)


class PhaseTimer:
    """Phase timings for the log (and the Dagster run, via the outcome); `progress` also tells a terminal."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._phase = ""
        self._started = time.perf_counter()

    def phase(self, name: str, detail: str = "") -> None:
        self.stop()
        self._phase, self._started = name, time.perf_counter()
        message = f"{name}{': ' + detail if detail else ''}"
        log.info(message)
        if self.progress:
            self.progress(message)

    def stop(self) -> None:
        if self._phase:
            took = time.perf_counter() - self._started
            self.timings[self._phase] = round(self.timings.get(self._phase, 0.0) + took, 3)
            if rss_gb() > RELEASE_ABOVE_GB:  # a big pass: worth a collection (it costs tenths of a second)
                release_memory()
            log.info("%s took %.2fs (RSS now %.2f GB, peak RSS so far %.2f GB)", self._phase, took, rss_gb(),
                     peak_rss_gb())
            self._phase = ""


#: above this resident size a phase's end gives freed memory back (a full pass); a change's phases skip it
RELEASE_ABOVE_GB = 2.0


def release_memory() -> None:
    """Give the frames a phase dropped back to the system before the next phase allocates its own: collect
    reference cycles, then ask glibc to return its free heap (freed pandas/Arrow buffers of a 1M-record pass
    otherwise stay in the process and add up to the next phase's peak)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def rss_gb() -> float:
    """This process's resident memory now (0 where /proc is not there)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024**3


def peak_rss_gb() -> float:
    """This process's peak resident memory so far (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
