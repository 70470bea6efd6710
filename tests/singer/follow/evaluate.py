"""Measuring a duet: where the idol's notes sound in its audio against where the performer
sang the same beats (the ground truth of the tempo curve)."""

from __future__ import annotations

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow.retime import idol_notes
from singer.score import Score
from tests.measure import band_energy_onset
from tests.singer.follow.corpus import Performance


def idol_asynchrony_ms(score: Score, perf: Performance, audio: np.ndarray,
                       settle: list[tuple[float, float]], part: str = "idol") -> list[float]:
    """Per idol note outside the ``settle`` spans (score beats): its vowel onset measured in
    ``audio`` minus the show sample at which the performer reached that beat, in ms."""
    line = idol_notes(next(p for p in score.parts if p.name == part), score.tempo_map)
    out = []
    for n in line:
        if any(a <= n.beat_on < b for a, b in settle):
            continue
        truth = perf.sample_of(n.beat_on)
        if truth is None or truth + 0.4 * SAMPLE_RATE_HZ > len(audio):
            continue
        lo = max(0, int(truth - 0.6 * SAMPLE_RATE_HZ))
        hi = min(len(audio), int(truth + 0.8 * SAMPLE_RATE_HZ))
        hz = 440.0 * 2 ** ((n.note.pitch_midi - 69) / 12)
        onset_s = band_energy_onset(audio[lo:hi], hz, (truth - lo) / SAMPLE_RATE_HZ,
                                    search_s=0.2)
        out.append(1000.0 * (onset_s - (truth - lo) / SAMPLE_RATE_HZ))
    return out


def summary(values: list[float]) -> tuple[float, float]:
    """(median, 95th percentile) of the absolute values."""
    a = np.abs(np.array(values))
    return float(np.median(a)), float(np.percentile(a, 95))


def idol_asynchrony_by_beat(score: Score, perf: Performance, audio: np.ndarray,
                            part: str = "idol") -> list[tuple[float, float]]:
    """(score beat, asynchrony ms) of every idol note the performer's beats can place."""
    line = idol_notes(next(p for p in score.parts if p.name == part), score.tempo_map)
    beats = [n.beat_on for n in line]
    values = []
    for b in beats:
        v = idol_asynchrony_ms(score, perf, audio, [(-1e9, b), (b + 1e-6, 1e9)], part)
        if v:
            values.append((b, v[0]))
    return values
