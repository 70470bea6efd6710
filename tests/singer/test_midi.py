"""The MIDI reader on files built here with mido: lyrics, tempo changes, tracks, bad files."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from singer.score import ScoreError, TimeSignature
from singer.scores.midi import read_midi
from singer.tempo import TempoChange
from tests.singer.excerpts import sung_cents

SR = SAMPLE_RATE_HZ
TPB = 480

# "Twinkle twinkle little star, how I wonder what you are": (lyric event, midi, beats)
ENGLISH = [("Twin-", 60, 1), ("kle", 60, 1), ("twin-", 67, 1), ("kle", 67, 1), ("lit-", 69, 1),
           ("tle", 69, 1), ("star", 67, 2), ("how", 65, 1), ("I", 65, 1), ("won-", 64, 1),
           ("der", 64, 1)]
MANDARIN = [("一", 72, 1), ("闪", 72, 1), ("一", 79, 1), ("闪", 79, 1), ("亮", 81, 1),
            ("晶", 81, 1), ("晶", 79, 2)]


def _vocal_track(name: str, melody: list[tuple[str, int, float]], channel: int = 0,
                 rest_beats: float = 0.0, lyric_offset: int = 0) -> mido.MidiTrack:
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
    pending = 0
    for i, (text, pitch, beats) in enumerate(melody):
        dur = int(beats * TPB)
        gap = int(rest_beats * TPB) if i else 0
        early = min(lyric_offset, pending + gap)  # the lyric event a few ticks early
        track.append(mido.MetaMessage("lyrics", text=text, time=pending + gap - early))
        track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=100,
                                  time=early))
        track.append(mido.Message("note_off", channel=channel, note=pitch, velocity=0, time=dur))
        pending = 0
    return track


def _english_file(path: Path) -> Path:
    """Type 1: conductor (100 bpm, 4/4 then 80 bpm and 3/4 at beat 8), vocal, piano, drums."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB, charset="utf-8")
    mid.tracks.append(mido.MidiTrack([
        mido.MetaMessage("track_name", name="Little Star"),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)),
        mido.MetaMessage("time_signature", numerator=4, denominator=4),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(80), time=8 * TPB),
        mido.MetaMessage("time_signature", numerator=3, denominator=4),
    ]))
    piano = mido.MidiTrack([mido.MetaMessage("track_name", name="Piano")])
    for pitch in (48, 52, 55):
        piano.append(mido.Message("note_on", channel=1, note=pitch, velocity=60))
    piano.append(mido.Message("note_off", channel=1, note=48, time=4 * TPB))
    piano.append(mido.Message("note_off", channel=1, note=52))
    piano.append(mido.Message("note_off", channel=1, note=55))
    mid.tracks.append(piano)
    mid.tracks.append(_vocal_track("Vocal", ENGLISH))
    drums = mido.MidiTrack([mido.Message("note_on", channel=9, note=36, velocity=90),
                            mido.Message("note_off", channel=9, note=36, time=TPB)])
    mid.tracks.append(drums)
    mid.save(path)
    return path


def _beats_to_sample(beat: float) -> int:
    """The test's own tempo arithmetic: 100 bpm to beat 8, 80 bpm after."""
    seconds = min(beat, 8) * 60 / 100 + max(0.0, beat - 8) * 60 / 80
    return round(seconds * SR)


