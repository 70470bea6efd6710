"""The duet corpus: scores with a performer's part and an idol's part, and performances of
the performer's part along known tempo curves (steady, ramps, rubato, a step, a fermata, a
skipped bar), sung by the project's own voice (its vibrato, noise at a chosen SNR) or played
as MIDI note-ons (a share deleted, wrong notes inserted). Ground truth (score beat → show
sample) comes from the curve. The follow tests and ``bench duet`` both use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow.events import PerformerEvent
from singer.render import render_score
from singer.score import Score, SourceNote, TimeSignature, assemble_score
from singer.tempo import TempoChange, TempoMap

SYLLABLES = list("他卡怕撒踢哭坡色哈发")
TempoCurve = Callable[[float], float]
"""Tempo factor (× the base bpm) at a performance beat."""


@dataclass
class Performance:
    """The performer's audio and the truth: where each score beat was sung."""

    audio: np.ndarray
    tempo_map: TempoMap
    skip: tuple[float, float] | None  # score beats never sung
    fermata: tuple[float, float] | None  # (score beat of the held note's end, extra beats)
    notes: list[SourceNote]  # in performance beats

    def perf_beat(self, beat: float) -> float | None:
        """Performance beat at which score ``beat`` was sung (None inside the skipped bar)."""
        out = beat
        if self.skip is not None:
            a, b = self.skip
            if a <= beat < b:
                return None
            if beat >= b:
                out -= b - a
        if self.fermata is not None and beat >= self.fermata[0]:
            out += self.fermata[1]
        return out

    def sample_of(self, beat: float) -> float | None:
        """Show sample at which score ``beat`` was sung."""
        p = self.perf_beat(beat)
        return None if p is None else float(self.tempo_map.beat_to_sample(p))

    def bpm_at(self, beat: float) -> float | None:
        """The performer's true tempo (bpm) at score ``beat``."""
        p = self.perf_beat(beat)
        return None if p is None else self.tempo_map.bpm_at(p)


def duet_score(rhythm: list[float], melody: list[int], harmony: list[int], bpm: float,
               meter: int, title: str, idol_rhythm: list[float] | None = None) -> Score:
    """A two-part score: 'performer' sings ``melody``; 'idol' sings ``harmony`` (pitch 0:
    a rest)."""
    perf = _line(rhythm, melody)
    idol = _line(idol_rhythm or rhythm, harmony, offset=3)
    return assemble_score(title, TempoMap([TempoChange(0.0, bpm)]),
                          {"performer": perf, "idol": idol}, source=title,
                          time_signatures=[TimeSignature(0.0, meter, 4)])


def _line(rhythm: list[float], pitches: list[int], offset: int = 0) -> list[SourceNote]:
    out, beat = [], 0.0
    for k, (dur, pitch) in enumerate(zip(rhythm, pitches, strict=True)):
        if pitch > 0:
            out.append(SourceNote(beat, beat + dur * 0.97, float(pitch),
                                  SYLLABLES[(k + offset) % len(SYLLABLES)]))
        beat += dur
    return out


