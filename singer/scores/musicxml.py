"""MusicXML reader: ``.musicxml``/``.xml`` and compressed ``.mxl`` (MuseScore's export) → ``Score``.

music21 does the parsing; this module turns its streams into ``SourceNote``s (beats in quarter
notes, MIDI pitch, first-verse lyrics) and its metronome marks into a ``TempoMap``, then hands
them to ``assemble_score``. Every failure comes back as a ``ScoreError`` naming the file.
Repeats are not expanded: the score is sung as written, once through.
"""

from __future__ import annotations

import bisect
import logging
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

from singer.score import (
    Score,
    ScoreError,
    SourceNote,
    Syllabic,
    TimeSignature,
    assemble_score,
)
from singer.tempo import TempoChange, TempoMap
from singer.text_encoding import EncodingError, decode_file

log = logging.getLogger(__name__)

DEFAULT_BPM = 120.0
"""Tempo when the score has no metronome mark (quarter notes per minute)."""

DEFAULT_VELOCITY = 0.8
"""Velocity of notes before any dynamic marking."""

DYNAMIC_VELOCITY = {
    "pppp": 0.25, "ppp": 0.35, "pp": 0.45, "p": 0.55, "mp": 0.65, "mf": 0.75,
    "f": 0.85, "ff": 0.95, "fff": 1.0, "ffff": 1.0, "sf": 0.9, "sfz": 0.9, "fp": 0.85,
}
"""Velocity (0..1) a dynamic marking sets for the notes after it."""

_SYLLABICS: dict[str, Syllabic] = {
    "single": "single", "begin": "begin", "middle": "middle", "end": "end",
}
_POSITION = re.compile(r":\s*line (\d+), column (\d+)$")
_DECLARATION = re.compile(rb"^\s*<\?xml\b[^>]*?\?>")
_DECLARED = re.compile(rb"\bencoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")


def read_musicxml(
    path: str | Path,
    *,
    language: str = "auto",
    default_syllable: str = "la",
    part: str | int | None = None,
    encoding: str | None = None,
) -> Score:
    """Read a MusicXML file (plain or ``.mxl``) into a ``Score`` ready to sing.

    ``part`` picks one part by name or 0-based index; by default every part is read.
    ``language`` and ``default_syllable`` go to ``assemble_score``. The charset is
    ``encoding`` when given, else the XML declaration's (or a BOM's), else guessed from the
    whole document (a notice names a legacy guess). Raises ``ScoreError`` whose message
    starts with the file name for any unreadable, malformed or empty file.
    """
    path = Path(path)
    name = str(path)
    notices: list[str] = []
    text = _decode(_check_file(path), encoding, name, notices)
    _check_root(text, path)
    m21_score = _parse(text, path)
    try:
        title = _title(m21_score, path)
        tempo_map = _tempo_map(m21_score)
        parts = {pname: _part_notes(p, pname) for pname, p in _select_parts(m21_score, part, name)}
    except ScoreError:
        raise
    except Exception as err:  # music21 raises many kinds; none may escape raw
        raise ScoreError(f"{name}: cannot read the score: {_describe(err)}") from err
    if not any(parts.values()):
        raise ScoreError(f"{name}: the score has no notes to sing")
    return assemble_score(title, tempo_map, parts, source=name, language=language,
                          default_syllable=default_syllable, notices=notices,
                          time_signatures=_time_signatures(m21_score))


def _check_file(path: Path) -> bytes:
    """The score document's bytes (plain, or inside an ``.mxl`` archive); ``ScoreError`` when
    the file cannot be read."""
    name = str(path)
    if not path.exists():
        raise ScoreError(f"{name}: file not found")
    if not path.is_file():
        raise ScoreError(f"{name}: not a file")
    try:
        is_zip = zipfile.is_zipfile(path)
        if is_zip:
            if path.suffix.lower() != ".mxl":
                raise ScoreError(f"{name}: a zip archive; compressed MusicXML must end in .mxl")
            data = _mxl_score_bytes(path)
        elif path.suffix.lower() == ".mxl":
            raise ScoreError(f"{name}: not a compressed MusicXML (.mxl) file: not a zip archive")
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile, KeyError) as err:
        raise ScoreError(f"{name}: cannot read the file: {_describe(err)}") from err
    return data


