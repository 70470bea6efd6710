"""A singer line sung with a UTAU bank: notes (and live notes) in, 48 kHz audio out.

``render(start, n)`` mixes the units (placed samples, ``singer.backends.utau.plan``) that
overlap the range from per-unit blocks cached on a grid fixed to each unit's start, in the
units' order: rendering a range in any chunks gives the same samples as rendering it whole.
A live note (``note_on``) starts its sample at once and is held (its vowel loops over its
steady part) until ``note_off`` gives it an end; blocks already rendered stay valid.
Expression (``set_expression``): vibrato depth and rate shape the f0 curve; breathiness,
formant shift, tension and volume shape the resynthesis (``synthesis.Shaping``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from singer.backends.utau.analysis import FRAME_SAMPLES, SampleAnalyser
from singer.backends.utau.bank import UtauBank
from singer.backends.utau.oto import OtoEntry
from singer.backends.utau.pitch import CONTEXT_SAMPLES, F0Source, PerformerPitch, hop_curve
from singer.backends.utau.plan import Unit, out_ms, plan_units, resolve_main
from singer.backends.utau.syllables import syllable_of
from singer.backends.utau.synthesis import (
    BLOCK_SAMPLES,
    Shaping,
    UnitTrack,
    extend_track,
    frames_needed,
    render_block,
)
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.performer import Expression, ExpressionEvent, expression_curves
from singer.voices import VoiceProfile, get_voice

HELD_SAMPLES = 600 * SAMPLE_RATE_HZ
"""A held live note is planned as this long (10 minutes) until its note-off."""


@dataclass(frozen=True, slots=True)
class LiveNote:
    """A note started live: its id, the note as planned now (``t_off`` provisional while
    held) and the sample at which its sound starts."""

    id: int
    note: Note
    start_sample: int
    held: bool


class UtauLine:
    """One singer's line sung with a UTAU bank (thread-safe: edits and renders may come from
    different threads)."""

    def __init__(self, bank: UtauBank, notes: list[Note] | tuple[Note, ...] = (), *,
                 analyser: SampleAnalyser | None = None, cache_dir: Path | str | None = None,
                 f0: F0Source | None = None, voice: VoiceProfile | None = None, seed: int = 0,
                 expression: Expression | None = None, velocity: float = 100.0,
                 gain: float = 1.0) -> None:
        self.bank = bank
        self.analyser = analyser or SampleAnalyser(cache_dir)
        self.velocity = velocity
        """UTAU consonant velocity (100 = as recorded)."""
        self.gain = gain
        self._pitch = PerformerPitch(voice or get_voice("soprano"), seed=seed,
                                     expression=expression)
        self._f0: Callable[[np.ndarray], np.ndarray] = self._pitch
        self._shaping: Shaping | None = None
        if expression is not None and expression != Expression():
            self._shaping = _shaping(expression, ())
        self._lock = threading.Lock()
        self._notes: list[Note] = []
        self._live: dict[int, LiveNote] = {}
        self._next_id = 1
        self._units: list[Unit] = []
        self._starts = np.zeros(0, dtype=np.int64)
        self._max_len = 0
        self._tracks: dict[tuple[OtoEntry, int, float], UnitTrack] = {}
        self._blocks: dict[tuple[Unit, int], np.ndarray] = {}
        if f0 is not None:
            self.set_f0(f0)
        self.set_notes(list(notes))

    # --- what is sung -------------------------------------------------------------------
    @property
    def notes(self) -> list[Note]:
        """Every note planned now (live notes included, held ones with a provisional end)."""
        with self._lock:
            return list(self._notes) + [n.note for n in self._live.values()]

    @property
    def units(self) -> list[Unit]:
        """The placed samples, in start order."""
        with self._lock:
            return list(self._units)

    @property
    def end_sample(self) -> int:
        """Show sample after which the line is silent."""
        with self._lock:
            return max((u.stop for u in self._units), default=0)

    def set_f0(self, f0: F0Source | None) -> None:
        """Sing this f0 curve (Hz per 10 ms hop, or a function of show samples) instead of
        the engine's own; ``None`` returns to the engine's curve."""
        curve = self._pitch if f0 is None else hop_curve(f0) if isinstance(f0, np.ndarray) \
            else f0
        with self._lock:
            self._f0 = curve
            self._tracks.clear()
            self._blocks.clear()

    def set_expression(self, base: Expression, events: tuple[ExpressionEvent, ...]
                       | list[ExpressionEvent], changed_from: int = 0) -> None:
        """Sing with expression ``base`` and its timed changes ``events``; what was rendered
        before ``changed_from`` (minus the pitch curve's context) is kept."""
        events = tuple(sorted(events))
        self._pitch.set_expression(base, events, changed_from)
        shaping = None if base == Expression() and not events else _shaping(base, events)
        with self._lock:
            self._shaping = shaping
        self._replan(changed_from)

    def set_notes(self, notes: list[Note] | tuple[Note, ...], changed_from: int = 0) -> None:
        """Sing ``notes`` (live notes stay); what was rendered before ``changed_from`` (minus
        the pitch curve's context) is kept."""
        with self._lock:
            self._notes = sorted(notes, key=lambda n: n.t_on)
        self._replan(changed_from)

    def note_on(self, sample: int, pitch_midi: float, lyric: str,
                velocity: float = 0.8) -> LiveNote:
        """Start a live note whose sound begins at show sample ``sample`` (its vowel lands one
        preutterance later) and is held until ``note_off``; ``UnknownSyllableError`` if the
        bank cannot sing ``lyric``."""
        with self._lock:
            before = [n for n in self._all_notes() if n.t_on < sample]
        prev = before[-1] if before and sample - before[-1].t_off <= 0 else None
        entry, _ = resolve_main(self.bank, syllable_of(lyric, self.bank.presamp), pitch_midi,
                                syllable_of(prev.lyric, self.bank.presamp) if prev else None)
        pre = int(round(out_ms(entry, entry.preutterance_ms, self.velocity)
                        * SAMPLE_RATE_HZ / 1000.0))
        note = Note(sample + pre, sample + pre + HELD_SAMPLES, pitch_midi, lyric, (lyric,),
                    velocity)
        with self._lock:
            live = LiveNote(self._next_id, note, sample, True)
            self._next_id += 1
            self._live[live.id] = live
        self._replan(sample)
        return live

    def note_off(self, note_id: int, sample: int) -> LiveNote:
        """End a held live note at show sample ``sample`` (its release starts there)."""
        with self._lock:
            live = self._live[note_id]
            end = max(sample, live.note.t_on + 1)
            done = replace(live, note=replace(live.note, t_off=end), held=False)
            self._live[note_id] = done
        self._replan(end)
        return done

    def forget_before(self, sample: int) -> None:
        """Drop cached audio and finished live notes that end before ``sample``."""
        with self._lock:
            self._blocks = {k: v for k, v in self._blocks.items()
                            if k[0].start + (k[1] + 1) * BLOCK_SAMPLES > sample}
            self._live = {i: n for i, n in self._live.items()
                          if n.held or n.note.t_off + SAMPLE_RATE_HZ > sample}

    def prepare(self) -> None:
        """Analyse (or load from the cache) every sample the planned units use, so rendering
        starts from ready data."""
        for wav in {u.entry.wav for u in self.units}:
            self.analyser.features(wav)

    def prepare_bank(self) -> None:
        """Analyse every sample of the bank (a live show may ask for any syllable)."""
        for wav in self.bank.wav_files():
            self.analyser.features(wav)

    # --- rendering ------------------------------------------------------------------------
    def render(self, start_sample: int, n_samples: int) -> np.ndarray:
        """Mono float32 audio of show samples ``[start, start + n)``."""
        out = np.zeros(n_samples, dtype=np.float32)
        end = start_sample + n_samples
        with self._lock:
            units, starts, max_len = self._units, self._starts, self._max_len
        first = int(np.searchsorted(starts, start_sample - max_len, side="left"))
        last = int(np.searchsorted(starts, end, side="left"))
        for unit in units[first:last]:
            if unit.stop <= start_sample or unit.start >= end:
                continue
            a, b = max(unit.start, start_sample), min(unit.stop, end)
            for block in range((a - unit.start) // BLOCK_SAMPLES,
                               (b - 1 - unit.start) // BLOCK_SAMPLES + 1):
                samples = self._block(unit, block)
                b0 = unit.start + block * BLOCK_SAMPLES
                lo, hi = max(b0, a), min(b0 + BLOCK_SAMPLES, b)
                out[lo - start_sample:hi - start_sample] += samples[lo - b0:hi - b0]
        return out

    def _block(self, unit: Unit, block: int) -> np.ndarray:
        with self._lock:
            found = self._blocks.get((unit, block))
            f0, shaping = self._f0, self._shaping
            track_key = (unit.entry, unit.start, unit.skip_ms)
            track = self._tracks.get(track_key, UnitTrack())
        if found is not None:
            return found
        features = self.analyser.features(unit.entry.wav)
        track = extend_track(track, unit, features, frames_needed(block), f0, self.velocity)
        samples = render_block(unit, block, track, features, self.gain, shaping)
        with self._lock:
            if self._f0 is f0 and self._shaping is shaping:
                old = self._tracks.get(track_key)
                if old is None or len(old.f0_hz) < len(track.f0_hz):
                    self._tracks[track_key] = track
                self._blocks[(unit, block)] = samples
        return samples

    def _all_notes(self) -> list[Note]:
        return sorted(self._notes + [n.note for n in self._live.values()],
                      key=lambda n: n.t_on)

    def _replan(self, changed_from: int) -> None:
        with self._lock:
            notes = self._all_notes()
        units = plan_units(self.bank, notes, self.velocity)
        self._pitch.set_notes(notes, changed_from)
        keep_before = changed_from - CONTEXT_SAMPLES
        with self._lock:
            self._units = units
            self._starts = np.array([u.start for u in units], dtype=np.int64)
            self._max_len = max((u.stop - u.start for u in units), default=0)
            live_keys = {(u.entry, u.start, u.skip_ms) for u in units}
            # a unit sounding across the change keeps its frames before it (the phase goes
            # on from there), the rest follows the new curve
            self._tracks = {k: _truncated(v, (keep_before - k[1]) // FRAME_SAMPLES)
                            for k, v in self._tracks.items()
                            if k in live_keys and k[1] < keep_before}
            self._blocks = {k: v for k, v in self._blocks.items()
                            if k[0].start + (k[1] + 1) * BLOCK_SAMPLES <= keep_before}


def _truncated(track: UnitTrack, n_frames: int) -> UnitTrack:
    """``track``'s first ``n_frames`` frames (all of it when it has no more)."""
    if len(track.f0_hz) <= n_frames:
        return track
    return UnitTrack(track.f0_hz[:n_frames], track.source_frame[:n_frames],
                     track.phase[:n_frames + 1])


def _shaping(base: Expression, events: tuple[ExpressionEvent, ...]) -> Shaping:
    """The expression curves the resynthesis reads, at any show samples."""
    def at(samples: np.ndarray) -> dict[str, np.ndarray]:
        return expression_curves(base, events, samples.astype(np.float64))
    return at
