"""The MusicXML reader: demo songs, music21-written scores read back, and clear errors."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from singer.contracts import SAMPLE_RATE_HZ
from singer.lyrics import phonemize_word
from singer.score import Score, ScoreError
from singer.scores.musicxml import read_musicxml
from singer.songs import DEMO_SONGS, song_path
from singer.tempo import TempoChange

SR = SAMPLE_RATE_HZ
QUARTER_AT_120 = 24_000  # samples per quarter note at 120 bpm


@pytest.fixture(scope="module")
def jasmine() -> Score:
    return read_musicxml(song_path("jasmine"))


@pytest.fixture(scope="module")
def twinkle() -> Score:
    return read_musicxml(song_path("twinkle"))


# ---- demo songs -------------------------------------------------------------------------------

def test_demo_song_registry() -> None:
    assert set(DEMO_SONGS) == {"jasmine", "twinkle"}
    for name in DEMO_SONGS:
        assert song_path(name).is_file()
    with pytest.raises(ValueError, match="jasmine, twinkle"):
        song_path("yesterday")


def test_jasmine_flower(jasmine: Score) -> None:
    notes = jasmine.notes
    sung = [n for n in notes if not n.is_melisma]
    assert jasmine.title == "茉莉花 (Jasmine Flower)"
    assert jasmine.language == "zh"
    assert len(jasmine.parts) == 1 and jasmine.parts[0].name == "Soprano"
    assert len(notes) == 67 and len(sung) == 51  # 51 characters, 16 melisma notes
    assert "".join(n.lyric for n in sung[:9]) == "好一朵美丽的茉莉花"
    assert "".join(n.lyric for n in sung[-7:]) == "茉莉花呀茉莉花"
    assert notes[-1].is_melisma  # the last 花 sinks through a tied slur to the final sol
    # Soprano range: D4 (the final low sol) to G5.
    assert min(n.pitch_midi for n in notes) == 62 and max(n.pitch_midi for n in notes) == 79
    assert jasmine.tempo_map.changes == (TempoChange(0.0, 76.0),)
    assert jasmine.end_sample == round(54 * 60 / 76 * SR)  # 27 bars of 2/4: 42.6 s
    for n in notes:
        assert n.phonemes or (n.is_melisma and n.lyric == "-")
        if not n.is_melisma:
            assert len(n.lyric) == 1 and "\u4e00" <= n.lyric <= "\u9fff"
    assert {n.velocity for n in notes} == {0.65}  # mp


def test_twinkle(twinkle: Score) -> None:
    notes = twinkle.notes
    assert twinkle.title == "Twinkle, Twinkle, Little Star"
    assert twinkle.language == "en"
    assert twinkle.parts[0].name == "Tenor"
    assert len(notes) == 43 and not any(n.is_melisma for n in notes)
    assert [n.lyric for n in notes[:2]] == ["Twin", "kle"]
    assert notes[-1].lyric == "are!"
    assert [n.lyric for n in notes[23:26]] == ["di", "a", "mond"]
    assert all(n.phonemes for n in notes)
    # Tenor range C3-A3 (written in treble-8vb clef).
    assert min(n.pitch_midi for n in notes) == 48 and max(n.pitch_midi for n in notes) == 57
    # 100 bpm, then "rit." to 80 bpm for the last line (bar 11 = beat 40).
    assert twinkle.tempo_map.changes == (TempoChange(0.0, 100.0), TempoChange(40.0, 80.0))
    assert notes[-7].lyric == "How" and notes[-7].t_on == 24 * SR  # 40 beats at 100 bpm
    assert twinkle.end_sample == 30 * SR  # 40 beats at 100 + 8 beats at 80
    # Rests after "are!" and "sky.": gaps between notes.
    assert (notes[13].lyric, notes[28].lyric) == ("are!", "sky.")
    assert notes[13].t_off < notes[14].t_on and notes[28].t_off < notes[29].t_on
    assert notes[0].t_off == notes[1].t_on


# ---- scores written by music21 ------------------------------------------------------------------

def _music21_score(with_lyrics: bool = True) -> Any:
    """Bar 1: hel-lo, rest, world (tied into bar 2); bar 2: half-note = 30 (60 bpm), sing, on."""
    from music21 import chord, meter, note, stream, tempo, tie

    def sung(pitch: str, beats: float, text: str | None = None,
             syllabic: str | None = None) -> Any:
        n = note.Note(pitch, quarterLength=beats)
        if text and with_lyrics:
            n.addLyric(text)
            n.lyrics[0].syllabic = syllabic or "single"
        return n

    m1 = stream.Measure(number=1)
    m1.append(meter.TimeSignature("4/4"))
    m1.insert(0, tempo.MetronomeMark(number=120))
    world = sung("E4", 1, "world")
    world.tie = tie.Tie("start")
    m1.append([sung("C4", 1, "hel", "begin"), sung("D4", 1, "lo", "end"),
               note.Rest(quarterLength=1), world])
    m2 = stream.Measure(number=2)
    held = note.Note("E4", quarterLength=1)
    held.tie = tie.Tie("stop")
    top = chord.Chord(["F4", "A4"], quarterLength=1)  # the top note (A4) is sung
    if with_lyrics:
        top.addLyric("sing")
    m2.append([held, top, sung("G4", 2, "on")])
    m2.insert(1, tempo.MetronomeMark(number=30, referent=note.Note(type="half")))
    part = stream.Part([m1, m2])
    part.partName = "Voice"
    score = stream.Score([part])
    return score


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test score as .musicxml and .mxl, and without lyrics."""
    folder = tmp_path_factory.mktemp("m21")
    # Different stems: writing x.mxl deletes a sibling x.musicxml (music21 zips its temp file).
    paths = {"musicxml": folder / "plain.musicxml", "mxl": folder / "packed.mxl",
             "nolyrics": folder / "nolyrics.musicxml"}
    _music21_score().write("musicxml", fp=paths["musicxml"])
    _music21_score().write("mxl", fp=paths["mxl"])
    _music21_score(with_lyrics=False).write("musicxml", fp=paths["nolyrics"])
    return paths


