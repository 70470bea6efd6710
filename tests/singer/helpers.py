"""Small builders for tests: notes on the show clock and one-shot renders."""

from __future__ import annotations

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.ensemble import Ensemble, SingerLine
from singer.performer import Expression
from singer.render import render_ensemble
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice

SR = SAMPLE_RATE_HZ


def line(spec: list[tuple[float, float, float, tuple[str, ...]]]) -> list[Note]:
    """Notes from (start s, duration s, midi, phonemes) tuples."""
    return [Note(int(round(a * SR)), int(round((a + d) * SR)), m, " ".join(ph), ph)
            for a, d, m, ph in spec]


def ensemble_for(notes: list[Note], voice: str = "soprano", seed: int = 0,
                 expression: Expression | None = None) -> Ensemble:
    """A one-singer ensemble on CPU for ``notes``."""
    line = SingerLine("lead", get_voice(voice), notes, seed, expression)
    return Ensemble(HarmonicNoiseSynth(device="cpu"), [line])


def sing(notes: list[Note], voice: str = "soprano", seed: int = 0,
         expression: Expression | None = None) -> np.ndarray:
    """Render ``notes`` offline (mono float32)."""
    return render_ensemble(ensemble_for(notes, voice, seed, expression))
