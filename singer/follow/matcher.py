"""Which score note did the performer just start? A hidden Markov model over the part's notes.

The hidden state is the index of the note the performer is on; each detected onset is one
step. From note ``i`` the performer usually goes on to ``i + 1``; sometimes a note was missed
or left out (``i + 2``, ``i + 3``), an extra onset fell inside a note (``i``), or the performer
jumped (a skipped bar: anywhere up to ``JUMP_BEATS`` ahead, or back up to a bar). Each step
weighs the heard pitch against each note's pitch and the time since the last onset against
the beats between the notes at the current tempo. The forward variables are kept normalised
and only the window of notes around the likeliest one is updated, so the work per onset is
bounded whatever the song's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from singer.follow.part import FollowedPart

STEP_PROBS = {1: 0.86, 0: 0.03, 2: 0.05, 3: 0.015}
"""Transition weights by how many notes the performer moved on."""
JUMP_PROB = 0.03
"""Weight of all longer jumps forward together (spread over the notes in reach)."""
BACK_PROB = 0.01
JUMP_BEATS = 12.0
BACK_BEATS = 4.0
WINDOW_NOTES = 64
"""Notes either side of the likeliest one the model updates (the bound on work per onset)."""
IOI_SIGMA = 0.35
"""Spread of log(heard IOI / expected IOI): rubato and onset jitter."""
WRONG_NOTE = 0.02
"""Likelihood floor of any pitch (a wrong note, a mis-tracked frame)."""
OCTAVE_ERROR = 0.1


@dataclass(frozen=True, slots=True)
class Match:
    """The likeliest note for the onset just heard, and how sure the model is."""

    index: int
    confidence: float
    pitch_error: float
    step: int
    """How many notes on from the previous match (1 = the next note)."""


class NoteMatcher:
    """Forward algorithm over the notes of a ``FollowedPart``, one step per onset.

    ``pitch_sigma`` (semitones) is how far heard pitches stray: ~0.5 for a voice, ~0.2 for
    MIDI.
    """

    def __init__(self, part: FollowedPart, pitch_sigma: float = 0.5) -> None:
        self.part = part
        self.pitch_sigma = pitch_sigma
        self.reset()

    def reset(self) -> None:
        """Back before the first note."""
        n = len(self.part)
        self._alpha = np.zeros(n + 1)  # state 0 = before the first note, k = on note k - 1
        self._alpha[0] = 1.0
        self.current = -1
        self._last_sample: int | None = None

    def step(self, pitch_midi: float, onset_sample: int, period_s: float) -> Match:
        """Take one heard onset; the likeliest note it started."""
        n = len(self.part)
        onsets = self.part.onsets
        centre = self.current + 1
        lo = max(0, centre - WINDOW_NOTES)
        hi = min(n + 1, centre + WINDOW_NOTES + 1)
        prev = self._alpha[lo:hi].copy()
        new = np.zeros(hi - lo)
        # Pitch likelihood of each note in the window (state k plays note k - 1).
        idx = np.arange(lo, hi) - 1
        valid = idx >= 0
        dist = np.full(hi - lo, 99.0)
        dist[valid] = pitch_midi - self.part.pitches[idx[valid]]
        like = np.exp(-0.5 * (dist / self.pitch_sigma) ** 2)
        for octave in (-12.0, 12.0):
            like += OCTAVE_ERROR * np.exp(-0.5 * ((dist + octave) / self.pitch_sigma) ** 2)
        like = np.where(valid, like + WRONG_NOTE, 0.0)
        ioi_s = None if self._last_sample is None else \
            (onset_sample - self._last_sample) / 48_000.0
        states = np.arange(lo, hi)
        for s_from in np.flatnonzero(prev > 1e-9):
            i = lo + s_from
            weight = prev[s_from]
            trans = self._transitions(i, states, ioi_s, period_s)
            new += weight * trans
        new *= like
        total = new.sum()
        if total <= 0:
            new = like
            total = new.sum()
        new /= total
        self._alpha[:] = 0.0
        self._alpha[lo:hi] = new
        best = int(np.argmax(new)) + lo
        step = best - 1 - self.current
        self.current = best - 1
        self._last_sample = onset_sample
        note_pitch = self.part.pitches[self.current] if self.current >= 0 else pitch_midi
        del onsets
        return Match(self.current, float(new.max()), float(pitch_midi - note_pitch), step)

    def _transitions(self, i: int, states: np.ndarray, ioi_s: float | None,
                     period_s: float) -> np.ndarray:
        """Weights of moving from state ``i`` to each of ``states`` at this onset."""
        onsets = self.part.onsets
        d = states - i
        out = np.zeros(len(states))
        for step, p in STEP_PROBS.items():
            out[d == step] = p
        here = onsets[i - 1] if i >= 1 else onsets[0] - 1.0
        target_beats = onsets[np.clip(states - 1, 0, None)]
        ahead = (d > 3) & (target_beats - here <= JUMP_BEATS)
        if ahead.any():
            out[ahead] = JUMP_PROB / ahead.sum()
        back = (d < 0) & (here - target_beats <= BACK_BEATS)
        if back.any():
            out[back] = BACK_PROB / back.sum()
        if ioi_s is None or i == 0:
            return out
        # Timing: the heard gap against the beats to the note (a jump: to the next note).
        nxt = onsets[i] if i < len(onsets) else here + 1.0
        beats = np.where((d >= 1) & (d <= 3), target_beats - here, nxt - here)
        beats = np.maximum(beats, 0.125)
        expected = beats * period_s
        z = np.log(max(ioi_s, 0.02) / expected) / IOI_SIGMA
        timing = np.exp(-0.5 * np.minimum(z * z, 50.0)) + 0.05
        timing = np.where(d == 0, 0.3, timing)
        return out * timing
