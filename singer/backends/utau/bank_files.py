"""The small text files of a UTAU bank: their charset, ``character.txt``, ``character.yaml``,
``prefix.map`` and ``presamp.ini``.

Charset of a bank's text files, first that applies: the caller's ``encoding``, then
``character.yaml``'s ``text_file_encoding``, a BOM, a ``#Charset:`` line in the file itself,
else a guess over the whole file that prefers Shift-JIS (UTAU's own charset) on equal
evidence and takes UTF-8 whenever the bytes are valid UTF-8 (GBK banks are recognised by
their characters). All decoding goes through ``singer.text_encoding``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from singer.backends.utau.errors import BankError
from singer.text_encoding import EncodingError, check_encoding, decode_pieces, label

BANK_GUESSES = ("cp932", "utf-8", "gb18030", "cp950", "cp1252")
"""Charsets a bank's text is guessed among, Shift-JIS first (UTAU's default)."""

_CHARSET_LINE = re.compile(rb"^#Charset:\s*([A-Za-z0-9_.:-]+)", re.MULTILINE | re.IGNORECASE)
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_NOTE = re.compile(r"^([A-Ga-g])([#b]?)(-?\d+)$")
_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass(frozen=True, slots=True)
class BankText:
    """A decoded text file of a bank: its lines and the charset they were read with."""

    path: Path
    lines: tuple[str, ...]
    encoding: str
    how: str
    """``given``, ``character.yaml``, ``bom``, ``#Charset``, ``ascii`` or ``guessed``."""


def read_bank_text(path: Path, encoding: str | None = None) -> BankText:
    """``path`` decoded as described in the module docstring; ``BankError`` naming the file
    and line where its bytes do not decode."""
    data = path.read_bytes()
    for bom, codec in _BOMS:
        if data.startswith(bom) and not encoding:
            return BankText(path, tuple(_decode(path, data, codec).splitlines()), codec, "bom")
    how = "given"
    if not encoding:
        found = _CHARSET_LINE.search(data)
        if found:
            encoding, how = found.group(1).decode("ascii"), "#Charset"
    if encoding:
        try:
            codec = check_encoding(encoding)
        except EncodingError as err:
            raise BankError(path, _charset_line_number(data) if how == "#Charset" else None,
                            str(err)) from None
        return BankText(path, tuple(_decode(path, data, codec).splitlines()), codec, how)
    guess = decode_pieces([data], None, prefer=BANK_GUESSES)
    how = "ascii" if guess.how == "ascii" else "guessed"
    return BankText(path, tuple(guess.texts[0].splitlines()), guess.encoding, how)


def _charset_line_number(data: bytes) -> int | None:
    found = _CHARSET_LINE.search(data)
    return data[:found.start()].count(b"\n") + 1 if found else None