@pytest.mark.parametrize("kind", ["musicxml", "mxl"])
def test_music21_score_reads_back_on_the_tempo_map(written: dict[str, Path], kind: str) -> None:
    score = read_musicxml(written[kind])
    assert [p.name for p in score.parts] == ["Voice"]
    assert score.tempo_map.changes == (TempoChange(0.0, 120.0), TempoChange(5.0, 60.0))
    q60 = 2 * QUARTER_AT_120  # a quarter after the change to 60 bpm
    got = [(n.t_on, n.t_off, n.pitch_midi, n.lyric) for n in score.notes]
    assert got == [
        (0, QUARTER_AT_120, 60.0, "hel"),
        (QUARTER_AT_120, 2 * QUARTER_AT_120, 62.0, "lo"),
        # beat 2-3 is a rest: a gap; the tied E4 is one note of two beats
        (3 * QUARTER_AT_120, 5 * QUARTER_AT_120, 64.0, "world"),
        (5 * QUARTER_AT_120, 5 * QUARTER_AT_120 + q60, 69.0, "sing"),
        (5 * QUARTER_AT_120 + q60, 5 * QUARTER_AT_120 + 3 * q60, 67.0, "on"),
    ]
    assert score.language == "en"
    assert all(n.phonemes for n in score.notes)
    assert not score.notices


def test_part_selection(written: dict[str, Path]) -> None:
    assert read_musicxml(written["musicxml"], part="Voice").parts[0].name == "Voice"
    assert read_musicxml(written["musicxml"], part=0).parts[0].name == "Voice"
    with pytest.raises(ScoreError, match=r"plain\.musicxml: no part 'Bass'; the parts are 'Voice'"):
        read_musicxml(written["musicxml"], part="Bass")


