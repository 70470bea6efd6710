"""``LevelMeter``: the show's output level, peak and RMS in dBFS, measured in a pacer sink.

The pacer hands every chunk it plays to its sinks; the meter keeps a running peak and sum of
squares (two numpy reductions per chunk, a few microseconds for 5 ms of audio) and hands them
out, and starts afresh, each time the director's console reads it.
"""

from __future__ import annotations

import math

import numpy as np

from singer.contracts import AudioChunk

FLOOR_DBFS = -120.0
"""What silence reads as (dBFS)."""


def dbfs(level: float) -> float:
    """A linear level (1.0 = full scale) in dBFS, never below ``FLOOR_DBFS``."""
    return FLOOR_DBFS if level <= 10 ** (FLOOR_DBFS / 20) else 20.0 * math.log10(level)


class LevelMeter:
    """A pacer sink measuring what is played: ``read()`` gives the peak and RMS since the
    previous read, in dBFS. Called on the event loop (the pacer's playout), never blocks."""

    def __init__(self) -> None:
        self._peak = 0.0
        self._squares = 0.0
        self._samples = 0
        self.chunks = 0
        """Chunks measured so far."""

    def __call__(self, chunk: AudioChunk) -> None:
        """Measure one played chunk."""
        samples = chunk.samples
        if not len(samples):
            return
        self._peak = max(self._peak, float(np.max(np.abs(samples))))
        self._squares += float(np.dot(samples, samples))
        self._samples += len(samples)
        self.chunks += 1

    def read(self) -> dict[str, float]:
        """``{"peak_dbfs", "rms_dbfs"}`` over the chunks played since the last read (the
        floor when none was), then start a new window."""
        rms = math.sqrt(self._squares / self._samples) if self._samples else 0.0
        out = {"peak_dbfs": round(dbfs(self._peak), 1), "rms_dbfs": round(dbfs(rms), 1)}
        self._peak, self._squares, self._samples = 0.0, 0.0, 0
        return out