def _decode(path: Path, data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        bad = data[err.start:err.start + 4].hex(" ").upper()
        raise BankError(path, line, f"not {label(codec)} text: bytes {bad} do not decode "
                        "(name the charset with a '#Charset:' line or character.yaml "
                        "text_file_encoding)") from None


def note_number(name: str) -> int:
    """MIDI number of a note name (``C4`` = 60, ``C#4``, ``Db4``); ``ValueError`` if not one."""
    found = _NOTE.match(name.strip())
    if not found:
        raise ValueError(f"{name!r} is not a note name (e.g. C4, F#5)")
    letter, accidental, octave = found.groups()
    shift = {"#": 1, "b": -1, "": 0}[accidental]
    return 12 * (int(octave) + 1) + _SEMITONES[letter.upper()] + shift


@dataclass(frozen=True, slots=True)
class Character:
    """What ``character.txt`` and ``character.yaml`` say about a bank."""

    name: str
    fields: dict[str, str] = field(default_factory=dict)
    """``character.txt``'s keys (``name``, ``image``, ``author``, ``web``...) as written."""
    text_file_encoding: str | None = None
    subbanks: tuple[Subbank, ...] = ()


@dataclass(frozen=True, slots=True)
class Subbank:
    """A ``character.yaml`` subbank: aliases tried as ``prefix + alias + suffix`` for notes
    in its tone ranges (MIDI numbers, inclusive)."""

    prefix: str
    suffix: str
    ranges: tuple[tuple[int, int], ...]


def read_character(folder: Path, encoding: str | None = None) -> Character:
    """``character.yaml`` then ``character.txt`` of a bank (both optional)."""
    yaml_path = folder / "character.yaml"
    text_encoding: str | None = None
    subbanks: list[Subbank] = []
    if yaml_path.is_file():
        try:
            doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
            line = getattr(getattr(err, "problem_mark", None), "line", None)
            raise BankError(yaml_path, line + 1 if line is not None else None,
                            f"not valid YAML: {str(err).splitlines()[0]}") from None
        if not isinstance(doc, dict):
            raise BankError(yaml_path, None, "expected a mapping of settings")
        if doc.get("text_file_encoding"):
            text_encoding = str(doc["text_file_encoding"])
            try:
                check_encoding(text_encoding)
            except EncodingError as err:
                raise BankError(yaml_path, _yaml_line(yaml_path, "text_file_encoding"),
                                f"text_file_encoding: {err}") from None
        for i, sub in enumerate(doc.get("subbanks") or ()):
            subbanks.append(_subbank(yaml_path, i, sub))
    fields: dict[str, str] = {}
    txt_path = folder / "character.txt"
    if txt_path.is_file():
        text = read_bank_text(txt_path, encoding or text_encoding)
        for line in text.lines:
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = value.strip()
    name = fields.get("name") or fields.get("名前") or folder.name
    return Character(name, fields, text_encoding, tuple(subbanks))


def _yaml_line(path: Path, key: str) -> int | None:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith(key):
            return i
    return None


def _subbank(path: Path, index: int, sub: object) -> Subbank:
    if not isinstance(sub, dict):
        raise BankError(path, None, f"subbanks[{index}] is not a mapping")
    ranges = []
    for text in sub.get("tone_ranges") or ():
        lo, _, hi = str(text).partition("-")
        try:
            ranges.append((note_number(lo), note_number(hi or lo)))
        except ValueError as err:
            raise BankError(path, _yaml_line(path, str(text)),
                            f"subbanks[{index}] tone range: {err}") from None
    return Subbank(str(sub.get("prefix") or ""), str(sub.get("suffix") or ""),
                   tuple(ranges) or ((0, 127),))


@dataclass(frozen=True, slots=True)
class PrefixMap:
    """Per MIDI note, the (prefix, suffix) pairs tried before the bare alias."""

    by_note: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def affixes(self, pitch_midi: float) -> tuple[tuple[str, str], ...]:
        """(prefix, suffix) pairs for a pitch, most specific first, ending with ("", "")."""
        return self.by_note.get(int(round(pitch_midi)), ()) + (("", ""),)


def read_prefix_map(folder: Path, subbanks: tuple[Subbank, ...] = (),
                    encoding: str | None = None) -> PrefixMap:
    """``prefix.map`` (``NoteName<TAB>prefix<TAB>suffix`` per line) and the subbanks' affixes."""
    by_note: dict[int, list[tuple[str, str]]] = {}
    for sub in subbanks:
        for lo, hi in sub.ranges:
            for note in range(lo, hi + 1):
                by_note.setdefault(note, []).append((sub.prefix, sub.suffix))
    path = folder / "prefix.map"
    if path.is_file():
        text = read_bank_text(path, encoding)
        for number, line in enumerate(text.lines, 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            try:
                note = note_number(parts[0])
            except ValueError as err:
                raise BankError(path, number, str(err)) from None
            prefix = parts[1] if len(parts) > 1 else ""
            suffix = parts[2] if len(parts) > 2 else ""
            if prefix or suffix:
                by_note.setdefault(note, []).append((prefix, suffix))
    return PrefixMap({k: tuple(dict.fromkeys(v)) for k, v in by_note.items()})


@dataclass(frozen=True, slots=True)
class Presamp:
    """What ``presamp.ini`` says about each CV alias: its vowel and its consonant."""

    vowel_of: dict[str, str]
    consonant_of: dict[str, str]


def read_presamp(folder: Path, encoding: str | None = None) -> Presamp | None:
    """``presamp.ini``'s ``[VOWEL]`` (``v=alias=cv1,cv2,...=volume``) and ``[CONSONANT]``
    (``c=cv1,cv2,...=flag``) blocks; ``None`` when the bank has none."""
    path = folder / "presamp.ini"
    if not path.is_file():
        return None
    vowel_of: dict[str, str] = {}
    consonant_of: dict[str, str] = {}
    block = ""
    for number, raw in enumerate(read_bank_text(path, encoding).lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            block = line.upper()
            continue
        parts = line.split("=")
        if block == "[VOWEL]":
            if len(parts) < 3:
                raise BankError(path, number, "a [VOWEL] line is vowel=alias=cv1,cv2,...=volume")
            for cv in parts[2].split(","):
                if cv.strip():
                    vowel_of.setdefault(cv.strip(), parts[0].strip())
        elif block == "[CONSONANT]":
            if len(parts) < 2:
                raise BankError(path, number, "a [CONSONANT] line is consonant=cv1,cv2,...=flag")
            for cv in parts[1].split(","):
                if cv.strip():
                    consonant_of.setdefault(cv.strip(), parts[0].strip())
    return Presamp(vowel_of, consonant_of)
