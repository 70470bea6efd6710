"""Measuring a duet from its output: where the idol's notes sound in its audio (a vowel's
onset, found by the energy in a narrow band at its fundamental) against where the performer
reached the same beats (the ground truth of the corpus's tempo curve), and the follower's
tempo and place after a step change or a skipped bar."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow.corpus import Performance
from singer.follow.follower import FollowState
from singer.follow.retime import idol_notes
from singer.score import Score


class BeatTruth(Protocol):
    """Where the performer really reached each score beat (a ``Performance``, or the times
    notes were sent on a port)."""

    def sample_of(self, beat: float) -> float | None:
        """Show sample at which score ``beat`` was reached (None: never)."""
        ...


def band_energy_onset(audio: np.ndarray, freq_hz: float, around_s: float,
                      search_s: float = 0.15) -> float:
    """Time (s) the energy in a narrow band at ``freq_hz`` first reaches half its later level.

    A vowel's fundamental is absent in voiceless consonants, so this finds the vowel onset
    (NaN when the band never gets there within ``search_s`` of ``around_s``).
    """
    from scipy import signal

    sos = signal.butter(4, [freq_hz * 0.85, freq_hz * 1.15], btype="band", fs=SAMPLE_RATE_HZ,
                        output="sos")
    band = signal.sosfiltfilt(sos, audio.astype(np.float64))
    win = int(0.004 * SAMPLE_RATE_HZ)
    env = np.sqrt(np.convolve(band ** 2, np.ones(win) / win, mode="same"))
    a = max(0, int((around_s - search_s) * SAMPLE_RATE_HZ))
    mid = int(around_s * SAMPLE_RATE_HZ)
    b = int((around_s + search_s) * SAMPLE_RATE_HZ)
    level = np.median(env[b:b + int(0.1 * SAMPLE_RATE_HZ)])
    quiet = a + int(np.argmin(env[a:mid + 1]))  # the gap before this vowel
    above = np.nonzero(env[quiet:b] >= 0.5 * level)[0]
    return (quiet + above[0]) / SAMPLE_RATE_HZ if len(above) else float("nan")


def vowel_onset(audio: np.ndarray, freq_hz: float, around_s: float,
                search_s: float = 0.2) -> float:
    """Time (s) a sung note's vowel begins near ``around_s``: after the quietest moment of
    the band at ``freq_hz`` within ``search_s`` either side (the gap before the note, early
    or late), the first moment both that band and the whole signal reach half their later
    level.

    ``band_energy_onset`` looks for the gap only before ``around_s`` and asks the band alone:
    a note placed late, a neighbouring note a third away (which leaks into the band) or a
    consonant's noise in the band passed for the vowel. Against the idol's own schedule on
    the duet corpus (MIDI A and B, truth put 60 ms early, on time and late): p95 error
    13-15 ms instead of 40-52 ms, worst 28-68 ms instead of 150-213 ms. Still fooled where
    the note is joined legato to one a third below, whose vibrato reaches into the band
    (audio case B, beat 36: -60 ms measured where the schedule says +72 ms). NaN when it is
    not found.
    """
    from scipy import signal

    def envelope(x: np.ndarray) -> np.ndarray:
        win = int(0.004 * SAMPLE_RATE_HZ)
        return np.sqrt(np.convolve(x ** 2, np.ones(win) / win, mode="same"))

    sos = signal.butter(4, [freq_hz * 0.85, freq_hz * 1.15], btype="band", fs=SAMPLE_RATE_HZ,
                        output="sos")
    whole = audio.astype(np.float64)
    band, full = envelope(signal.sosfiltfilt(sos, whole)), envelope(whole)
    a = max(0, int((around_s - search_s) * SAMPLE_RATE_HZ))
    b = int((around_s + search_s) * SAMPLE_RATE_HZ)
    later = slice(b, b + int(0.1 * SAMPLE_RATE_HZ))
    if a >= b or b >= len(full):
        return float("nan")
    quiet = a + int(np.argmin(band[a:b]))
    ok = np.nonzero((band[quiet:b] >= 0.5 * np.median(band[later]))
                    & (full[quiet:b] >= 0.5 * np.median(full[later])))[0]
    return (quiet + ok[0]) / SAMPLE_RATE_HZ if len(ok) else float("nan")


def idol_asynchrony_ms(score: Score, perf: BeatTruth, audio: np.ndarray,
                       settle: list[tuple[float, float]], part: str = "idol") -> list[float]:
    """Per idol note outside the ``settle`` spans (score beats): its vowel onset measured in
    ``audio`` minus the show sample at which the performer reached that beat, in ms (NaN
    where no onset is found near it)."""
    return [v for _, v in idol_asynchrony_by_beat(score, perf, audio, part, settle)]


def idol_asynchrony_by_beat(score: Score, perf: BeatTruth, audio: np.ndarray,
                            part: str = "idol", settle: list[tuple[float, float]] | None = None
                            ) -> list[tuple[float, float]]:
    """(score beat, asynchrony ms) of every idol note the performer's beats can place
    (outside ``settle``)."""
    line = idol_notes(next(p for p in score.parts if p.name == part), score.tempo_map)
    out = []
    for n in line:
        if any(a <= n.beat_on < b for a, b in settle or ()):
            continue
        truth = perf.sample_of(n.beat_on)
        if truth is None or truth + 0.4 * SAMPLE_RATE_HZ > len(audio):
            continue
        lo = max(0, int(truth - 0.6 * SAMPLE_RATE_HZ))
        hi = min(len(audio), int(truth + 0.8 * SAMPLE_RATE_HZ))
        hz = 440.0 * 2 ** ((n.note.pitch_midi - 69) / 12)
        onset_s = vowel_onset(audio[lo:hi], hz, (truth - lo) / SAMPLE_RATE_HZ)
        out.append((n.beat_on, 1000.0 * (onset_s - (truth - lo) / SAMPLE_RATE_HZ)))
    return out


def summary(values: list[float]) -> tuple[float, float]:
    """(median, 95th percentile) of the absolute values."""
    a = np.abs(np.array(values))
    return float(np.median(a)), float(np.percentile(a, 95))


def tempo_error(log: list[FollowState], perf: Performance, from_beat: float,
                to_beat: float | None = None) -> float | None:
    """The follower's worst tempo error (a fraction: 0.05 = 5 %) against the performer's
    true tempo, over its events from score beat ``from_beat`` (to ``to_beat``); None
    without any."""
    errors = []
    for state in log:
        if state.beat < from_beat or (to_beat is not None and state.beat >= to_beat):
            continue
        truth = perf.bpm_at(state.beat)
        if truth is not None:
            errors.append(abs(state.bpm / truth - 1.0))
    return max(errors) if errors else None


def bars_to_recover(by_beat: list[tuple[float, float]], from_beat: float, within_ms: float,
                    meter: int = 4) -> float | None:
    """Bars of score from ``from_beat`` (where the performer came back in after a skip) to
    the first idol note from which every idol note sounds within ``within_ms`` of the
    performer (as measured: ``idol_asynchrony_by_beat``); None when it never does."""
    after = [(b, v) for b, v in by_beat if b >= from_beat]
    for k, (beat, _) in enumerate(after):
        if all(np.isfinite(v) and abs(v) <= within_ms for _, v in after[k:]):
            return (beat - from_beat) / meter
    return None
