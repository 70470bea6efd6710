"""Lyrics become the voice's phonemes: Mandarin characters and pinyin, English words."""

from __future__ import annotations

import pytest

from singer.lyrics import LyricError, detect_language, phonemize_word
from singer.lyrics.mandarin import all_pinyin_syllables, mandarin_phonemes
from singer.phonemes import PHONEMES, VOWEL_NAMES


@pytest.mark.parametrize(("text", "expected"), [
    ("茉", ("m", "w", "o")), ("莉", ("l", "i")), ("花", ("kh", "w", "a")),
    ("好", ("kh", "a", "u")), ("hao3", ("kh", "a", "u")), ("hǎo", ("kh", "a", "u")),
    ("雪", ("xx", "yw", "eh")), ("xue", ("xx", "yw", "eh")), ("是", ("sh", "ix")),
    ("我", ("w", "o")), ("一", ("i",)), ("鱼", ("ue",)), ("yu2", ("ue",)),
    ("月", ("yw", "eh")), ("lv4", ("l", "ue")), ("nü", ("n", "ue")), ("nu:", ("n", "ue")),
    ("jun", ("tc", "ue", "n")), ("zhang", ("jh", "a", "ng")), ("zi", ("ts", "ix")),
    ("qing", ("tch", "i", "ng")), ("guo", ("g", "w", "o")), ("dui", ("d", "w", "e", "ih")),
    ("朵", ("d", "w", "o")), ("美", ("m", "e", "ih")), ("丽", ("l", "i")), ("的", ("d", "ex")),
])
def test_mandarin(text: str, expected: tuple[str, ...]) -> None:
    assert phonemize_word([text], "zh") == [expected]


@pytest.mark.parametrize(("pieces", "expected"), [
    (["hello"], [("hh", "ah", "l", "o", "uh")]),
    (["star!"], [("s", "t", "a", "r")]),
    (["“Twinkle,"], [("t", "w", "ih", "ng", "k", "ah", "l")]),
    (["twin", "kle"], [("t", "w", "ih", "ng"), ("k", "ah", "l")]),
    (["A", "ma", "zing"], [("ah",), ("m", "e", "ih"), ("z", "ih", "ng")]),
    (["di", "a", "mond"], [("d", "a"), ("ih",), ("m", "ah", "n", "d")]),
    (["[s ah n]"], [("s", "ah", "n")]),
    (["I'm"], [("a", "ih", "m")]),
])
def test_english(pieces: list[str], expected: list[tuple[str, ...]]) -> None:
    assert phonemize_word(pieces, "en") == expected


@pytest.mark.parametrize(("pieces", "language", "words"), [
    (["xq"], "zh", "unknown syllable 'xq'"),
    (["qwzx"], "en", "unknown word 'qwzx'"),
    (["你好"], "zh", "one character per note"),
    (["[s qq]"], "en", "unknown phoneme"),
    (["zzz", "yyy"], "en", "cannot sing 'zzzyyy'"),
    (["hm"], "xx", "unknown language"),
])
def test_errors_name_the_syllable(pieces: list[str], language: str, words: str) -> None:
    with pytest.raises(LyricError, match=words):
        phonemize_word(pieces, language)


def test_latin_lyrics_in_a_mandarin_song_fall_back_to_english() -> None:
    assert phonemize_word(["love"], "zh") == [("l", "ah", "v")]
    assert phonemize_word(["ma"], "zh") == [("m", "a")]  # valid pinyin wins


def test_every_pinyin_syllable_maps_to_the_inventory_with_a_vowel() -> None:
    syllables = all_pinyin_syllables()
    assert len(syllables) > 400
    for syllable in syllables:
        phonemes = mandarin_phonemes(syllable)
        assert all(p in PHONEMES for p in phonemes), syllable
        assert any(p in VOWEL_NAMES for p in phonemes), syllable


def test_language_detection() -> None:
    assert detect_language(["好", "la"]) == "zh"
    assert detect_language(["twin", "kle"]) == "en"
    assert detect_language([]) == "en"
