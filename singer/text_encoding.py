"""The charset of a score's text: named by the user, declared by the file, or guessed once.

Every score reader decodes through here. A guess looks at ALL the text of a file at once
(every MIDI text event, a whole UST file), never one piece at a time: GBK bytes of a single
character can be valid UTF-8 (亭 = CD A4 reads as U+0364, a combining mark), so a per-piece
"UTF-8, else something else" mixes charsets within a file. UTF-8 is chosen when every piece
decodes and the result is plausible text; otherwise each legacy charset (GB18030, Shift-JIS,
Big5, Windows-1252) that decodes everything is scored by how common its characters are, and
the best wins. Latin-1, which decodes anything, is the last resort.
"""

from __future__ import annotations

import codecs
import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

UTF8 = "utf-8"
GUESSES = ("utf-8", "gb18030", "cp932", "cp950", "cp1252")
"""Charsets a guess chooses from, in order of preference on equal evidence."""

LABELS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "gb18030": "GB18030",
          "gbk": "GBK", "gb2312": "GB2312", "cp932": "Shift-JIS (cp932)",
          "shift_jis": "Shift-JIS", "cp950": "Big5 (cp950)", "big5": "Big5",
          "cp1252": "Windows-1252", "latin-1": "Latin-1",
          "ascii": "ASCII", "euc_jp": "EUC-JP", "euc_kr": "EUC-KR"}

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
_BAD = -8
"""Score of a character no real lyric holds (controls, private use, unassigned...)."""
_OTHER_ALPHABETS = ((0x0370, 0x03FF), (0x0400, 0x052F), (0x0530, 0x058F),
                            (0x0590, 0x05FF), (0x0600, 0x06FF), (0x0700, 0x074F),
                            (0x0780, 0x07BF), (0x07C0, 0x07FF))
"""Greek, Cyrillic, Armenian, Hebrew, Arabic, Syriac, Thaana, NKo: the alphabets a 2-byte
legacy CJK character lands in when read as UTF-8. Real text uses one of them, not several."""


