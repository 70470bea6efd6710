"""UTAU sequence reader (``.ust``: INI-like text, Shift-JIS or UTF-8, 480 ticks per quarter).

Read: ``[#SETTING]`` ``Tempo`` and ``ProjectName``; note blocks ``[#0000]``... in order with
``Length`` (ticks), ``Lyric``, ``NoteNum`` (MIDI number), a ``Tempo`` that changes the tempo
from that note on, ``Intensity`` (velocity) and ``VBR`` (vibrato); rests are ``R`` lyrics.
Resampler settings (``PreUtterance``, ``Envelope``, ``Flags``...) belong to UTAU's
concatenative engine and are ignored; ``PBS``/``PBW``/``PBM`` shape the slide
from the previous note, which the performer draws itself; bends (non-zero ``PBY``, mode-1
``Pitches``) are reported in ``Score.notices``. Every failure is a ``ScoreError`` naming the
file, the line and the note block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from singer.score import Score, ScoreError, SourceNote, Vibrato, assemble_score
from singer.tempo import TempoChange, TempoMap
from singer.text_encoding import EncodingError, decode_file

TICKS_PER_QUARTER = 480
"""UTAU's fixed resolution."""

_SECTION = re.compile(r"^\[#(?P<name>[^\]]+)\]\s*$")
_REST_LYRICS = {"R", "r", ""}
_PITCH_KEYS = ("PBY", "Pitches", "PitchBend")
"""Keys whose non-zero values bend the pitch (PBS/PBW/PBM only shape the portamento)."""
_SKIPPED_SECTIONS = {"PREV", "NEXT", "INSERT", "DELETE"}
_VCV_PREFIX = re.compile(r"^(?:-|[aiueonN]|[あいうえおん])\s+(?=\S)")
_CHARSET = re.compile(rb"^\s*Charset\s*=\s*([A-Za-z0-9_.:-]+)\s*$", re.MULTILINE)
_PREFER = ("utf-8", "cp932", "gb18030", "cp950", "cp1252")
"""UTAU is Japanese: on equal evidence a UST is Shift-JIS rather than GBK."""


@dataclass
class _Block:
    """One ``[#NNNN]`` note block: its keys, and the line of the header and of each key."""

    label: str
    line: int
    keys: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, key: str | None = None) -> str:
        line = self.lines.get(key, self.line) if key else self.line
        return f"line {line}: note [#{self.label}]"


def read_ust(
    path: str | Path,
    *,
    language: str = "auto",
    default_syllable: str = "la",
    encoding: str | None = None,
) -> Score:
    """Read a UTAU ``.ust`` file into a one-part ``Score``.

    ``encoding`` forces a charset; by default the file's ``Charset=`` key (or a BOM) says,
    else the charset is guessed from the whole file (UTF-8 when it reads as plausible UTF-8,
    else Shift-JIS, GBK/GB18030, Big5... by evidence; a notice names a legacy guess).
    """
    path = Path(path)
    name = str(path)
    notices: list[str] = []
    setting, blocks = _parse(_text(path, encoding, notices), name)
    if not blocks:
        raise ScoreError(f"{name}: no note blocks ([#0000], [#0001], ...): not a UST file?")
    bpm = _float(setting.get("Tempo", "120"), name, "[#SETTING] Tempo")
    changes = [TempoChange(0.0, _bpm(bpm, name, "[#SETTING] Tempo"))]
    notes: list[SourceNote] = []
    pitch_notes = 0
    tick = 0
    for block in blocks:
        length = _int(block, "Length", name)
        if length <= 0:
            raise ScoreError(f"{name}: {block.where('Length')}: Length {length} is not positive")
        if "Tempo" in block.keys:
            tempo = _float(block.keys["Tempo"], name, block.where("Tempo"))
            changes.append(TempoChange(tick / TICKS_PER_QUARTER,
                                       _bpm(tempo, name, block.where("Tempo"))))
        lyric = block.keys.get("Lyric", "").strip()
        if lyric not in _REST_LYRICS:
            if "NoteNum" not in block.keys:
                raise ScoreError(f"{name}: {block.where()}: missing NoteNum")
            num = _int(block, "NoteNum", name)
            if not 0 <= num <= 127:
                raise ScoreError(f"{name}: {block.where('NoteNum')}: NoteNum {num} is not a "
                                 "MIDI note number (0..127)")
            lyric = _VCV_PREFIX.sub("", lyric)
            extend = lyric in ("-", "+", "_", "~")
            notes.append(SourceNote(
                beat_on=tick / TICKS_PER_QUARTER, beat_off=(tick + length) / TICKS_PER_QUARTER,
                pitch_midi=float(num), lyric=None if extend else lyric, extend=extend,
                velocity=_velocity(block, name), where=block.where(),
                vibrato=_vibrato(block, name)))
            pitch_notes += any(_bends(block.keys.get(k, "")) for k in _PITCH_KEYS)
        tick += length
    if pitch_notes:
        notices.append(f"{name}: {pitch_notes} notes have pitch bends (PBY, Pitches); "
                       "they are sung with the voice's own transitions instead")
    title = setting.get("ProjectName", "").strip() or path.stem
    return assemble_score(title, TempoMap(changes), {"UTAU": notes}, source=name,
                          language=language, default_syllable=default_syllable,
                          notices=notices)


