"""``oto.ini``: where each alias's sample sits in its WAV file.

A line is ``file.wav=alias,offset,consonant,cutoff,preutterance,overlap`` (milliseconds).
Offset counts from the file's start; consonant, preutterance and overlap from the offset;
a cutoff ≥ 0 counts back from the file's end, a negative one is the length from the offset.
Overlap may be negative. An empty alias is the file's stem; the first line of an alias wins.
Every ``oto.ini`` under the bank folder is read (subfolders recursively, in sorted order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from singer.backends.utau.bank_files import read_bank_text
from singer.backends.utau.errors import BankError


@dataclass(frozen=True, slots=True)
class OtoEntry:
    """One alias: its sample region and timing, all in ms; ``end_ms`` is the resolved cutoff
    (from the file's start)."""

    alias: str
    wav: Path
    offset_ms: float
    consonant_ms: float
    end_ms: float
    preutterance_ms: float
    overlap_ms: float
    source: Path
    """The ``oto.ini`` that defines it."""
    line: int

    @property
    def length_ms(self) -> float:
        """Length of the usable region, from the offset to the cutoff."""
        return self.end_ms - self.offset_ms


def find_oto_files(folder: Path) -> list[Path]:
    """Every ``oto.ini`` under ``folder`` (any case), the bank root's first."""
    found = [p for p in folder.rglob("*") if p.name.lower() == "oto.ini" and p.is_file()]
    return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), str(p)))


def read_oto(path: Path, encoding: str | None = None,
             durations: dict[Path, float] | None = None) -> list[OtoEntry]:
    """The entries of one ``oto.ini``; ``BankError`` naming the file and line of a bad one.

    ``durations`` caches WAV lengths (ms) across files.
    """
    durations = {} if durations is None else durations
    text = read_bank_text(path, encoding)
    entries: list[OtoEntry] = []
    for number, raw in enumerate(text.lines, 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        entries.append(parse_oto_line(path, number, line, durations))
    return entries


_FIELDS = ("offset", "consonant", "cutoff", "preutterance", "overlap")


def parse_oto_line(path: Path, number: int, line: str,
                   durations: dict[Path, float]) -> OtoEntry:
    """One ``oto.ini`` line as an entry; ``BankError`` naming ``path:number`` if malformed."""
    wav_name, sep, rest = line.partition("=")
    if not sep or not wav_name.strip():
        raise BankError(path, number, f"expected file.wav=alias,offset,consonant,cutoff,"
                        f"preutterance,overlap, got {line!r}")
    parts = rest.split(",")
    if len(parts) > 6:
        raise BankError(path, number, f"{len(parts)} fields after '=' (expected alias and 5 "
                        "numbers)")
    alias = parts[0].strip()
    values = []
    for name, text in zip(_FIELDS, parts[1:] + [""] * (6 - len(parts)), strict=True):
        try:
            value = float(text) if text.strip() else 0.0
        except ValueError:
            raise BankError(path, number, f"{name} {text.strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise BankError(path, number, f"{name} {text.strip()!r} is not a finite number")
        values.append(value)
    offset, consonant, cutoff, preutterance, overlap = values
    wav = path.parent / wav_name.strip().replace("\\", "/")
    if not wav.is_file():
        raise BankError(path, number, f"sample {wav_name.strip()!r} does not exist")
    if wav not in durations:
        try:
            info = sf.info(str(wav))
        except (RuntimeError, sf.LibsndfileError) as err:
            raise BankError(path, number, f"sample {wav_name.strip()!r} is not a readable "
                            f"audio file: {err}") from None
        durations[wav] = 1000.0 * info.frames / info.samplerate
    duration = durations[wav]
    if offset < 0:
        raise BankError(path, number, f"offset {offset:g} ms is negative")
    if consonant < 0 or preutterance < 0:
        raise BankError(path, number, "consonant and preutterance cannot be negative")
    end = offset - cutoff if cutoff < 0 else duration - cutoff
    if end <= offset:
        raise BankError(path, number, f"cutoff {cutoff:g} ms ends the sample at {end:g} ms, "
                        f"before its offset {offset:g} ms")
    if end > duration + 1.0:
        raise BankError(path, number, f"the sample ends at {end:g} ms, after the end of "
                        f"{wav_name.strip()!r} ({duration:.0f} ms)")
    if offset + consonant > end:
        raise BankError(path, number, f"consonant {consonant:g} ms runs past the cutoff")
    return OtoEntry(alias or Path(wav_name.strip()).stem, wav, offset, consonant,
                    min(end, duration), preutterance, overlap, path, number)