class EncodingError(ValueError):
    """An encoding name Python does not know, or text that does not decode as named."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """Texts decoded with one charset, and how that charset was chosen."""

    texts: tuple[str, ...]
    encoding: str
    """Python codec name (``utf-8``, ``gb18030``, ``cp932``...)."""
    how: str
    """``given`` (the caller named it), ``declared`` (the file says so: a BOM, an XML
    declaration, a ``Charset=`` key), ``ascii`` (nothing to decide) or ``guessed``."""

    @property
    def label(self) -> str:
        """The charset as people name it: ``GB18030``, ``Shift-JIS (cp932)``..."""
        return label(self.encoding)

    def notice(self, name: str) -> str | None:
        """A notice for ``Score.notices`` when the charset was guessed as a legacy one."""
        if self.how != "guessed" or self.encoding == UTF8:
            return None
        return (f"{name}: text read as {self.label} (guessed from the file; "
                "--encoding NAME overrides)")


def label(encoding: str) -> str:
    """A readable name of a Python codec name."""
    return LABELS.get(encoding, encoding)


def check_encoding(name: str) -> str:
    """The Python codec name of ``name`` (``GBK`` → ``gbk``, ``Shift_JIS`` → ``shift_jis``);
    ``EncodingError`` naming it when Python has no such text codec."""
    try:
        info = codecs.lookup(name.strip())
    except (LookupError, ValueError):
        raise EncodingError(f"unknown encoding {name!r} (e.g. utf-8, gb18030, gbk, "
                            "shift_jis, big5, cp1252)") from None
    if not getattr(info, "_is_text_encoding", True):
        raise EncodingError(f"{name!r} is not a text encoding")
    return "latin-1" if info.name == "iso8859-1" else info.name


def decode_given(pieces: Sequence[bytes], encoding: str) -> Decoded:
    """Every piece decoded with the named charset; ``EncodingError`` saying where it fails."""
    codec = check_encoding(encoding)
    return Decoded(tuple(_strict(p, codec) for p in pieces), codec, "given")


def decode_pieces(pieces: Sequence[bytes], encoding: str | None = None,
                  prefer: Sequence[str] = GUESSES) -> Decoded:
    """Every piece decoded with ONE charset: ``encoding`` when given, else the guess.

    ``prefer`` orders the candidates (it decides only between equally good readings).
    """
    if encoding:
        return decode_given(pieces, encoding)
    if all(p.isascii() for p in pieces):
        return Decoded(tuple(p.decode("ascii") for p in pieces), UTF8, "ascii")
    best: tuple[int, int, str, tuple[str, ...]] | None = None
    for rank, codec in enumerate(prefer):
        texts = _try(pieces, codec)
        if texts is None:
            continue
        score, bad = _score(texts, codec)
        if codec == UTF8 and not bad:
            return Decoded(texts, UTF8, "guessed")
        if best is None or (score, -rank) > (best[0], -best[1]):
            best = (score, rank, codec, texts)
    if best is None:
        return Decoded(tuple(p.decode("latin-1") for p in pieces), "latin-1", "guessed")
    return Decoded(best[3], best[2], "guessed")


def decode_file(data: bytes, encoding: str | None = None, declared: str | None = None,
                prefer: Sequence[str] = GUESSES) -> Decoded:
    """A whole text file: the given charset, else a BOM, else ``declared``, else a guess."""
    if encoding:
        return decode_given([data], encoding)
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return Decoded((_strict(data, codec),), codec, "declared")
    if declared:
        try:
            codec = check_encoding(declared)
        except EncodingError as err:
            raise EncodingError(f"the file declares {err}") from None
        return Decoded((_strict(data, codec),), codec, "declared")
    return decode_pieces([data], None, prefer)


def _strict(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as err:
        bad = data[err.start:err.start + 4].hex(" ").upper()
        raise EncodingError(f"not {label(codec)} text: bytes {bad} at offset {err.start} "
                            "do not decode") from None


def _try(pieces: Sequence[bytes], codec: str) -> tuple[str, ...] | None:
    try:
        return tuple(p.decode(codec) for p in pieces)
    except UnicodeDecodeError:
        return None


def _score(texts: Sequence[str], codec: str) -> tuple[int, int]:
    """(evidence for reading the bytes with ``codec``, count of characters no real text
    holds)."""
    score = bad = 0
    alphabets: set[int] = set()
    for text in texts:
        prev = ""
        for ch in text:
            value = _char_score(prev, ch, codec)
            score += value
            bad += value == _BAD
            code = ord(ch)
            for i, (lo, hi) in enumerate(_OTHER_ALPHABETS):
                if lo <= code <= hi:
                    alphabets.add(i)
            prev = ch
    if len(alphabets) > 1:  # Greek and Hebrew and Cyrillic in one song: misread bytes
        bad += len(alphabets) - 1
        score += _BAD * (len(alphabets) - 1)
    return score, bad


def _char_score(prev: str, ch: str, codec: str) -> int:
    """2 for a common character of the charset's language, 1 for a less common one, 0 for a
    possible one, negative for one that misread bytes give."""
    code = ord(ch)
    if code < 0x80:
        return 0 if ch.isprintable() or ch in "\t\r\n" else _BAD
    category = unicodedata.category(ch)
    if category in ("Cc", "Cn", "Co", "Cs", "Cf"):
        return _BAD
    if category in ("Mn", "Me"):  # a combining mark belongs after a letter it composes with
        composed = unicodedata.normalize("NFC", prev + ch)
        return 0 if prev.isalpha() and len(composed) == 1 else _BAD
    if 0x0250 <= code <= 0x02FF:  # IPA and spacing modifiers: not lyrics
        return _BAD
    if 0xFF61 <= code <= 0xFF9F:  # half-width katakana: GBK lead bytes read as Shift-JIS
        return _BAD // 2
    if 0x3040 <= code <= 0x30FF:  # kana: Japanese text (GBK and Big5 have them too, rarely)
        return 2 if codec in ("cp932", UTF8) else 0
    if 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF:
        return _ideograph_score(ch, codec)
    if ch.isalpha() and code < 0x0250:  # accented Latin letters sit among ASCII letters
        return 1 if prev.isascii() and prev.isalpha() else 0
    return 0


_IDEOGRAPH_SETS = {
    "gb18030": ("gb2312", (0xB0A1, 0xD7FE), (0xD8A1, 0xF7FE)),
    "cp950": ("big5", (0xA440, 0xC67E), (0xC940, 0xF9D5)),
    "cp932": ("shift_jis", (0x889F, 0x9872), (0x989F, 0xEAA4)),
}
"""Per charset: the standard whose (common, less common) ideograph ranges tell how likely a
character is: GB2312 levels 1 and 2, Big5's frequent and less frequent sets, JIS X 0208
levels 1 and 2."""


@functools.lru_cache(maxsize=16384)
def _ideograph_score(ch: str, codec: str) -> int:
    """2 for a common ideograph in the charset's language, 1 for a less common one, else 0
    (any language's sets count for a UTF-8 reading)."""
    sets = [_IDEOGRAPH_SETS[codec]] if codec in _IDEOGRAPH_SETS else _IDEOGRAPH_SETS.values()
    best = 0
    for standard, common, rare in sets:
        try:
            raw = ch.encode(standard)
        except UnicodeEncodeError:
            continue
        value = int.from_bytes(raw, "big")
        best = max(best, 2 if common[0] <= value <= common[1] else
                   1 if rare[0] <= value <= rare[1] else 0)
    return best