def _text(path: Path, encoding: str | None, notices: list[str]) -> str:
    """The file's text in its one charset (given, declared by ``Charset=``, or guessed)."""
    if not path.is_file():
        raise ScoreError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ScoreError(f"{path}: cannot read the file: {err}") from err
    declared = _CHARSET.search(data)
    try:
        decoded = decode_file(data, encoding,
                              declared[1].decode("ascii") if declared else None, _PREFER)
    except EncodingError as err:
        raise ScoreError(f"{path}: {err}") from None
    notice = decoded.notice(str(path))
    if notice:
        notices.append(notice)
    return decoded.texts[0]


def _parse(text: str, name: str) -> tuple[dict[str, str], list[_Block]]:
    """``[#SETTING]`` keys and the note blocks in file order."""
    setting: dict[str, str] = {}
    blocks: list[_Block] = []
    section: str | None = None
    current: dict[str, str] | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _SECTION.match(line)
        if match:
            section = match["name"].strip()
            current = None
            if section == "SETTING":
                current = setting
            elif section == "TRACKEND":
                break
            elif section.isdigit():
                blocks.append(_Block(section, lineno))
                current = blocks[-1].keys
            elif section not in _SKIPPED_SECTIONS and section != "VERSION":
                raise ScoreError(f"{name}: line {lineno}: unknown section [#{section}]")
            continue
        if section is None:
            raise ScoreError(f"{name}: line {lineno}: text before the first [#...] section: "
                             "not a UST file")
        if current is None or "=" not in line:
            continue  # "UST Version1.2" under [#VERSION], plugin sections
        key, value = line.split("=", 1)
        current[key.strip()] = value.strip()
        if blocks and current is blocks[-1].keys:
            blocks[-1].lines[key.strip()] = lineno
    return setting, blocks


def _int(block: _Block, key: str, name: str) -> int:
    if key not in block.keys:
        raise ScoreError(f"{name}: {block.where()}: missing {key}")
    value = block.keys[key]
    try:
        return int(value)
    except ValueError:
        raise ScoreError(f"{name}: {block.where(key)}: {key} {value!r} is not a whole "
                         "number") from None


def _float(value: str, name: str, where: str) -> float:
    try:
        return float(value.replace(",", "."))  # some locales write "120,00"
    except ValueError:
        raise ScoreError(f"{name}: {where}: {value!r} is not a number") from None


def _bpm(bpm: float, name: str, where: str) -> float:
    if not 1.0 <= bpm <= 1000.0:
        raise ScoreError(f"{name}: {where}: tempo {bpm} bpm is out of 1..1000")
    return bpm


def _velocity(block: _Block, name: str) -> float:
    """``Intensity`` (percent, 100 = normal) as a note velocity around the default 0.8."""
    if "Intensity" not in block.keys:
        return 0.8
    intensity = _float(block.keys["Intensity"], name, block.where("Intensity"))
    return min(1.0, max(0.0, 0.8 * intensity / 100.0))


def _vibrato(block: _Block, name: str) -> Vibrato | None:
    """``VBR=length%,period ms,depth cents,in%,out%,phase%,height%``; length 0 = none."""
    raw = block.keys.get("VBR")
    if raw is None:
        return None
    values = [_float(v, name, block.where("VBR")) for v in raw.split(",") if v.strip()]
    if len(values) < 3:
        raise ScoreError(f"{name}: {block.where('VBR')}: VBR {raw!r} needs at least length, "
                         "period and depth")
    length, period_ms, depth = values[:3]
    if length <= 0 or depth <= 0:
        return Vibrato(0.0, 5.0)
    return Vibrato(depth, 1000.0 / min(500.0, max(20.0, period_ms)))


def _bends(value: str) -> bool:
    """True when a pitch-bend value holds any non-zero offset."""
    for part in re.split(r"[,;]", value):
        try:
            if float(part) != 0.0:
                return True
        except ValueError:
            continue
    return False
