"""The score model every reader (MusicXML, MIDI, USTX, UST) produces, and its assembly.

Readers collect ``SourceNote``s (beats, pitch, lyric text as written) and call
``assemble_score``, which turns lyrics into phonemes and beats into show samples.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from singer.contracts import Note
from singer.lyrics import LyricError, detect_language, phonemize_word
from singer.tempo import TempoMap

log = logging.getLogger(__name__)

Syllabic = Literal["single", "begin", "middle", "end"]


class ScoreError(ValueError):
    """A score could not be read; the message names the file and the place."""


@dataclass(frozen=True, slots=True)
class SourceNote:
    """A note as a reader found it, before phonemes and show samples.

    ``lyric`` is ``None`` for a note without a lyric; a note that continues the previous
    syllable (melisma, slur or an explicit ``-``/``_``/``+`` lyric) has ``extend=True``.
    ``where`` names its place in the source for error messages (``"measure 12"``).
    """

    beat_on: float
    beat_off: float
    pitch_midi: float
    lyric: str | None = None
    syllabic: Syllabic = "single"
    extend: bool = False
    velocity: float = 0.8
    where: str = ""
    vibrato: Vibrato | None = None


@dataclass(frozen=True, slots=True)
class Vibrato:
    """A vibrato the source asks of one note, independent of the voice that sings it.

    ``depth_cents`` is the peak deviation (0 = sung straight), ``rate_hz`` the speed. Renders
    turn it into the voice's ``vibrato_depth``/``vibrato_rate`` expression from the note on.
    """

    depth_cents: float
    rate_hz: float


@dataclass(frozen=True, slots=True)
class TimeSignature:
    """From ``beat`` on (quarter notes from the song start) bars hold ``numerator`` notes of
    1/``denominator``."""

    beat: float
    numerator: int
    denominator: int


@dataclass(frozen=True, slots=True)
class Part:
    """One singer's line: notes in show samples, sorted and not overlapping.

    ``vibrato`` holds (show sample of a note on, its ``Vibrato``) where the source set one;
    ``None`` there returns to the voice's own vibrato.
    """

    name: str
    notes: tuple[Note, ...]
    vibrato: tuple[tuple[int, Vibrato | None], ...] = ()


@dataclass(frozen=True)
class Score:
    """A song ready to sing: parts of notes on the show clock and the tempo map."""

    title: str
    language: str
    tempo_map: TempoMap
    parts: tuple[Part, ...]
    source: str = ""
    notices: tuple[str, ...] = field(default=())
    time_signatures: tuple[TimeSignature, ...] = field(default=())

    @property
    def notes(self) -> tuple[Note, ...]:
        """Notes of the first part (the lead singer)."""
        return self.parts[0].notes if self.parts else ()

    @property
    def end_sample(self) -> int:
        """Show sample at which the last note of any part ends."""
        return max((p.notes[-1].t_off for p in self.parts if p.notes), default=0)


EXTEND_LYRICS = {"-", "_", "+", "~"}


def assemble_score(
    title: str,
    tempo_map: TempoMap,
    parts: dict[str, list[SourceNote]],
    *,
    source: str = "",
    language: str = "auto",
    default_syllable: str = "la",
    notices: Sequence[str] = (),
    time_signatures: Sequence[TimeSignature] = (),
) -> Score:
    """Build a ``Score``: group syllables into words, phonemize, and place notes in samples.

    ``notices`` (what the reader mapped loosely or ignored) are kept on the score.
    Raises ``ScoreError`` naming the source, the place and the syllable that failed.
    """
    notices = list(notices)
    all_lyrics = [n.lyric for notes in parts.values() for n in notes if n.lyric]
    if language == "auto":
        language = detect_language(all_lyrics)
    if not all_lyrics:
        notices.append(f"{source or title}: no lyrics found; singing on '{default_syllable}'")
        log.info("score has no lyrics; singing on %r", default_syllable)
    built: list[Part] = []
    for name, source_notes in parts.items():
        notes, vibrato = _assemble_part(source_notes, tempo_map, language, default_syllable,
                                        source, has_lyrics=bool(all_lyrics))
        if notes:
            built.append(Part(name, tuple(notes), tuple(vibrato)))
    if not built:
        raise ScoreError(f"{source or title}: the score has no notes to sing")
    meters = tuple(sorted(time_signatures, key=lambda m: m.beat))
    return Score(title, language, tempo_map, tuple(built), source, tuple(notices), meters)


def _assemble_part(
    source_notes: list[SourceNote],
    tempo_map: TempoMap,
    language: str,
    default_syllable: str,
    source: str,
    has_lyrics: bool,
) -> tuple[list[Note], list[tuple[int, Vibrato | None]]]:
    ordered = sorted(source_notes, key=lambda n: n.beat_on)
    phonemes = _phonemize_notes(ordered, language, default_syllable, source, has_lyrics)
    notes: list[Note] = []
    vibrato: list[tuple[int, Vibrato | None]] = []
    any_vibrato = any(n.vibrato is not None for n in ordered)
    for src, ph in zip(ordered, phonemes, strict=True):
        t_on = tempo_map.beat_to_sample(src.beat_on)
        t_off = tempo_map.beat_to_sample(src.beat_off)
        if notes and t_on < notes[-1].t_off:
            # Overlapping notes in one part (chords): keep the line monophonic.
            prev = notes[-1]
            if t_on <= prev.t_on:
                continue
            notes[-1] = Note(prev.t_on, t_on, prev.pitch_midi, prev.lyric, prev.phonemes,
                             prev.velocity)
        if t_off <= t_on:
            continue
        lyric = src.lyric if src.lyric is not None else ("-" if not ph else default_syllable)
        notes.append(Note(t_on, t_off, src.pitch_midi, lyric, ph, src.velocity))
        if any_vibrato:
            vibrato.append((t_on, src.vibrato))
    return notes, vibrato


def _phonemize_notes(
    notes: list[SourceNote], language: str, default_syllable: str, source: str, has_lyrics: bool
) -> list[tuple[str, ...]]:
    """Phonemes per note; words spread over notes by their syllabic marks."""
    out: list[tuple[str, ...]] = [()] * len(notes)
    word: list[int] = []

    def flush() -> None:
        if not word:
            return
        texts = [notes[i].lyric or "" for i in word]
        try:
            sylls = phonemize_word(texts, language)
        except LyricError as err:
            where = notes[word[0]].where
            raise ScoreError(f"{source}: {where}: {err}".strip(": ")) from err
        for i, ph in zip(word, sylls, strict=True):
            out[i] = ph
        word.clear()

    for i, note in enumerate(notes):
        text = (note.lyric or "").strip()
        if note.extend or text in EXTEND_LYRICS:
            flush()
            if i == 0:
                out[i] = _default(default_syllable, language, source, note)
            continue
        if not text:
            flush()
            if has_lyrics and i > 0:
                continue  # an unlyriced note under a lyric line is a melisma
            out[i] = _default(default_syllable, language, source, note)
            continue
        if note.syllabic in ("single", "begin"):
            flush()
        word.append(i)
        if note.syllabic in ("single", "end"):
            flush()
    flush()
    return out


def _default(syllable: str, language: str, source: str, note: SourceNote) -> tuple[str, ...]:
    try:
        return phonemize_word([syllable], language)[0]
    except LyricError as err:
        raise ScoreError(f"{source}: {note.where}: default syllable: {err}") from err