def score_a(bars: int = 12) -> Score:
    """4/4 at 100 bpm, ``bars`` bars of quarters and halves in C major; idol a third below."""
    bar = [[1, 1, 1, 1], [1, 1, 2], [2, 1, 1], [1, 1, 1, 1]]
    rhythm = [float(d) for k in range(bars) for d in bar[k % 4]]
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    melody, harmony = [], []
    walk = [0, 2, 4, 3, 1, 4, 5, 2, 6, 4, 3, 1, 2, 5, 7, 4, 3, 0, 2, 6]
    for k in range(len(rhythm)):
        deg = walk[k % len(walk)] + (k // len(walk)) % 2
        deg = min(deg, 7)
        melody.append(scale[deg])
        harmony.append(scale[max(deg - 2, 0)] - (12 if deg < 2 else 0))
    return duet_score(rhythm, melody, harmony, 100.0, 4, "duet A")


def score_b() -> Score:
    """3/4 at 84 bpm in G major, 14 bars with eighth notes; the idol answers in long notes."""
    bars: list[list[float]] = [[1, 0.5, 0.5, 1], [2, 1], [0.5, 0.5, 1, 1], [3]]
    rhythm = [float(d) for k in range(14) for d in bars[k % 4]]
    scale = [55, 57, 59, 60, 62, 64, 66, 67, 69]
    walk = [4, 5, 7, 5, 4, 2, 4, 6, 5, 3, 1, 2, 4, 8, 7]
    melody = [scale[walk[k % len(walk)]] for k in range(len(rhythm))]
    idol_rhythm = [3.0] * 14
    harmony = [scale[(2 * k) % 5] for k in range(14)]
    return duet_score(rhythm, melody, harmony, 84.0, 3, "duet B", idol_rhythm)


def perform(score: Score, *, bpm: float, curve: TempoCurve | None = None,
            fermata_note: int | None = None, fermata_beats: float = 2.0,
            skip_bar: int | None = None, meter: int = 4, snr_db: float | None = 20.0,
            voice: str = "tenor", seed: int = 1, sing: bool = True) -> Performance:
    """The score's 'performer' part sung at ``bpm`` × ``curve(perf_beat)``, optionally with a
    note held ``fermata_beats`` longer and bar ``skip_bar`` (0-based) left out; ``sing``
    False: the notes alone (for MIDI), no audio."""
    tm = score.tempo_map
    part = score.parts[0]
    skip = None if skip_bar is None else (float(skip_bar * meter), float((skip_bar + 1) * meter))
    fermata = None
    src: list[SourceNote] = []
    for k, note in enumerate(part.notes):
        on, off = tm.sample_to_beat(note.t_on), tm.sample_to_beat(note.t_off)
        if skip is not None and skip[0] <= on < skip[1]:
            continue
        shift = 0.0
        if skip is not None and on >= skip[1]:
            shift -= skip[1] - skip[0]
        if fermata is not None:
            shift += fermata[1]
        extra = 0.0
        if k == fermata_note:
            extra = fermata_beats
            fermata = (round(off) * 1.0, fermata_beats)
        src.append(SourceNote(on + shift, off + shift + extra, note.pitch_midi, note.lyric))
    end = max(n.beat_off for n in src) + 2
    f = curve or (lambda _b: 1.0)
    changes = [TempoChange(b, bpm * f(b)) for b in np.arange(0.0, end, 0.25)]
    perf_tm = TempoMap(changes)
    if not sing:  # MIDI: the notes alone
        return Performance(np.zeros(0, np.float32), perf_tm, skip, fermata, src)
    perf_score = assemble_score("performer", perf_tm, {"performer": src})
    audio = render_score(perf_score, voice, seed=seed)
    if snr_db is not None:
        rng = np.random.default_rng(seed)
        rms = float(np.sqrt(np.mean(audio[audio != 0] ** 2)))
        audio = audio + rng.normal(0, rms / 10 ** (snr_db / 20), len(audio)).astype(np.float32)
    return Performance(audio.astype(np.float32), perf_tm, skip, fermata, src)


def rubato(depth: float = 0.08, period_beats: float = 16.0) -> TempoCurve:
    """±``depth`` sinusoidal tempo."""
    return lambda b: 1.0 + depth * math.sin(2 * math.pi * b / period_beats)


def step(at_beat: float, ratio: float = 1.15) -> TempoCurve:
    """Tempo × ``ratio`` from ``at_beat`` on."""
    return lambda b: ratio if b >= at_beat else 1.0


def ramp(from_beat: float, to_beat: float, ratio: float) -> TempoCurve:
    """Tempo × 1 until ``from_beat``, moving linearly to × ``ratio`` at ``to_beat``, then
    held there."""
    span = to_beat - from_beat
    return lambda b: 1.0 + (ratio - 1.0) * min(1.0, max(0.0, (b - from_beat) / span))


def ms(samples: float) -> float:
    """Samples → milliseconds."""
    return 1000.0 * samples / SAMPLE_RATE_HZ


def midi_events(perf: Performance, *, deleted: float = 0.02, inserted: float = 0.02,
                seed: int = 3) -> list[PerformerEvent]:
    """The performance's note-ons as MIDI, with a share left out and wrong notes added."""
    rng = np.random.default_rng(seed)
    out = []
    for note in perf.notes:
        at = perf.tempo_map.beat_to_sample(note.beat_on)
        if rng.random() < deleted:
            continue
        out.append(PerformerEvent(at, note.pitch_midi, at, "midi"))
        if rng.random() < inserted:
            extra = at + int(rng.uniform(0.1, 0.3) * SAMPLE_RATE_HZ)
            out.append(PerformerEvent(extra, float(rng.integers(48, 80)), extra, "midi"))
    return sorted(out, key=lambda e: e.onset_sample)


@dataclass(frozen=True)
class CurveCase:
    """One tempo curve of the corpus, played on score A (4/4, score 100 bpm)."""

    name: str
    bpm: float
    """The performer's base tempo (the score says 100)."""
    curve: TempoCurve | None = None
    changes: tuple[float, ...] = ()
    """Score beats where the tempo changes (a step, a ramp's start and end, a fermata's held
    note); the start (beat 0) always counts."""
    fermata_note: int | None = None
    skip_bar: int | None = None
    step_beat: float | None = None
    """A step change's score beat (its tempo error is measured 4 beats after)."""
    bars: int = 12

    def score(self) -> Score:
        """The score this case is played on."""
        return score_a(self.bars)

    def perform(self, *, sing: bool, seed: int = 1) -> Performance:
        """The performer along this curve: sung (with noise at 20 dB SNR), or the notes."""
        return perform(self.score(), bpm=self.bpm, curve=self.curve,
                       fermata_note=self.fermata_note, skip_bar=self.skip_bar, sing=sing,
                       seed=seed)

    def settle(self, meter: int = 4) -> list[tuple[float, float]]:
        """Score-beat spans left out of the asynchrony: two bars after each change (after
        a skipped bar: from its start to two bars past its end)."""
        spans = [(c, c + 2.0 * meter) for c in (0.0, *self.changes)]
        if self.skip_bar is not None:
            spans.append((float(self.skip_bar * meter), float((self.skip_bar + 3) * meter)))
        return spans


CURVES = (
    CurveCase("steady", 92.0),
    CurveCase("ramp_up", 92.0, ramp(8.0, 40.0, 1.2), changes=(8.0, 40.0), bars=14),
    CurveCase("ramp_down", 92.0, ramp(8.0, 40.0, 0.8), changes=(8.0, 40.0), bars=14),
    CurveCase("rubato", 92.0, rubato(0.08, 16.0)),
    CurveCase("step", 92.0, step(16.0, 1.15), changes=(16.0,), step_beat=16.0),
    CurveCase("fermata", 92.0, fermata_note=9, changes=(11.0,)),
    CurveCase("skip", 92.0, skip_bar=6),
)
"""The tempo curves ``bench duet`` measures: steady; ±20 % ramps over 8 bars; ±8 %
sinusoidal rubato; a +15 % step; a 2-beat fermata; a skipped bar (each alone)."""