def _decode(data: bytes, encoding: str | None, name: str, notices: list[str]) -> str:
    """The document as text, without its XML declaration (the charset is decided here: expat
    reads no multi-byte legacy charset, and reads undeclared GBK as UTF-8)."""
    head = _DECLARATION.match(data)
    declared = _DECLARED.search(head[0]) if head else None
    try:
        decoded = decode_file(data, encoding, declared[1].decode("ascii") if declared else None)
    except EncodingError as err:
        raise ScoreError(f"{name}: {err}") from None
    notice = decoded.notice(name)
    if notice:
        notices.append(notice)
    text = decoded.texts[0].lstrip("\ufeff")
    return re.sub(r"^\s*<\?xml\b[^>]*?\?>", "", text, count=1)


def _check_root(text: str, path: Path) -> None:
    """Raise ``ScoreError`` unless the document is well-formed partwise MusicXML."""
    name = str(path)
    is_zip = path.suffix.lower() == ".mxl"
    what = "not a MusicXML file" if not is_zip else "not a valid .mxl file"
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise ScoreError(f"{name}: {what}: {_xml_error(err)}") from err
    tag = root.tag.rsplit("}", 1)[-1]
    if tag == "score-timewise":
        raise ScoreError(f"{name}: a timewise MusicXML score; only partwise scores are read")
    if tag != "score-partwise":
        raise ScoreError(f"{name}: {what}: the root element is <{tag}>, not <score-partwise>")


