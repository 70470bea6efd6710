"""Scores for the backend contract tests, written as UTAU ``.ust`` files (120 bpm: 480 ticks
are 0.5 s) so they go through the engine's own score reader."""

from __future__ import annotations

from pathlib import Path

from singer.contracts import Note

Entry = tuple[str, int, int]
"""(lyric or ``R`` for a rest, MIDI note, length in ticks)."""

UTAU_SCORE: list[Entry] = [("R", 60, 480), ("撒", 62, 480), ("fa", 64, 480), ("八", 65, 480),
                           ("sa", 67, 576), ("R", 60, 576), ("发", 60, 480), ("啊", 62, 672)]
"""Lyrics the UTAU test bank sings (CV, VC and the high prefix-map set), one gap."""

DIFFSINGER_SCORE: list[Entry] = [("R", 60, 384), ("ma", 60, 480), ("la", 62, 480),
                                 ("san", 64, 576), ("R", 60, 240), ("好", 67, 576),
                                 ("wo", 65, 576), ("R", 60, 288), ("ni", 69, 672),
                                 ("da", 72, 576)]
"""Lyrics the DiffSinger test bank's dictionary has, in three phrases."""


def write_ust(path: Path, entries: list[Entry], tempo_bpm: float = 120.0) -> Path:
    """Write ``entries`` as a UTF-8 UST file."""
    lines = ["[#SETTING]", f"Tempo={tempo_bpm:g}", f"ProjectName={path.stem}"]
    for k, (lyric, midi, ticks) in enumerate(entries):
        lines += [f"[#{k:04d}]", f"Length={ticks}", f"Lyric={lyric}", f"NoteNum={midi}"]
    lines.append("[#TRACKEND]")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sung_notes(notes: tuple[Note, ...] | list[Note]) -> list[Note]:
    """The notes of a loaded score (rests are not notes)."""
    return sorted(notes, key=lambda n: n.t_on)
