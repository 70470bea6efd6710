"""How long a phrase-ahead bank takes to make a live note's segment ready, as it runs.

A DiffSinger live note sounds when its first segment is rendered (its release, when the
release segment is): the show places the note that far after the cue, so that the voice and
the mouth (drawn from the note list in the show's process) start on the same sample. The
estimate is a high percentile of the last measured waits (from the note's queueing to its
segment being ready, so the wait behind a phrase or a continuation in the worker counts),
started from a conservative value measured at warm-up.
"""

from __future__ import annotations

import threading
from collections import deque

from singer.contracts import SAMPLE_RATE_HZ

WINDOW = 32
"""Measured waits kept (the latest)."""
PERCENTILE = 0.95
"""The estimate's percentile of the kept waits (nearest rank: with few, their maximum)."""
SEED_FACTOR = 2.0
"""The warm-up's segment render time times this is the start value: warm-up renders alone,
a live note may wait behind a phrase or a continuation."""
MARGIN_S = 0.010
"""Added to the percentile: the edit's trip to the render loop, and the chunk's own wait."""
MAX_S = 2.0
"""No estimate above this (a stall of the machine is not the bank's latency)."""


class SegmentLatency:
    """A running high percentile of live segment waits (thread-safe)."""

    def __init__(self, seed_s: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._waits: deque[float] = deque(maxlen=WINDOW)
        self._seed_s = min(MAX_S, max(0.0, seed_s) * SEED_FACTOR)

    def seed(self, render_s: float) -> None:
        """Start from a segment render measured at warm-up (``SEED_FACTOR`` times it)."""
        with self._lock:
            self._seed_s = min(MAX_S, max(0.0, render_s) * SEED_FACTOR)

    def record(self, wait_s: float) -> None:
        """A live segment was ready ``wait_s`` after it was asked for."""
        with self._lock:
            self._waits.append(min(MAX_S, max(0.0, wait_s)))

    @property
    def expected_s(self) -> float:
        """Seconds a live note's segment is expected to take, ``MARGIN_S`` included: the
        seed until ``WINDOW // 4`` waits were measured (the larger of the two before)."""
        with self._lock:
            waits = sorted(self._waits)
            seed = self._seed_s
        if not waits:
            return seed + MARGIN_S if seed else 0.0
        high = waits[min(len(waits) - 1, int(PERCENTILE * len(waits)))]
        if len(waits) < WINDOW // 4:
            high = max(high, seed)
        return min(MAX_S, high) + MARGIN_S

    @property
    def expected_samples(self) -> int:
        """``expected_s`` in show samples."""
        return int(round(self.expected_s * SAMPLE_RATE_HZ))
