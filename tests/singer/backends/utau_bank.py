"""A tiny Mandarin CVVC UTAU bank recorded from the built-in voice, with real offsets.

Each sample is sung by the engine's own voice at C4 (G4 for the ``_H`` set in ``high/``),
written at 44.1 kHz as UTAU banks usually are; its oto line is placed from the voice's own
phoneme timeline (consonant start) and the vowel onset measured on the sample, as a person
would place them by eye.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.timeline import build_timeline
from tests.measure import band_energy_onset
from tests.singer.helpers import sing

SR = SAMPLE_RATE_HZ
SLOT_S = 2.0
CVS = {"a": ("a",), "sa": ("s", "a"), "fa": ("f", "a"), "ba": ("b", "a")}
VC_CONSONANTS = ("s", "f", "b")
FILE_NAMES = {
    "gbk": {"a": "啊", "sa": "撒", "fa": "发", "ba": "八"},
    "shift_jis": {"a": "あ", "sa": "さ", "fa": "ふぁ", "ba": "ば"},
    "utf-8": {"a": "啊", "sa": "さ", "fa": "发", "ba": "ば"},
}


@dataclass(frozen=True)
class Recording:
    """One sample: its notes (in the slot's own time) and its oto values (ms)."""

    key: str
    alias: str
    notes: tuple[Note, ...]
    offset_ms: float
    consonant_ms: float
    end_ms: float
    preutterance_ms: float
    overlap_ms: float
    folder: str = ""


def _ms(samples: int) -> float:
    return 1000.0 * samples / SR


def _note(start_s: float, end_s: float, pitch: float, cv: str) -> Note:
    return Note(int(start_s * SR), int(end_s * SR), pitch, cv, CVS[cv])


def recordings() -> list[Recording]:
    """Every sample of the bank with oto values read off the voice's timeline."""
    out = []
    for high in (False, True):
        pitch = 67.0 if high else 60.0
        for cv in (("a", "sa") if high else tuple(CVS)):
            notes = (_note(0.3, 1.1, pitch, cv),)
            first = build_timeline(list(notes))[0].start
            offset = _ms(first) - 40.0
            pre = 300.0 - offset
            alias = cv + ("_H" if high else "")
            out.append(Recording(alias, alias, notes, offset, pre + 60.0, 1000.0, pre,
                                 min(20.0, pre / 2), "high" if high else ""))
    for c in VC_CONSONANTS:
        notes = (_note(0.3, 0.8, 60.0, "a"), _note(0.8, 1.4, 60.0, c + "a"))
        seg = next(s for s in build_timeline(list(notes)) if s.note == 1)
        offset = 600.0
        pre = _ms(seg.start) - offset
        out.append(Recording(f"a_{c}", f"a {c}", notes, offset, pre + 20.0, 820.0, pre, 30.0))
    notes = (_note(0.3, 0.9, 60.0, "a"),)
    out.append(Recording("a_R", "a R", notes, 700.0, 210.0, 1200.0, 200.0, 30.0))
    return out


@functools.cache
def _audio() -> dict[str, np.ndarray]:
    """Every recording sung in one render (one slot each), resampled to 44.1 kHz."""
    recs = recordings()
    notes = []
    for k, rec in enumerate(recs):
        base = int(k * SLOT_S * SR)
        notes += [Note(n.t_on + base, n.t_off + base, n.pitch_midi, n.lyric, n.phonemes)
                  for n in rec.notes]
    audio = sing(notes)
    out = {}
    for k, rec in enumerate(recs):
        piece = audio[int(k * SLOT_S * SR):int((k * SLOT_S + 1.6) * SR)]
        out[rec.key] = piece.astype(np.float64)
    return out


def _placed(rec: Recording) -> Recording:
    """A CV's preutterance put where its vowel measurably starts (as set by eye on the
    waveform): the voice's aspiration lets the fundamental in a little before its beat."""
    if rec.alias.startswith("a ") or len(rec.notes) != 1:
        return rec
    note = rec.notes[0]
    hz = 440.0 * 2 ** ((note.pitch_midi - 69) / 12)
    onset_ms = 1000.0 * band_energy_onset(_audio()[rec.key], hz, note.t_on / SR)
    shift = onset_ms - (rec.offset_ms + rec.preutterance_ms)
    return replace(rec, preutterance_ms=rec.preutterance_ms + shift,
                   consonant_ms=rec.consonant_ms + shift)


def build_bank(folder: Path, charset: str = "gbk", *, declare: str | None = None,
               negative_cutoff: bool = True, prefix_map: bool = True) -> Path:
    """Write the bank into ``folder`` with its oto.ini in ``charset``.

    ``declare``: ``"line"`` writes a ``#Charset:`` line, ``"yaml"`` a character.yaml
    ``text_file_encoding``; ``None`` leaves the charset to be guessed.
    """
    names = FILE_NAMES[charset]
    folder.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {"": [], "high": []}
    for rec in map(_placed, recordings()):
        stem = rec.key
        base = rec.key.removesuffix("_H")
        if base in names:
            stem = names[base] + ("_H" if rec.key.endswith("_H") else "")
        sub = folder / rec.folder if rec.folder else folder
        sub.mkdir(exist_ok=True)
        audio = signal.resample_poly(_audio()[rec.key], 147, 160)
        sf.write(str(sub / f"{stem}.wav"), audio, 44100, subtype="PCM_16")
        length_ms = 1000.0 * len(audio) / 44100
        cutoff = -(rec.end_ms - rec.offset_ms) if negative_cutoff else length_ms - rec.end_ms
        lines[rec.folder].append(f"{stem}.wav={rec.alias},{rec.offset_ms:.1f},"
                                 f"{rec.consonant_ms:.1f},{cutoff:.1f},"
                                 f"{rec.preutterance_ms:.1f},{rec.overlap_ms:.1f}")
    codec = {"gbk": "gbk", "shift_jis": "cp932", "utf-8": "utf-8"}[charset]
    for sub, entries in lines.items():
        head = [f"#Charset:{charset}"] if declare == "line" else []
        text = "\r\n".join(head + entries) + "\r\n"
        (folder / sub / "oto.ini").write_bytes(text.encode(codec))
    name = {"gbk": "小测", "shift_jis": "テスト", "utf-8": "测试"}[charset]
    (folder / "character.txt").write_bytes(f"name={name}\r\nauthor=tests\r\n".encode(codec))
    if declare == "yaml":
        (folder / "character.yaml").write_text(f"text_file_encoding: {charset}\n",
                                               encoding="utf-8")
    if prefix_map:
        rows = [f"{n}{o}\t\t_H" if o >= 4 and (o > 4 or n in ("G", "G#", "A", "A#", "B"))
                else f"{n}{o}\t\t"
                for o in range(1, 8) for n in ("C", "C#", "D", "D#", "E", "F", "F#", "G",
                                               "G#", "A", "A#", "B")]
        (folder / "prefix.map").write_bytes(("\r\n".join(rows) + "\r\n").encode(codec))
    return folder
