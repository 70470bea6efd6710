"""``load_score``: the reader picked by content, song names, and a corpus score it never saw."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from singer.score import ScoreError
from singer.scores.load import detect_format, load_score
from singer.songs import song_path
from tests.singer.excerpts import sung_cents

SR = SAMPLE_RATE_HZ

UST = "[#SETTING]\nTempo=100\n[#0000]\nLength=960\nLyric=la\nNoteNum=64\n[#TRACKEND]\n"
USTX = """ustx_version: '0.6'
resolution: 480
tempos: [{position: 0, bpm: 100}]
tracks: [{track_name: Lead}]
voice_parts:
- {track_no: 0, position: 0, notes: [{position: 0, duration: 960, tone: 64, lyric: la}]}
"""


def _midi(path: Path) -> Path:
    mid = mido.MidiFile(type=0)
    mid.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)),
        mido.MetaMessage("lyrics", text="la"), mido.Message("note_on", note=64, velocity=90),
        mido.Message("note_off", note=64, time=2 * mid.ticks_per_beat)]))
    mid.save(path)
    return path


@pytest.fixture
def misnamed(tmp_path: Path) -> dict[str, Path]:
    """One 2-beat 'la' on E4 at 100 bpm in each format, saved under a misleading name."""
    paths = {"midi": _midi(tmp_path / "a.txt"), "ust": tmp_path / "b.dat",
             "ustx": tmp_path / "c.yaml",
             "musicxml": tmp_path / "d.mid"}
    paths["ust"].write_bytes(UST.encode("cp932"))
    paths["ustx"].write_text(USTX, encoding="utf-8")
    paths["musicxml"].write_bytes(song_path("twinkle").read_bytes())
    return paths


@pytest.mark.parametrize("fmt", ["midi", "ust", "ustx"])
def test_reader_is_picked_by_content(misnamed: dict[str, Path], fmt: str) -> None:
    assert detect_format(misnamed[fmt]) == fmt
    score = load_score(misnamed[fmt])
    assert [(n.t_on, n.t_off, n.pitch_midi, n.lyric) for n in score.notes] == [
        (0, round(1.2 * SR), 64.0, "la")]


def test_musicxml_by_content_and_by_name(misnamed: dict[str, Path]) -> None:
    assert detect_format(misnamed["musicxml"]) == "musicxml"
    assert load_score(misnamed["musicxml"]).title == load_score("twinkle").title


def test_extension_decides_when_content_does_not(tmp_path: Path) -> None:
    bad = tmp_path / "song.mid"
    bad.write_bytes(b"\x00\x01garbage")
    assert detect_format(bad) == "midi"
    with pytest.raises(ScoreError, match=r"song\.mid: not a readable MIDI file"):
        load_score(bad)
    unknown = tmp_path / "notes.bin"
    unknown.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ScoreError, match=r"notes\.bin: cannot tell what kind of score this is"):
        load_score(unknown)
    plain_yaml = tmp_path / "cues.yaml"
    plain_yaml.write_text("cues: []\n", encoding="utf-8")
    with pytest.raises(ScoreError, match=r"cues\.yaml: cannot tell"):
        load_score(plain_yaml)


def test_song_names_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "verse.ust").write_text(UST, encoding="utf-8")
    assert load_score("verse", songs=tmp_path).notes[0].pitch_midi == 64
    monkeypatch.setenv("LIVESINGER_SONGS", str(tmp_path))
    assert load_score("verse").source.endswith("verse.ust")
    assert load_score("jasmine").language == "zh"  # demo songs stay reachable
    with pytest.raises(ScoreError, match=r"chorus: no such score file or song \(songs: verse, "
                                         r"jasmine, twinkle\)"):
        load_score("chorus")
    with pytest.raises(ScoreError, match=r"verse\.ust: option channel does not apply to ust"):
        load_score("verse", channel=2)


def test_corpus_score_with_lyrics(tmp_path: Path) -> None:
    """Stephen Foster's "Jeanie with the Light Brown Hair" from music21's corpus, bars 1-8."""
    from music21 import corpus

    source = corpus.parse("leadSheet/fosterBrownHair.mxl")
    excerpt = source.measures(1, 8)
    excerpt.write("musicxml", fp=tmp_path / "jeanie.musicxml")
    score = load_score(tmp_path / "jeanie.musicxml")
    assert score.title == "Jeanie With The Light Brown Hair" and score.language == "en"
    want = []
    for n in excerpt.parts[0].stripTies().flatten().notes:
        if n.isNote:
            want.append((float(n.offset), float(n.offset + n.quarterLength), n.pitch.midi,
                         n.lyrics[0].text if n.lyrics else "-"))  # verse 1
    got = [(score.tempo_map.sample_to_beat(n.t_on), score.tempo_map.sample_to_beat(n.t_off),
            n.pitch_midi, n.lyric) for n in score.notes]
    assert got == want
    assert [n.lyric for n in score.notes[:4]] == ["I", "dream", "of", "Jean"]
    errors = sung_cents(score, "soprano")
    assert len(errors) == 8 and np.median(errors) <= 10.0, errors
