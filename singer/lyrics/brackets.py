"""Phonemes written literally in a lyric: ``[s ay n]``, ``[S AY1 N]``, ``[x iao]``.

A symbol in brackets is, whatever its case, the first of these that it names:

1. a phoneme of the voice (``singer.phonemes``: ``a``, ``ih``, ``ex``, ``tch``...), so
   everything the dictionary and pinyin paths produce can be written back as it is;
2. an ARPAbet symbol of the CMU dictionary, with or without a stress digit (``AY1`` →
   ``a ih``, ``IY`` → ``i``, ``Y`` → ``j``);
3. a pinyin initial or final, with or without a tone digit (``q`` → ``tch``, ``iao`` →
   ``j a u``, ``ang`` → ``a ng``).

Where a pinyin spelling is also a voice phoneme the voice phoneme wins: ``zh``, ``z``, ``j``,
``r``, ``e`` and ``ao`` are ʒ, z, j, ɹ, e and ɔ; write Mandarin's as ``jh``, ``ts``, ``tc``,
``rr``, ``ex`` and ``a u``. A bare ``h`` is pinyin's (``kh``); ARPAbet's is ``HH``.
"""

from __future__ import annotations

import functools

from singer.lyrics.errors import LyricError
from singer.phonemes import PHONEMES

_TONES = tuple("012345")
_OUTSIDE = " \t\"'`.,;:!?(){}«»“”‘’„…—–*，。、！？；：（）"
"""Punctuation that may sit around a bracketed word (``[s ay n],``)."""


def bracketed(text: str) -> tuple[str, ...] | None:
    """The phonemes of a lyric written as ``[sym sym ...]``; ``None`` if it is not bracketed.

    ``LyricError`` names every symbol that is none of a voice phoneme, an ARPAbet symbol or a
    pinyin initial/final."""
    t = text.strip().strip(_OUTSIDE)
    if not (t.startswith("[") and t.endswith("]")):
        return None
    symbols = t[1:-1].split()
    if not symbols:
        raise LyricError(f"{text!r}: no phonemes between the brackets")
    out: list[str] = []
    unknown: list[str] = []
    for symbol in symbols:
        phonemes = symbol_phonemes(symbol)
        if phonemes is None:
            unknown.append(symbol)
        else:
            out += phonemes
    if unknown:
        raise LyricError(f"{text!r}: unknown phoneme(s) {', '.join(unknown)} (write voice "
                         "phonemes, ARPAbet symbols such as AY1, or pinyin initials/finals)")
    return tuple(out)


def symbol_phonemes(symbol: str) -> tuple[str, ...] | None:
    """The voice phonemes one bracketed symbol stands for, ``None`` if it names none."""
    key = symbol.lower()
    if key[-1:] in _TONES and len(key) > 1:  # AY1 (stress), iao4 (tone)
        key = key[:-1]
    return _table().get(key)


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, tuple[str, ...]]:
    """Lowercase symbol (without stress or tone digit) → voice phonemes, by precedence."""
    from singer.lyrics.english import ARPABET
    from singer.lyrics.mandarin import FINALS, INITIALS

    table: dict[str, tuple[str, ...]] = {}
    for source in (FINALS, INITIALS):  # lowest precedence first: later entries overwrite
        for spelling, phonemes in source.items():
            table[spelling] = phonemes
            table[spelling.replace("ü", "v")] = phonemes
    table.update({symbol.lower(): phonemes for symbol, phonemes in ARPABET.items()})
    table.update({name: (name,) for name in PHONEMES})
    return table


def accepted_symbols() -> list[str]:
    """Every symbol a bracket accepts (without stress or tone digits), sorted."""
    return sorted(_table())