def _mxl_score_bytes(path: Path) -> bytes:
    """The score document inside an ``.mxl`` archive (named by META-INF/container.xml)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if "META-INF/container.xml" in names:
            try:
                container = ET.fromstring(archive.read("META-INF/container.xml"))
            except ET.ParseError as err:
                raise ScoreError(f"{path}: not a valid .mxl file: META-INF/container.xml: "
                                 f"{_xml_error(err)}") from err
            for elem in container.iter():
                root = elem.get("full-path")
                if elem.tag.rsplit("}", 1)[-1] == "rootfile" and root:
                    if root not in names:
                        raise ScoreError(f"{path}: not a valid .mxl file: META-INF/container.xml "
                                         f"names {root}, which is not in the archive")
                    return archive.read(root)
        candidates = [n for n in names if not n.startswith("META-INF")
                      and n.lower().endswith((".xml", ".musicxml"))]
        if not candidates:
            raise ScoreError(f"{path}: not a valid .mxl file: no MusicXML score in the archive")
        return archive.read(candidates[0])


def _xml_error(err: ET.ParseError) -> str:
    """``mismatched tag at line 12, column 2`` from an expat error."""
    return _POSITION.sub(r" at line \1, column \2", str(err))


def _describe(err: BaseException) -> str:
    text = str(err).strip()
    return text or type(err).__name__


def _parse(text: str, path: Path) -> Any:
    """Parse the decoded document with music21 (imported here: it is slow to import); errors
    become ScoreError. Parsing text, not the path, also keeps music21's pickle cache (keyed by
    path and mtime) out of the way."""
    try:
        from music21 import converter, stream

        parsed = converter.parseData(text, format="musicxml")
    except Exception as err:  # music21 raises many kinds; none may escape raw
        raise ScoreError(f"{path}: music21 cannot parse the score: {_describe(err)}") from err
    if not isinstance(parsed, stream.Score):
        wrapper = stream.Score()
        wrapper.insert(0, parsed)
        parsed = wrapper
    return parsed


def _title(m21_score: Any, path: Path) -> str:
    """Work title, else a movement title, else the file stem."""
    md = m21_score.metadata
    if md is not None:
        # music21 sets movementName to the file name when the file has no title at all.
        for title in (md.title, md.movementName):
            if title and str(title) not in (path.name, str(path)):
                return str(title)
    return path.stem


def _select_parts(m21_score: Any, wanted: str | int | None, name: str) -> list[tuple[str, Any]]:
    """(unique name, music21 part) for every part, or for the one ``wanted``."""
    named: list[tuple[str, Any]] = []
    for i, m21_part in enumerate(m21_score.parts):
        base = (m21_part.partName or "").strip() or f"part {i + 1}"
        pname, k = base, 2
        while any(pname == n for n, _ in named):
            pname, k = f"{base} {k}", k + 1
        named.append((pname, m21_part))
    if not named:
        raise ScoreError(f"{name}: the score has no parts")
    if wanted is None:
        return named
    if isinstance(wanted, int):
        if -len(named) <= wanted < len(named):
            return [named[wanted]]
    else:
        for pname, m21_part in named:
            if wanted in (pname, m21_part.partName, m21_part.id):
                return [(pname, m21_part)]
    known = ", ".join(repr(n) for n, _ in named)
    raise ScoreError(f"{name}: no part {wanted!r}; the parts are {known}")


def _tempo_map(m21_score: Any) -> TempoMap:
    """Every metronome mark (quarter notes per minute) at its beat; 120 bpm without any."""
    from music21 import tempo

    bpm_at: dict[float, float] = {}
    marks = m21_score.flatten().getElementsByClass(tempo.MetronomeMark)
    for mark in marks:
        bpm = mark.getQuarterBPM()
        beat = float(mark.offset)
        if bpm and beat not in bpm_at:  # the same mark repeated in every part
            bpm_at[beat] = float(bpm)
    changes = [TempoChange(beat, bpm) for beat, bpm in sorted(bpm_at.items())]
    return TempoMap(changes or [TempoChange(0.0, DEFAULT_BPM)])


def _time_signatures(m21_score: Any) -> list[TimeSignature]:
    """Time signatures of the first part at their beats (bar lines for the render report)."""
    from music21 import meter

    if not m21_score.parts:
        return []
    found: dict[float, TimeSignature] = {}
    for sig in m21_score.parts[0].flatten().getElementsByClass(meter.TimeSignature):
        beat = float(sig.offset)
        found.setdefault(beat, TimeSignature(beat, int(sig.numerator), int(sig.denominator)))
    return [found[b] for b in sorted(found)]


def _part_notes(m21_part: Any, pname: str) -> list[SourceNote]:
    """The part's notes as ``SourceNote``s: ties merged, chords to their top note."""
    from music21 import dynamics, spanner

    slurs = [
        (float(s.getFirst().getOffsetInHierarchy(m21_part)),
         float(s.getLast().getOffsetInHierarchy(m21_part)))
        for s in m21_part.spannerBundle.getByClass(spanner.Slur)
        if s.getFirst() is not None and s.getLast() is not None
    ]
    flat = m21_part.stripTies().flatten()
    dyn_beats: list[float] = []
    dyn_velocity: list[float] = []
    for dyn in flat.getElementsByClass(dynamics.Dynamic):
        if isinstance(dyn.value, str) and dyn.value in DYNAMIC_VELOCITY:
            dyn_beats.append(float(dyn.offset))
            dyn_velocity.append(DYNAMIC_VELOCITY[dyn.value])

    by_onset: dict[float, SourceNote] = {}
    for el in flat.notes:
        pitches = getattr(el, "pitches", ())
        if not pitches or el.duration.isGrace or el.quarterLength <= 0:
            continue
        beat_on = float(el.offset)
        lyric, syllabic = _first_verse(el)
        extend = lyric is None and any(a < beat_on <= b for a, b in slurs)
        if lyric is not None and lyric.strip() in ("-", "_", "+", "~"):
            lyric, extend = None, True
        i = bisect.bisect_right(dyn_beats, beat_on) - 1
        note = SourceNote(
            beat_on=beat_on,
            beat_off=beat_on + float(el.quarterLength),
            pitch_midi=float(max(p.ps for p in pitches)),
            lyric=lyric,
            syllabic=syllabic,
            extend=extend,
            velocity=dyn_velocity[i] if i >= 0 else DEFAULT_VELOCITY,
            where=f"part {pname} measure {el.measureNumber}",
        )
        prev = by_onset.get(beat_on)
        # Several voices starting together: keep the one with a lyric, then the highest.
        if prev is None or (note.lyric is not None, note.pitch_midi) > (
                prev.lyric is not None, prev.pitch_midi):
            by_onset[beat_on] = note
    return [by_onset[b] for b in sorted(by_onset)]


def _first_verse(el: Any) -> tuple[str | None, Syllabic]:
    """Text and syllabic of the note's first-verse lyric (``None`` without one)."""
    lyrics = [ly for ly in el.lyrics if ly is not None]
    if not lyrics:
        return None, "single"
    numbered = [ly for ly in lyrics if ly.number == 1]
    lyric = numbered[0] if numbered else lyrics[0]
    if lyric.isComposite:  # an elision: two syllables sung on one note
        text = "".join(c.text or "" for c in lyric.components or [])
    else:
        text = lyric.text or ""
    text = text.strip()
    if not text:
        return None, "single"
    return text, _SYLLABICS.get(str(lyric.syllabic), "single")