def test_score_without_lyrics_sings_the_default_syllable(written: dict[str, Path]) -> None:
    score = read_musicxml(written["nolyrics"], language="en")
    la = phonemize_word(["la"], "en")[0]
    assert len(score.notes) == 5
    assert all(n.phonemes == la for n in score.notes)
    assert any("no lyrics" in notice for notice in score.notices)


def test_untitled_score_without_tempo(tmp_path: Path) -> None:
    path = tmp_path / "bare_tune.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1">'
        '<part-list><score-part id="P1"><part-name>Alto</part-name></score-part></part-list>'
        '<part id="P1"><measure number="1"><attributes><divisions>1</divisions></attributes>'
        '<note><pitch><step>A</step><octave>4</octave></pitch><duration>2</duration>'
        '<lyric><text>la</text></lyric></note></measure></part></score-partwise>')
    score = read_musicxml(path)
    assert score.title == "bare_tune"
    assert score.tempo_map.changes == (TempoChange(0.0, 120.0),)
    assert [(n.t_on, n.t_off, n.pitch_midi) for n in score.notes] == [(0, 48_000, 69.0)]


# ---- bad input ----------------------------------------------------------------------------------

def _raises(path: Path, *fragments: str, **kwargs: Any) -> str:
    with pytest.raises(ScoreError) as info:
        read_musicxml(path, **kwargs)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_file(tmp_path: Path) -> None:
    _raises(tmp_path / "nowhere.musicxml", "file not found")


def test_truncated_xml(tmp_path: Path) -> None:
    text = song_path("twinkle").read_text(encoding="utf-8")
    bad = tmp_path / "bad.musicxml"
    bad.write_text(text[: len(text) // 2], encoding="utf-8")
    _raises(bad, "not a MusicXML file", "at line")


def test_mismatched_tag_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.musicxml"
    bad.write_text("<score-partwise>\n<part>\n<measure>\n</part>\n</score-partwise>\n")
    _raises(bad, "not a MusicXML file: mismatched tag at line 4")


def test_not_xml_at_all(tmp_path: Path) -> None:
    bad = tmp_path / "notes.xml"
    bad.write_text("C D E F G A B c\n")
    _raises(bad, "not a MusicXML file")
    html = tmp_path / "page.xml"
    html.write_text("<html><body>hi</body></html>")
    _raises(html, "not a MusicXML file", "<html>")


def test_invalid_mxl(tmp_path: Path) -> None:
    readme = tmp_path / "readme.mxl"
    with zipfile.ZipFile(readme, "w") as archive:
        archive.writestr("readme.txt", "no score in here")
    _raises(readme, "not a valid .mxl file", "no MusicXML score")
    text = tmp_path / "text.mxl"
    text.write_text("hello")
    _raises(text, "not a zip archive")
    truncated = tmp_path / "truncated.mxl"
    xml = song_path("twinkle").read_text(encoding="utf-8")
    with zipfile.ZipFile(truncated, "w") as archive:
        archive.writestr("score.musicxml", xml[: len(xml) // 3])
    _raises(truncated, "not a valid .mxl file", "at line")


def test_score_without_notes(tmp_path: Path) -> None:
    from music21 import note, stream

    part = stream.Part([stream.Measure([note.Rest(quarterLength=4)], number=1)])
    path = tmp_path / "rests.musicxml"
    stream.Score([part]).write("musicxml", fp=path)
    _raises(path, "no notes")


def test_unknown_syllable_names_the_measure(tmp_path: Path) -> None:
    text = song_path("jasmine").read_text(encoding="utf-8")
    # The third 美 sits in measure 10; replace it by a syllable no language knows.
    head, _, tail = text.rpartition("<text>美</text>")
    bad = tmp_path / "typo.musicxml"
    bad.write_text(head + "<text>qzxv</text>" + tail, encoding="utf-8")
    _raises(bad, "measure 10", "qzxv", language="zh")
