"""The f0 a UTAU line sings: the engine's own pitch curve, or one the caller gives.

The engine's curve (``singer.performer.sung_pitch_midi``: preparation, overshoot, delayed
vibrato, drift) is computed on the 10 ms hop grid in fixed blocks of frames with context on
both sides, so the f0 at a show sample never depends on which range is being rendered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from singer.contracts import DEFAULT_HOP_SAMPLES, SAMPLE_RATE_HZ, Note
from singer.performer import Expression, ExpressionEvent, sung_pitch_midi
from singer.voices import VoiceProfile

F0Source = np.ndarray | Callable[[np.ndarray], np.ndarray]
"""An f0 curve: Hz per 10 ms hop (frame ``i`` at show sample ``i * 480``), or a function of
show samples (int64 array) returning Hz."""

BLOCK_FRAMES = 20
PAD_FRAMES = 40
CONTEXT_SAMPLES = SAMPLE_RATE_HZ
"""Notes this far outside a block still shape its curve (transitions)."""


def midi_to_hz(midi: np.ndarray) -> np.ndarray:
    """Frequency of (fractional) MIDI numbers."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def hop_curve(f0_hz: np.ndarray, hop: int = DEFAULT_HOP_SAMPLES) -> Callable[[np.ndarray],
                                                                               np.ndarray]:
    """An ``F0Source`` function reading a per-hop Hz array (held at both ends)."""
    frames = np.arange(len(f0_hz)) * float(hop)
    values = np.asarray(f0_hz, dtype=np.float64)

    def at(samples: np.ndarray) -> np.ndarray:
        return np.interp(samples.astype(np.float64), frames, values)
    return at


class PerformerPitch:
    """The engine's pitch curve for a line of notes, evaluated at any show samples."""

    def __init__(self, voice: VoiceProfile, *, seed: int = 0,
                 expression: Expression | None = None,
                 hop: int = DEFAULT_HOP_SAMPLES) -> None:
        self.voice = voice
        self.seed = seed
        self.expression = expression
        self.events: tuple[ExpressionEvent, ...] = ()
        """Timed expression changes (vibrato depth and rate shape the curve)."""
        self.hop = hop
        self._notes: list[Note] = []
        self._blocks: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def set_notes(self, notes: list[Note] | tuple[Note, ...], changed_from: int = 0) -> None:
        """Sing these notes from now on; blocks whose context reaches ``changed_from`` are
        recomputed."""
        with self._lock:
            self._notes = sorted(notes, key=lambda n: n.t_on)
            span = BLOCK_FRAMES * self.hop
            reach = PAD_FRAMES * self.hop + CONTEXT_SAMPLES
            self._blocks = {b: v for b, v in self._blocks.items()
                            if (b + 1) * span + reach < changed_from}

    def set_expression(self, base: Expression, events: tuple[ExpressionEvent, ...],
                       changed_from: int = 0) -> None:
        """Sing with expression ``base`` and its changes ``events`` (vibrato depth and rate);
        blocks whose context reaches ``changed_from`` are recomputed."""
        with self._lock:
            self.expression, self.events = base, tuple(events)
            span = BLOCK_FRAMES * self.hop
            reach = PAD_FRAMES * self.hop + CONTEXT_SAMPLES
            self._blocks = {b: v for b, v in self._blocks.items()
                            if (b + 1) * span + reach < changed_from}

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Hz at show ``samples`` (linear between hop frames)."""
        pos = samples.astype(np.float64) / self.hop
        lo = np.floor(pos).astype(np.int64)
        frac = pos - lo
        first, last = int(lo.min()), int(lo.max()) + 1
        table = self._frames(first, last + 1)
        midi = table[lo - first] * (1 - frac) + table[lo + 1 - first] * frac
        return midi_to_hz(midi)

    def _frames(self, first: int, stop: int) -> np.ndarray:
        out = []
        for block in range(first // BLOCK_FRAMES, (stop - 1) // BLOCK_FRAMES + 1):
            out.append(self._block(block))
        table = np.concatenate(out)
        base = (first // BLOCK_FRAMES) * BLOCK_FRAMES
        return table[first - base:stop - base]

    def _block(self, block: int) -> np.ndarray:
        with self._lock:
            found = self._blocks.get(block)
            notes, expression, events = self._notes, self.expression, self.events
        if found is not None:
            return found
        first = block * BLOCK_FRAMES - PAD_FRAMES
        t = np.arange(first, first + BLOCK_FRAMES + 2 * PAD_FRAMES) * self.hop
        lo, hi = int(t[0]) - CONTEXT_SAMPLES, int(t[-1]) + CONTEXT_SAMPLES
        near = [n for n in notes if n.t_off > lo and n.t_on < hi]
        midi = sung_pitch_midi(near, self.voice, t, seed=self.seed, hop=self.hop,
                               expression=expression, expression_events=events) \
            if near else np.full(len(t), 60.0)
        value = midi[PAD_FRAMES:PAD_FRAMES + BLOCK_FRAMES]
        with self._lock:
            if self._notes is notes and self.events is events \
                    and self.expression is expression:
                self._blocks[block] = value
        return value
