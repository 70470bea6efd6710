"""Offline rendering and ensemble building: a score in, the same samples the live engine sings."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.ensemble import Ensemble, SingerLine
from singer.performer import EXPRESSION_GLIDE_S, Expression
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice

if TYPE_CHECKING:
    from singer.backends.contract import BackendLine, VoiceBackend
    from singer.score import Score

OFFLINE_BLOCK_SAMPLES = SAMPLE_RATE_HZ // 2


def build_ensemble(score: Score, voices: str | list[str] = "soprano", *, seed: int = 0,
                   synth: HarmonicNoiseSynth | None = None,
                   expression: Expression | None = None,
                   singers: list[str] | None = None) -> Ensemble:
    """One singer per part of ``score`` (voices assigned in order, the last one repeats),
    named ``singers[i]`` (default: the part's name). A singer's name picks where it reads
    the noise table, so a render with the names a live show gives (``lead``, then the
    parts') sings the same samples as that show."""
    names = [voices] if isinstance(voices, str) else list(voices)
    profiles = [get_voice(n) for n in names]  # fails early on an unknown name
    synth = synth or HarmonicNoiseSynth()
    lines = []
    for i, part in enumerate(score.parts):
        voice = profiles[min(i, len(profiles) - 1)]
        line = SingerLine(part.name if singers is None else singers[i], voice, part.notes,
                          seed=seed + i,
                          expression=expression, hop=synth.hop)
        base = expression or Expression()
        for sample, vibrato in part.vibrato:  # the source's vibrato, relative to this voice
            depth, rate = base.vibrato_depth, base.vibrato_rate
            if vibrato is not None:
                depth = vibrato.depth_cents / max(voice.vibrato_cents, 1e-3)
                rate = vibrato.rate_hz / max(voice.vibrato_rate_hz, 1e-3)
            # Settled by the note on (the performer reads the rate at the note's onset).
            at = max(0, sample - round(EXPRESSION_GLIDE_S * SAMPLE_RATE_HZ))
            line.add_expression(at, "vibrato_depth", depth)
            line.add_expression(at, "vibrato_rate", rate)
        lines.append(line)
    return Ensemble(synth, lines)


def render_ensemble(ensemble: Ensemble, *, start_sample: int = 0, end_sample: int | None = None,
                    block_samples: int = OFFLINE_BLOCK_SAMPLES,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Mono mix of ``[start, end)`` rendered block by block (same samples as live chunks)."""
    end = ensemble.end_sample if end_sample is None else end_sample
    out = np.zeros(max(0, end - start_sample), dtype=np.float32)
    t = start_sample
    while t < end:
        n = min(block_samples, end - t)
        out[t - start_sample:t - start_sample + n] = ensemble.render(t, n).sum(axis=0)
        t += n
        if progress:
            progress(t - start_sample, end - start_sample)
    return out


def render_ensemble_parts(ensemble: Ensemble, *,
                          block_samples: int = OFFLINE_BLOCK_SAMPLES,
                          progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Each singer's audio ``[singers, n]`` from show sample 0, block by block (their sum is
    ``render_ensemble``'s mix, sample for sample)."""
    end = ensemble.end_sample
    out = np.zeros((len(ensemble.lines), max(0, end)), dtype=np.float32)
    t = 0
    while t < end:
        n = min(block_samples, end - t)
        out[:, t:t + n] = ensemble.render(t, n)
        t += n
        if progress:
            progress(t, end)
    return out


def render_score(score: Score, voices: str | list[str] = "soprano", *, seed: int = 0,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """The whole score sung offline: float32 mono at 48 kHz, WAV sample 0 = show sample 0."""
    return render_ensemble(build_ensemble(score, voices, seed=seed), progress=progress)


def open_backend_lines(score: Score, backends: list[VoiceBackend], *, seed: int = 0
                       ) -> list[BackendLine]:
    """One line per part of ``score``, each with its backend (assigned in order, the last one
    repeats); a part's vibrato marks become expression changes where the backend takes them."""
    if not backends:
        raise ValueError("at least one voice backend is needed")
    lines = []
    for i, part in enumerate(score.parts):
        backend = backends[min(i, len(backends) - 1)]
        line = backend.open_line(part.name, part.notes, seed=seed + i)
        profile = getattr(backend, "profile", None)
        if line.supports_expression and profile is not None:
            for sample, vibrato in part.vibrato:
                depth = rate = 1.0
                if vibrato is not None:
                    depth = vibrato.depth_cents / max(profile.vibrato_cents, 1e-3)
                    rate = vibrato.rate_hz / max(profile.vibrato_rate_hz, 1e-3)
                at = max(0, sample - round(EXPRESSION_GLIDE_S * SAMPLE_RATE_HZ))
                line.add_expression(at, "vibrato_depth", depth)
                line.add_expression(at, "vibrato_rate", rate)
        lines.append(line)
    return lines


def render_lines(lines: list[BackendLine], *, start_sample: int = 0,
                 end_sample: int | None = None, lookahead_samples: int = 0,
                 block_samples: int = OFFLINE_BLOCK_SAMPLES,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Mono mix of backend lines over ``[start, end)``, block by block as the live engine
    would: each block's phrase-ahead work is prepared ``lookahead_samples`` ahead first."""
    end = max(line.end_sample for line in lines) if end_sample is None else end_sample
    out = np.zeros(max(0, end - start_sample), dtype=np.float32)
    t = start_sample
    while t < end:
        n = min(block_samples, end - t)
        for line in lines:
            line.prepare(t + n + lookahead_samples)
            out[t - start_sample:t - start_sample + n] += line.render(t, n)
        t += n
        if progress:
            progress(t - start_sample, end - start_sample)
    return out


def render_score_with(score: Score, backends: list[VoiceBackend], *, seed: int = 0,
                      progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """The whole score sung offline through the backend contract (any voice: built-in, UTAU,
    DiffSinger), float32 mono at 48 kHz, WAV sample 0 = show sample 0."""
    lines = open_backend_lines(score, backends, seed=seed)
    ahead = max(b.ahead.lookahead_samples for b in backends)
    return render_lines(lines, lookahead_samples=ahead, progress=progress)
