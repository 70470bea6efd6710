"""Mandarin: a Chinese character or a pinyin syllable -> the voice's phonemes.

Characters are read with pypinyin (its default reading); pinyin may carry tone digits or tone
marks (ignored: the melody gives the pitch) and write ü as ``v``, ``ü`` or ``u:``.
"""

from __future__ import annotations

import functools
import unicodedata

from singer.lyrics.errors import LyricError

INITIALS: dict[str, tuple[str, ...]] = {
    "b": ("b",), "p": ("p",), "m": ("m",), "f": ("f",), "d": ("d",), "t": ("t",),
    "n": ("n",), "l": ("l",), "g": ("g",), "k": ("k",), "h": ("kh",), "j": ("tc",),
    "q": ("tch",), "x": ("xx",), "zh": ("jh",), "ch": ("ch",), "sh": ("sh",), "r": ("rr",),
    "z": ("ts",), "c": ("tsh",), "s": ("s",),
}

FINALS: dict[str, tuple[str, ...]] = {
    "a": ("a",), "o": ("o",), "e": ("ex",), "ê": ("eh",), "er": ("er",), "i": ("i",),
    "u": ("u",), "ü": ("ue",), "ai": ("a", "ih"), "ei": ("e", "ih"), "ao": ("a", "u"),
    "ou": ("o", "u"), "an": ("a", "n"), "en": ("ex", "n"), "ang": ("a", "ng"),
    "eng": ("ex", "ng"), "ong": ("u", "ng"), "ia": ("j", "a"), "ie": ("j", "eh"),
    "iao": ("j", "a", "u"), "iu": ("j", "o", "u"), "iou": ("j", "o", "u"),
    "ian": ("j", "eh", "n"), "in": ("i", "n"), "iang": ("j", "a", "ng"), "ing": ("i", "ng"),
    "iong": ("j", "u", "ng"), "ua": ("w", "a"), "uo": ("w", "o"), "uai": ("w", "a", "ih"),
    "ui": ("w", "e", "ih"), "uei": ("w", "e", "ih"), "uan": ("w", "a", "n"),
    "un": ("w", "ex", "n"), "uen": ("w", "ex", "n"), "uang": ("w", "a", "ng"),
    "ueng": ("w", "ex", "ng"), "üe": ("yw", "eh"), "üan": ("yw", "ae", "n"),
    "ün": ("ue", "n"),
}

# y- and w- spellings of syllables with no initial, written as the final they stand for
ZERO_INITIAL = {
    "yi": "i", "ya": "ia", "yao": "iao", "ye": "ie", "you": "iou", "yan": "ian", "yin": "in",
    "yang": "iang", "ying": "ing", "yong": "iong", "yu": "ü", "yue": "üe", "yuan": "üan",
    "yun": "ün", "wu": "u", "wa": "ua", "wo": "uo", "wai": "uai", "wei": "uei",
    "wan": "uan", "wen": "uen", "wang": "uang", "weng": "ueng",
}

APICAL = {"z", "c", "s", "zh", "ch", "sh", "r"}
PALATAL = {"j", "q", "x"}
# initial -> finals it combines with (pinyin phonotactics, enough to reject non-syllables)
_NO_ROUND = {"b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "z", "c", "s", "zh", "ch",
             "sh", "r"}


def normalise_pinyin(text: str) -> str:
    """Lowercase pinyin with tone marks and digits removed and ü written as ``ü``."""
    text = text.strip().lower().replace("u:", "ü").replace("v", "ü")
    out = []
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.category(ch) == "Mn":
            if ch == "\u0308":  # combining diaeresis: keep ü
                out.append(ch)
            continue
        out.append(ch)
    plain = unicodedata.normalize("NFC", "".join(out))
    return plain.rstrip("012345")


def split_pinyin(syllable: str) -> tuple[str, str]:
    """(initial, final) of a plain pinyin syllable; ``LyricError`` if it is not one."""
    s = normalise_pinyin(syllable)
    if s in ZERO_INITIAL:
        return "", ZERO_INITIAL[s]
    if s in ("a", "o", "e", "ê", "er", "ai", "ei", "ao", "ou", "an", "en", "ang", "eng"):
        return "", s
    for size in (2, 1):
        initial, final = s[:size], s[size:]
        if initial in INITIALS and final:
            if initial in PALATAL and final.startswith("u"):
                final = "ü" + final[1:]  # ju, que, xuan are written without the dots
            if final == "i" or final in FINALS and _allowed(initial, final):
                return initial, final
    raise LyricError(f"unknown syllable {syllable!r} (not a Mandarin pinyin syllable)")


def _allowed(initial: str, final: str) -> bool:
    if initial in PALATAL:
        return final.startswith(("i", "ü"))
    if final.startswith("ü"):
        return initial in ("n", "l")
    if initial in _NO_ROUND and final == "er":
        return False
    return True


def pinyin_phonemes(syllable: str) -> tuple[str, ...]:
    """Phonemes of one pinyin syllable."""
    initial, final = split_pinyin(syllable)
    if final == "i" and initial in APICAL:
        body: tuple[str, ...] = ("ix",)
    elif initial in ("b", "p", "m", "f") and final == "o":
        body = ("w", "o")
    else:
        body = FINALS[final]
    return INITIALS.get(initial, ()) + body


def is_cjk(ch: str) -> bool:
    """True for a CJK ideograph."""
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF \
        or 0x20000 <= code <= 0x2FA1F


@functools.lru_cache(maxsize=4096)
def character_pinyin(ch: str) -> str:
    """The default pinyin reading of a Chinese character (pypinyin)."""
    from pypinyin import Style, lazy_pinyin

    reading = lazy_pinyin(ch, style=Style.NORMAL, errors="ignore", v_to_u=True)
    if not reading or not reading[0]:
        raise LyricError(f"no pinyin reading for {ch!r}")
    return reading[0]


def mandarin_phonemes(text: str) -> tuple[str, ...]:
    """Phonemes of one sung Mandarin syllable: a character or a pinyin syllable."""
    chars = [c for c in text if is_cjk(c)]
    if len(chars) > 1:
        raise LyricError(f"{text!r} has {len(chars)} characters: one character per note")
    if chars:
        return pinyin_phonemes(character_pinyin(chars[0]))
    return pinyin_phonemes(text)


def all_pinyin_syllables() -> list[str]:
    """Every syllable these tables accept (for tests and validation)."""
    out = set(ZERO_INITIAL) | {"a", "o", "e", "er", "ai", "ei", "ao", "ou", "an", "en", "ang",
                               "eng"}
    for initial in INITIALS:
        for final in list(FINALS) + ["i"]:
            try:
                if split_pinyin(initial + final) == (initial, final):
                    out.add(initial + final)
            except LyricError:
                pass
    return sorted(out)
