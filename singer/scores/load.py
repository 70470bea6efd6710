"""One entry point for every score: ``load_score(path_or_song_name)``.

The reader is picked by the file's content first (a ``MThd`` header, a zip archive, an XML
root, UST section headers, YAML with ``ustx_version``), then by its extension, so a file
with a wrong or missing extension still loads. A name that is not a file is looked up in the
song library (``LIVESINGER_SONGS`` or the ``songs`` argument) and in the demo songs.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from singer.score import Score, ScoreError
from singer.scores.limits import check_score_file

if TYPE_CHECKING:
    from singer.library import SongLibrary

ScoreFormat = Literal["musicxml", "midi", "ustx", "ust"]

SUFFIX_FORMATS: dict[str, ScoreFormat] = {
    ".musicxml": "musicxml", ".xml": "musicxml", ".mxl": "musicxml",
    ".mid": "midi", ".midi": "midi", ".kar": "midi", ".smf": "midi",
    ".ustx": "ustx", ".ust": "ust",
}
"""File extensions of the score formats (used when the content does not tell)."""

_SNIFF_BYTES = 8192
_UST_HEADER = re.compile(r"^\s*\[#(SETTING|VERSION|\d{4})\]\s*$", re.MULTILINE)
_USTX_KEY = re.compile(r"^(ustx_version|voice_parts)\s*:", re.MULTILINE)
_XML_ROOT = re.compile(r"<(score-partwise|score-timewise)\b")


def detect_format(path: str | Path) -> ScoreFormat:
    """The score format of a file by its content, else by its extension; ``ScoreError`` when
    neither tells."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as err:
        raise ScoreError(f"{path}: cannot read the file: {err.strerror or err}") from err
    if head.startswith(b"MThd"):
        return "midi"
    if head.startswith(b"PK\x03\x04"):
        return "musicxml"  # .mxl: the MusicXML reader checks the archive
    text = _text_head(head)
    if text is not None:
        if _XML_ROOT.search(text):
            return "musicxml"
        if _UST_HEADER.search(text):
            return "ust"
        if _USTX_KEY.search(text):
            return "ustx"
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        kinds = ", ".join(sorted(SUFFIX_FORMATS))
        raise ScoreError(f"{path}: cannot tell what kind of score this is: its content is "
                         f"none of MusicXML, MIDI, USTX or UST and its extension none of {kinds}")
    return fmt


def load_score(ref: str | Path, *, songs: str | Path | SongLibrary | None = None,
               **options: Any) -> Score:
    """A score from a file in any supported format, or a library or demo song by name.

    ``songs`` is the library to look names up in (a folder or a ``SongLibrary``; by default
    ``LIVESINGER_SONGS``, then the demo songs). ``options`` go to the reader: ``language``
    and ``default_syllable`` for all; ``part`` (MusicXML, USTX, and the track for MIDI),
    ``track``/``channel`` (MIDI), ``encoding`` (all: the charset of the file's text, else
    guessed once per file by ``singer.text_encoding``). Raises ``ScoreError``.
    """
    path = resolve_score(ref, songs)
    check_score_file(path)  # a regular file of bounded size, before anything reads it
    fmt = detect_format(path)
    reader = _reader(fmt)
    if fmt == "midi" and "part" in options:
        options["track"] = options.pop("part")
    accepted = set(inspect.signature(reader).parameters)
    wrong = sorted(k for k in options if k not in accepted)
    if wrong:
        raise ScoreError(f"{path}: option {', '.join(wrong)} does not apply to {fmt} files")
    return reader(path, **options)


def resolve_score(ref: str | Path, songs: str | Path | SongLibrary | None = None) -> Path:
    """The file ``ref`` names: itself when it exists, else a library or demo song's file."""
    from singer.library import SongLibrary, default_libraries

    path = Path(ref)
    if path.exists():
        if path.is_dir():
            raise ScoreError(f"{path}: a folder, not a score file")
        return path
    if songs is None:
        libraries = default_libraries()
    else:
        libraries = [songs if isinstance(songs, SongLibrary) else SongLibrary(songs)]
    known: list[str] = []
    for library in libraries:
        found = library.find(str(ref))
        if found is not None:
            return found
        known += [n for n in library.names() if n not in known]
    raise ScoreError(f"{ref}: no such score file or song (songs: {', '.join(known) or 'none'})")


def _reader(fmt: ScoreFormat) -> Callable[..., Score]:
    if fmt == "midi":
        from singer.scores.midi import read_midi
        return read_midi
    if fmt == "ustx":
        from singer.scores.ustx import read_ustx
        return read_ustx
    if fmt == "ust":
        from singer.scores.ust import read_ust
        return read_ust
    from singer.scores.musicxml import read_musicxml
    return read_musicxml


def _text_head(head: bytes) -> str | None:
    """The start of a text file, ``None`` for binary. Only the ASCII markers matter here, so
    the bytes are not guessed at: latin-1 keeps every byte of any ASCII-compatible charset
    (UTF-8, Shift-JIS, GBK, Big5...) where it is; UTF-16 needs its BOM."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    if b"\x00" in head:
        return None
    return head.decode("latin-1")
