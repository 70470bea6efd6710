"""A lyric as a UTAU bank spells it: its CV spellings, its consonant and its vowel.

The consonant is what a VC alias (``a k``) joins into; the vowel is what the next note's VCV
(``a ka``) or VC (``a k``) alias starts from. ``presamp.ini`` decides them when the bank has
one; otherwise a Chinese character or a pinyin syllable is split with the Mandarin tables
(``ban`` → consonant ``b``, vowels ``an``, ``n``, ``a``), a romaji syllable at its first vowel
letter, and anything else (kana without presamp) is sung as a plain CV.
"""

from __future__ import annotations

from dataclasses import dataclass

from singer.backends.utau.bank_files import Presamp
from singer.lyrics.errors import LyricError
from singer.lyrics.mandarin import character_pinyin, is_cjk, normalise_pinyin, split_pinyin

_VOWEL_LETTERS = "aeiouvü"


@dataclass(frozen=True, slots=True)
class Syllable:
    """How one lyric may be looked up in a bank."""

    text: str
    """The lyric as written on the note."""
    spellings: tuple[str, ...]
    """CV spellings, best first (``lü`` then ``lv``)."""
    consonant: str
    """Its onset consonant (``""`` for none or unknown)."""
    vowels: tuple[str, ...]
    """Its end vowel, as VC/VCV aliases may name it, best first (empty if unknown)."""


def syllable_of(lyric: str, presamp: Presamp | None = None) -> Syllable:
    """The lookup spellings, consonant and vowel of a lyric."""
    text = lyric.strip()
    if presamp is not None and (text in presamp.vowel_of or text in presamp.consonant_of):
        vowel = presamp.vowel_of.get(text)
        return Syllable(text, (text,), presamp.consonant_of.get(text, ""),
                        (vowel,) if vowel else ())
    chars = [c for c in text if is_cjk(c)]
    if len(chars) == 1:
        try:
            return _pinyin(text, character_pinyin(chars[0]))
        except LyricError:
            return Syllable(text, (text,), "", ())
    if text.isascii() and text.isalpha():
        try:
            return _pinyin(text, text)
        except LyricError:
            return _romaji(text)
    return Syllable(text, (text,), "", ())


def _pinyin(text: str, pinyin: str) -> Syllable:
    plain = normalise_pinyin(pinyin)
    initial, final = split_pinyin(plain)
    spellings = tuple(dict.fromkeys(s for s in (plain, plain.replace("ü", "v"), text) if s))
    written = plain[len(initial):] if plain.startswith(initial) else final
    ends = [written, final, final.replace("ü", "v")]
    if final.endswith(("n", "ng")):
        ends.append("ng" if final.endswith("ng") else "n")
    vowel_letters = [c for c in final if c in _VOWEL_LETTERS]
    if vowel_letters:
        ends.append(vowel_letters[-1])
    return Syllable(text, spellings, initial, tuple(dict.fromkeys(e for e in ends if e)))


def _romaji(text: str) -> Syllable:
    lower = text.lower()
    first = next((i for i, c in enumerate(lower) if c in _VOWEL_LETTERS), len(lower))
    last = lower[-1:] if lower[-1:] in _VOWEL_LETTERS else ""
    return Syllable(text, (text,), lower[:first], (last,) if last else ())
