"""Tempo map: the view of the show clock in beats (quarter notes)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from singer.contracts import SAMPLE_RATE_HZ


@dataclass(frozen=True, slots=True)
class TempoChange:
    """From ``beat`` on (quarter notes from the song start) the tempo is ``bpm``."""

    beat: float
    bpm: float


class TempoMap:
    """Maps beats (quarter notes) to show samples and back, through tempo changes.

    The first change must sit at beat 0. ``origin_sample`` is the show sample of beat 0.
    """

    def __init__(self, changes: list[TempoChange] | None = None, origin_sample: int = 0) -> None:
        changes = sorted(changes or [TempoChange(0.0, 120.0)], key=lambda c: c.beat)
        if changes[0].beat != 0.0:
            changes.insert(0, TempoChange(0.0, changes[0].bpm))
        for change in changes:
            if not 1.0 <= change.bpm <= 1000.0:
                raise ValueError(f"tempo {change.bpm} bpm at beat {change.beat} is out of 1..1000")
        merged: list[TempoChange] = []
        for change in changes:
            if merged and merged[-1].beat == change.beat:
                merged[-1] = change
            else:
                merged.append(change)
        self.changes: tuple[TempoChange, ...] = tuple(merged)
        self.origin_sample = origin_sample
        self._beats = [c.beat for c in merged]
        self._samples: list[float] = [float(origin_sample)]
        for prev, cur in zip(merged, merged[1:], strict=False):
            self._samples.append(self._samples[-1] + (cur.beat - prev.beat) * _spb(prev.bpm))

    def beat_to_sample(self, beat: float) -> int:
        """Show sample at which ``beat`` falls (rounded to the nearest sample)."""
        i = max(0, bisect.bisect_right(self._beats, beat) - 1)
        return int(round(self._samples[i] + (beat - self._beats[i]) * _spb(self.changes[i].bpm)))

    def sample_to_beat(self, sample: float) -> float:
        """Beat position of a show sample (inverse of ``beat_to_sample``)."""
        i = max(0, bisect.bisect_right(self._samples, sample) - 1)
        return self._beats[i] + (sample - self._samples[i]) / _spb(self.changes[i].bpm)

    def bpm_at(self, beat: float) -> float:
        """Tempo in force at ``beat``."""
        i = max(0, bisect.bisect_right(self._beats, beat) - 1)
        return self.changes[i].bpm

    def __repr__(self) -> str:
        return f"TempoMap({list(self.changes)!r}, origin_sample={self.origin_sample})"


def _spb(bpm: float) -> float:
    """Samples per beat at ``bpm``."""
    return SAMPLE_RATE_HZ * 60.0 / bpm
