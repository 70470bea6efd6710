"""The built-in parametric voice behind the backend contract: a thin adapter over
``SingerLine`` and ``Ensemble`` (their code and output are unchanged).

Offline and in tests a ``BuiltinLine`` renders its singer alone through a one-line
``Ensemble``; the live engine keeps batching every built-in singer in its shared ensemble and
takes the ``SingerLine`` from ``BuiltinLine.singer_line`` (see the design note in
``singer.backends.contract``).
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from singer.backends.contract import Ahead, BackendLine, LiveStart, VoiceBackend, VoiceInfo
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.ensemble import Ensemble, SingerLine
from singer.lyrics import detect_language, phonemize_word
from singer.lyrics.errors import LyricError
from singer.performer import Expression
from singer.phonemes import spec
from singer.synth import HarmonicNoiseSynth
from singer.timeline import split_syllable
from singer.voices import VOICES, VoiceProfile, get_voice

HELD_S = 600.0
"""A held live note's provisional length (10 minutes) until its note-off."""


def onset_lead_samples(phonemes: tuple[str, ...]) -> int:
    """Samples a syllable's onset consonants sound before its vowel (a live note's consonants
    start at the note-on, so its vowel lands this much later)."""
    onset, _, _ = split_syllable(phonemes)
    return int(round(sum(spec(p).lead_s for p in onset) * SAMPLE_RATE_HZ))


def builtin_info(profile: VoiceProfile) -> VoiceInfo:
    """How ``livesinger voices`` lists a built-in voice."""
    return VoiceInfo(name=profile.name, type="builtin", path=None, languages=("zh", "en"),
                     terms="part of livesinger (its licence)", description=profile.description)


def builtin_infos() -> list[VoiceInfo]:
    """Every built-in voice."""
    return [builtin_info(v) for v in VOICES.values()]


class BuiltinLine(BackendLine):
    """A ``SingerLine`` behind the contract; live notes become notes of the line."""

    supports_expression = True

    def __init__(self, line: SingerLine, synth: HarmonicNoiseSynth) -> None:
        self.name = line.name
        self.singer_line = line
        """The wrapped line (the live ensemble batches it with the other built-in singers)."""
        self._ensemble = Ensemble(synth, [line])
        self._lock = threading.Lock()
        self._score: list[Note] = line.notes
        self._live: dict[int, Note] = {}
        self._next_id = 1

    def set_notes(self, notes: list[Note] | tuple[Note, ...], changed_from: int = 0) -> None:
        """Sing ``notes`` (live notes stay)."""
        with self._lock:
            self._score = list(notes)
        self._publish(changed_from)

    def add_expression(self, sample: int, field: str, value: float) -> None:
        """Glide ``field`` to ``value`` from ``sample`` on (``SingerLine.add_expression``)."""
        if field not in Expression.__dataclass_fields__:
            raise ValueError(f"unknown expression {field!r}; known: "
                             f"{', '.join(Expression.__dataclass_fields__)}")
        self.singer_line.add_expression(sample, field, value)

    def note_on(self, sample: int, pitch_midi: float, lyric: str,
                velocity: float = 0.8) -> LiveStart:
        """A held note whose onset consonants start at ``sample`` (a held note before it ends
        there: one singer sings one note at a time)."""
        try:
            phonemes = phonemize_word([lyric], detect_language([lyric]))[0]
        except LyricError as err:
            raise ValueError(f"syllable {lyric!r}: {err}") from None
        vowel = sample + onset_lead_samples(phonemes)
        note = Note(vowel, vowel + int(HELD_S * SAMPLE_RATE_HZ), pitch_midi, lyric, phonemes,
                    velocity)
        with self._lock:
            for key, held in self._live.items():
                if held.t_off > sample:
                    self._live[key] = replace(held, t_off=max(sample, held.t_on + 1))
            live_id = self._next_id
            self._next_id += 1
            self._live[live_id] = note
        self._publish(sample)
        return LiveStart(live_id, sample, vowel)

    def note_off(self, note_id: int, sample: int) -> None:
        """End live note ``note_id`` at ``sample`` (unknown ids are ignored: already over)."""
        with self._lock:
            note = self._live.get(note_id)
            if note is None or note.t_off <= sample:
                return
            self._live[note_id] = replace(note, t_off=max(sample, note.t_on + 1))
        self._publish(sample)

    def render(self, start_sample: int, n_samples: int) -> np.ndarray:
        """The singer alone, ``[start, start + n)``."""
        return self._ensemble.render(start_sample, n_samples)[0]

    def forget_before(self, sample: int) -> None:
        """Drop cached blocks and finished live notes before ``sample``."""
        with self._lock:
            self._live = {k: n for k, n in self._live.items() if n.t_off + SAMPLE_RATE_HZ > sample}
        self.singer_line.forget_before(sample)

    @property
    def end_sample(self) -> int:
        """Show sample after which the singer is silent."""
        return self.singer_line.end_sample

    def _publish(self, changed_from: int) -> None:
        with self._lock:
            notes = sorted(self._score + list(self._live.values()), key=lambda n: n.t_on)
        self.singer_line.set_notes(notes, changed_from)


class BuiltinBackend(VoiceBackend):
    """A built-in voice profile (``soprano``, ``tenor``) sung by the torch synthesizer."""

    ahead = Ahead("streaming")
    expression_fields = frozenset({"vibrato_depth", "vibrato_rate", "breathiness", "tension",
                                   "volume", "formant_shift"})

    def __init__(self, profile: VoiceProfile | str, synth: HarmonicNoiseSynth | None = None,
                 ) -> None:
        self.profile = get_voice(profile) if isinstance(profile, str) else profile
        self.info = builtin_info(self.profile)
        self.synth = synth or HarmonicNoiseSynth()

    @property
    def device(self) -> str:
        """The synthesizer's torch device."""
        return self.synth.device.type

    def open_line(self, name: str, notes: list[Note] | tuple[Note, ...] = (), *, seed: int = 0,
                  expression: Expression | None = None) -> BuiltinLine:
        """A ``SingerLine`` with this voice (its filters designed now)."""
        line = SingerLine(name, self.profile, list(notes), seed=seed, expression=expression,
                          hop=self.synth.hop)
        return BuiltinLine(line, self.synth)
