"""Render the opening of a score and measure its pitch against the notes (Praat's f0)."""

from __future__ import annotations

import numpy as np

from singer.render import build_ensemble, render_ensemble
from singer.score import Score
from tests.measure import note_cents_errors


def sung_cents(score: Score, voice: str, n_notes: int = 8) -> np.ndarray:
    """|cents| error per note body of the first ``n_notes`` notes, rendered alone."""
    notes = score.notes[:n_notes]
    audio = render_ensemble(build_ensemble(score, voice), end_sample=notes[-1].t_off)
    return np.abs(note_cents_errors(audio, notes, min_body_s=0.15))
