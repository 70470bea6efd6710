"""The show's cyclic garbage, collected on a schedule (a helper of ``serve``).

``serve.realtime_gc`` freezes everything alive once the show is set up and makes full
collections rare, so that no unscheduled full pass holds the show up. But objects that sit in
reference cycles are freed only by a full pass: an ended WebRTC viewer or WHEP listener
(aiortc's peer connection, its transports and senders, and the native SRTP, DTLS and Opus state
they hold), an MQTT client from before a broker restart. Without a full pass they piled up
for the whole show (``livesinger soak`` measured about 7 MiB of RSS a minute with a listener
joining and leaving every 3 s; docs/benchmarks.md). ``Collector.run`` makes one full pass every
``period_s`` on the event loop and times it: with the start-up heap frozen it walks only what
the show made since, a few milliseconds, while playout (a chunk at a time, its sinks absorbing
hand-out jitter) and the synthesis process (another process) go on.

After each pass the C allocator is asked to give its free memory back to the system
(glibc's ``malloc_trim(0)``, in a worker thread: ctypes lets go of the GIL). Without it the
memory the ended peers' native state had used stayed in the allocator's free lists, and RSS
still crept about 1 MiB a minute with listeners coming and going (measured; with it, flat).
Where the C library has no ``malloc_trim`` (not glibc) that step is skipped.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable

COLLECT_PERIOD_S = 10.0
"""Seconds between full collections: short enough that little garbage piles up between two
(a pass costs the objects alive, not the garbage), long enough to cost nothing measurable."""
PAUSES_KEPT = 360
"""Pause durations kept (an hour at the default period)."""


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or ``None`` where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class Collector:
    """Full garbage collections (and trims) every ``period_s``, their pauses and what they
    freed."""

    def __init__(self, period_s: float = COLLECT_PERIOD_S) -> None:
        if not period_s > 0:
            raise ValueError(f"collection period {period_s!r}: want seconds > 0")
        self.period_s = period_s
        self.passes = 0
        self.freed = 0
        """Unreachable objects found by all passes so far."""
        self.max_pause_ms = 0.0
        self.pauses_ms: collections.deque[float] = collections.deque(maxlen=PAUSES_KEPT)
        """The latest passes' durations (the GIL is held that long)."""
        self.trims = 0
        self.max_trim_ms = 0.0
        """The longest ``malloc_trim`` (in a worker thread; the show goes on meanwhile)."""
        self._trim = _malloc_trim()

    def collect(self) -> float:
        """One full pass now; returns how long it took (ms)."""
        began = time.perf_counter()
        self.freed += gc.collect()
        pause_ms = 1000 * (time.perf_counter() - began)
        self.passes += 1
        self.pauses_ms.append(pause_ms)
        self.max_pause_ms = max(self.max_pause_ms, pause_ms)
        return pause_ms

    def trim(self) -> float | None:
        """Give the C allocator's free memory back to the system; how long it took (ms), or
        ``None`` where there is no ``malloc_trim``. Safe in any thread."""
        if self._trim is None:
            return None
        began = time.perf_counter()
        self._trim()
        took_ms = 1000 * (time.perf_counter() - began)
        self.trims += 1
        self.max_trim_ms = max(self.max_trim_ms, took_ms)
        return took_ms

    async def run(self) -> None:
        """Collect (then trim, off the loop) every ``period_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.period_s)
            self.collect()
            await asyncio.to_thread(self.trim)

    def stats(self) -> dict[str, object]:
        """Passes, objects freed and pauses (max over the show, p50 of the latest)."""
        latest = sorted(self.pauses_ms)
        return {"passes": self.passes, "freed": self.freed,
                "pause_ms_p50": round(latest[len(latest) // 2], 2) if latest else None,
                "pause_ms_max": round(self.max_pause_ms, 2), "trims": self.trims,
                "trim_ms_max": round(self.max_trim_ms, 2)}
