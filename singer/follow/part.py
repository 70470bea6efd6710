"""The performer's part as the follower reads it: note onsets in beats, pitches, phrases."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from singer.score import Part, Score, ScoreError

PHRASE_REST_BEATS = 0.5
"""A rest at least this long (or a breath mark's worth) ends a phrase."""


@dataclass(frozen=True, slots=True)
class ScoreNote:
    """One note of a part in score beats (quarter notes from the song start)."""

    beat_on: float
    beat_off: float
    pitch_midi: float
    phrase_start: bool


class FollowedPart:
    """The notes of one part of a score in beats, ready to be matched against a performance.

    ``FollowedPart.of(score, name)`` picks the part by name (case-insensitive) or by its
    1-based number; ``ScoreError`` names the parts the score has when none matches.
    """

    def __init__(self, name: str, notes: list[ScoreNote], bpm: float) -> None:
        if not notes:
            raise ScoreError(f"part {name!r} has no notes to follow")
        self.name = name
        self.notes = notes
        self.bpm = bpm
        self.onsets = np.array([n.beat_on for n in notes])
        self.pitches = np.array([n.pitch_midi for n in notes])

    @classmethod
    def of(cls, score: Score, name: str) -> FollowedPart:
        """The part of ``score`` called ``name`` (or numbered, from 1)."""
        part = find_part(score, name)
        tm = score.tempo_map
        notes: list[ScoreNote] = []
        last_off: float | None = None
        for note in part.notes:
            on, off = tm.sample_to_beat(note.t_on), tm.sample_to_beat(note.t_off)
            if note.is_melisma and notes and abs(notes[-1].pitch_midi - note.pitch_midi) < 0.5:
                notes[-1] = ScoreNote(notes[-1].beat_on, off, notes[-1].pitch_midi,
                                      notes[-1].phrase_start)
                last_off = off
                continue
            phrase = last_off is None or on - last_off >= PHRASE_REST_BEATS
            notes.append(ScoreNote(on, off, note.pitch_midi, phrase))
            last_off = off
        return cls(part.name, notes, tm.bpm_at(notes[0].beat_on if notes else 0.0))

    def __len__(self) -> int:
        return len(self.notes)


def find_part(score: Score, name: str) -> Part:
    """The ``Part`` of ``score`` named ``name`` (case-insensitive) or numbered from 1."""
    wanted = name.strip().lower()
    for part in score.parts:
        if part.name.strip().lower() == wanted:
            return part
    if wanted.isdigit() and 1 <= int(wanted) <= len(score.parts):
        return score.parts[int(wanted) - 1]
    names = ", ".join(repr(p.name) for p in score.parts)
    raise ScoreError(f"{score.source or score.title}: no part {name!r} to follow; "
                     f"parts: {names}")
