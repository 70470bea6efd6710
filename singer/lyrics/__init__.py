"""Lyrics -> phonemes for Mandarin (characters or pinyin) and English (CMU dictionary)."""

from __future__ import annotations

from singer.lyrics.english import english_word, word_phonemes
from singer.lyrics.errors import LyricError
from singer.lyrics.mandarin import is_cjk, mandarin_phonemes, split_pinyin

__all__ = ["LyricError", "detect_language", "phonemize_word", "mandarin_phonemes",
           "word_phonemes"]


def detect_language(lyrics: list[str]) -> str:
    """``"zh"`` when any lyric holds a Chinese character, else ``"en"``."""
    return "zh" if any(is_cjk(c) for text in lyrics for c in text) else "en"


def phonemize_word(syllables: list[str], language: str) -> list[tuple[str, ...]]:
    """Phonemes for each piece of one word sung over consecutive notes.

    ``language`` is ``"zh"`` (each piece one character or pinyin syllable; Latin text that is
    not pinyin falls back to English) or ``"en"`` (pieces joined, looked up, split again).
    """
    if not syllables:
        return []
    if language == "zh":
        out = []
        for piece in syllables:
            text = piece.strip().strip("，。、！？,.!?;；：“”\"'()（）")
            if not text:
                raise LyricError(f"empty syllable {piece!r}")
            literal = text.startswith("[")
            if literal:  # phonemes written out: their own error names the unknown symbol
                out.extend(english_word([text]))
            elif any(is_cjk(c) for c in text) or _is_pinyin(text):
                out.append(mandarin_phonemes(text))
            else:
                try:
                    out.extend(english_word([text]))
                except LyricError:
                    raise LyricError(f"unknown syllable {text!r} (not a Mandarin pinyin "
                                     "syllable nor an English word in the CMU dictionary)"
                                     ) from None
        return out
    if language == "en":
        return english_word(syllables)
    raise LyricError(f"unknown language {language!r} (zh or en)")


def _is_pinyin(text: str) -> bool:
    try:
        split_pinyin(text)
    except LyricError:
        return False
    return True
