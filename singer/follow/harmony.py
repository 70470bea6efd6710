"""Harmony in key: a third or a sixth above or below a melody, from the song's key.

The key is estimated from the score's pitch classes (Krumhansl–Kessler profiles, major and
minor). A melody note is placed on the nearest degree of that scale and moved by scale steps
(a third: 2 steps, a sixth: 5), so every harmony note is in key; a chromatic melody note is
harmonised from the scale degree nearest to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from singer.score import Part, Score

Interval = Literal["third_above", "third_below", "sixth_above", "sixth_below"]
INTERVALS: dict[str, int] = {"third_above": 2, "third_below": -2, "sixth_above": 5,
                             "sixth_below": -5}
"""Scale steps of each harmony interval."""
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}


@dataclass(frozen=True, slots=True)
class Key:
    """A key: ``tonic`` pitch class (0 = C) and ``mode`` (major or natural minor)."""

    tonic: int
    mode: str

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        """The scale's pitch classes."""
        return tuple((self.tonic + s) % 12 for s in _SCALES[self.mode])

    def contains(self, pitch_midi: float) -> bool:
        """True when ``pitch_midi`` (rounded) is a note of the scale."""
        return int(round(pitch_midi)) % 12 in self.pitch_classes


def estimate_key(score: Score) -> Key:
    """The key whose profile best correlates with the score's duration-weighted pitch classes."""
    hist = np.zeros(12)
    for part in score.parts:
        for note in part.notes:
            hist[int(round(note.pitch_midi)) % 12] += note.t_off - note.t_on
    best: tuple[float, Key] | None = None
    for mode, profile in (("major", _MAJOR), ("minor", _MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(hist, np.roll(profile, tonic))[0, 1]) if hist.any() else 0.0
            if best is None or r > best[0]:
                best = (r, Key(tonic, mode))
    assert best is not None
    return best[1]


def harmony_pitch(pitch_midi: float, key: Key, interval: Interval) -> float:
    """The in-key note ``interval`` away from ``pitch_midi`` (placed on its nearest degree)."""
    steps = INTERVALS[interval]
    scale = _SCALES[key.mode]
    rel = pitch_midi - key.tonic
    octave, within = divmod(rel, 12.0)
    # Nearest scale degree (wrapping to the next octave's tonic).
    candidates = [(abs(within - s), k, 0) for k, s in enumerate(scale)]
    candidates.append((abs(within - 12.0), 0, 1))
    _, degree, carry = min(candidates)
    index = degree + steps
    octave += carry + index // 7
    return float(key.tonic + 12 * octave + scale[index % 7])


def harmony_part(part: Part, key: Key, interval: Interval, name: str = "harmony") -> Part:
    """``part`` moved ``interval`` in ``key``, note for note (same times and lyrics)."""
    notes = tuple(replace(n, pitch_midi=harmony_pitch(n.pitch_midi, key, interval))
                  for n in part.notes)
    return Part(name, notes)