def test_english_lyrics_tempo_changes_and_track_choice(tmp_path: Path) -> None:
    score = read_midi(_english_file(tmp_path / "star.mid"))
    assert score.title == "Little Star"
    assert [p.name for p in score.parts] == ["Vocal"]  # the track with lyrics, not the piano
    assert score.language == "en"
    assert score.tempo_map.changes == (TempoChange(0.0, 100.0), TempoChange(8.0, 80.0))
    assert score.time_signatures == (TimeSignature(0.0, 4, 4), TimeSignature(8.0, 3, 4))
    notes = score.notes
    assert [n.lyric for n in notes] == [t.rstrip("-") for t, _, _ in ENGLISH]
    assert [n.pitch_midi for n in notes] == [p for _, p, _ in ENGLISH]
    beat = 0.0
    for note, (_, _, beats) in zip(notes, ENGLISH, strict=True):
        assert (note.t_on, note.t_off) == (_beats_to_sample(beat), _beats_to_sample(beat + beats))
        beat += beats
    # "Twin-" + "kle" is one word: the syllables split "twinkle"'s phonemes.
    assert notes[0].phonemes[:2] == ("t", "w") and notes[1].phonemes[-1] == "l"
    assert notes[0].velocity == pytest.approx(100 / 127)


def test_chosen_track_and_channel(tmp_path: Path) -> None:
    path = _english_file(tmp_path / "star.mid")
    piano = read_midi(path, track="Piano", language="en")
    assert [n.pitch_midi for n in piano.notes] == [55.0]  # a chord sung as its top note
    assert any("no lyrics" in n for n in piano.notices)
    assert read_midi(path, track=2).notes[0].lyric == "Twin"
    with pytest.raises(ScoreError, match=r"star\.mid: no track 'Bass'; tracks with notes: "
                                         r"track 1 \(Piano\), track 2 \(Vocal\), track 3"):
        read_midi(path, track="Bass")
    with pytest.raises(ScoreError, match=r"track 2 \(Vocal\) channel 5 has no notes"):
        read_midi(path, track=2, channel=5)


def test_mandarin_type0_and_pitch(tmp_path: Path) -> None:
    mid = mido.MidiFile(type=0, ticks_per_beat=TPB, charset="utf-8")
    track = _vocal_track("小星星", MANDARIN, channel=3, rest_beats=0.5, lyric_offset=5)
    track.insert(1, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90)))
    mid.tracks.append(track)
    mid.save(tmp_path / "xiaoxingxing.mid")
    score = read_midi(tmp_path / "xiaoxingxing.mid", channel=4)
    assert score.language == "zh" and score.title == "小星星"
    assert "".join(n.lyric for n in score.notes) == "一闪一闪亮晶晶"
    spb = 60 / 90 * SR
    assert score.notes[1].t_on == round(1.5 * spb)  # lyrics 5 ticks early still belong
    assert score.notes[1].phonemes == ("sh", "a", "n")
    errors = sung_cents(score, "soprano")
    assert len(errors) == len(MANDARIN)
    assert np.median(errors) <= 10.0, errors


def test_english_pitch(tmp_path: Path) -> None:
    score = read_midi(_english_file(tmp_path / "star.mid"))
    errors = sung_cents(score, "tenor", n_notes=10)
    assert len(errors) == 10 and np.median(errors) <= 10.0, errors


def test_karaoke_lyrics_in_their_own_track(tmp_path: Path) -> None:
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
    words = mido.MidiTrack([mido.MetaMessage("text", text="@TLittle Star")])
    melody = mido.MidiTrack()
    for i, (text, pitch, _) in enumerate(ENGLISH[:4]):
        words.append(mido.MetaMessage("lyrics", text=("/" if i == 2 else "") + text,
                                      time=TPB if i else 0))
        melody.append(mido.Message("note_on", note=pitch, velocity=80))
        melody.append(mido.Message("note_off", note=pitch, time=TPB))
    mid.tracks += [words, melody]
    mid.save(tmp_path / "kar.mid")
    score = read_midi(tmp_path / "kar.mid")
    assert [n.lyric for n in score.notes] == ["Twin", "kle", "twin", "kle"]


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    good = _english_file(tmp_path / "star.mid").read_bytes()
    cut = tmp_path / "cut.mid"
    cut.write_bytes(good[:len(good) // 2])
    with pytest.raises(ScoreError, match=r"cut\.mid: not a readable MIDI file: it is truncated"):
        read_midi(cut)
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"RIFF....not midi at all")
    with pytest.raises(ScoreError, match=r"junk\.mid: not a readable MIDI file"):
        read_midi(junk)
    with pytest.raises(ScoreError, match=r"missing\.mid: file not found"):
        read_midi(tmp_path / "missing.mid")


def test_unsingable_lyric_names_track_and_note(tmp_path: Path) -> None:
    mid = mido.MidiFile(type=0, ticks_per_beat=TPB)
    mid.tracks.append(_vocal_track("Voice", [("la", 60, 1), ("zzqxv", 62, 1)]))
    mid.save(tmp_path / "bad_word.mid")
    with pytest.raises(ScoreError, match=r"bad_word\.mid: track 0 \(Voice\) note 2 "
                                         r"\(channel 1, tick 480\): unknown word 'zzqxv'"):
        read_midi(tmp_path / "bad_word.mid", language="en")


# 长亭外，古道边 (送别): the GBK bytes of 亭 (CD A4) are also valid UTF-8 (U+0364).
SONGBIE = [("长", 67, 1), ("亭", 64, 0.5), ("外", 67, 0.5), ("古", 72, 2), ("道", 69, 1),
           ("边", 72, 1)]


def _charset_file(path: Path, melody: list[tuple[str, int, float]], charset: str,
                  name: str = "") -> Path:
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB, charset=charset)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo",
                                                       tempo=mido.bpm2tempo(100))]))
    mid.tracks.append(_vocal_track(name, melody))
    mid.save(path)
    return path


@pytest.mark.parametrize(("charset", "melody", "label"), [
    ("gbk", SONGBIE, "GB18030"),
    ("gbk", [("亭", 64, 1), ("亭", 67, 1)], "GB18030"),  # no other character to tell by
    ("utf-8", SONGBIE, None),
    ("cp932", [("春", 64, 1), ("花", 67, 1), ("秋", 69, 1), ("月", 67, 1)], "Shift-JIS"),
    ("big5", [("我", 64, 1), ("愛", 67, 1), ("你", 69, 1), ("們", 67, 1)], "Big5"),
])
def test_lyrics_charset_is_decided_once_per_file(
        tmp_path: Path, charset: str, melody: list[tuple[str, int, float]],
        label: str | None) -> None:
    from singer.lyrics import mandarin_phonemes

    path = _charset_file(tmp_path / f"{charset}.mid", melody, charset, name="")
    score = read_midi(path)
    assert [n.lyric for n in score.notes] == [m[0] for m in melody]
    assert [n.phonemes for n in score.notes] == [mandarin_phonemes(m[0]) for m in melody]
    said = [n for n in score.notices if "text read as" in n]
    if label is None:
        assert not said
    else:
        assert len(said) == 1 and label in said[0] and "--encoding" in said[0], said


def test_gbk_karaoke_file_sings_the_right_syllables(tmp_path: Path) -> None:
    path = _charset_file(tmp_path / "songbie.mid", SONGBIE, "gbk", name="送别")
    score = read_midi(path)
    assert score.notes[1].lyric == "亭" and score.notes[1].phonemes == ("t", "i", "ng")
    errors = sung_cents(score, "soprano", n_notes=3)
    assert len(errors) == 3 and np.median(errors) <= 10.0, errors


def test_encoding_option_overrides_the_guess(tmp_path: Path) -> None:
    path = _charset_file(tmp_path / "ting.mid", [("亭", 64, 1)], "gbk")
    score = read_midi(path, encoding="gbk")
    assert score.notes[0].lyric == "亭" and not score.notices
    with pytest.raises(ScoreError, match=r"ting\.mid: text events: not UTF-8 text: bytes"):
        read_midi(_charset_file(tmp_path / "ting.mid", SONGBIE, "gbk"), encoding="utf-8")
    with pytest.raises(ScoreError, match=r"unknown encoding 'klingon'"):
        read_midi(path, encoding="klingon")
