"""One charset per score file: named, declared, or guessed from all its text; every reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from singer.lyrics import mandarin_phonemes
from singer.score import ScoreError
from singer.scores.load import detect_format, load_score
from singer.songs import song_path
from singer.text_encoding import EncodingError, check_encoding, decode_file, decode_pieces
from stage.cli import main

SONGBIE = ["长", "亭", "外", "古", "道", "边"]


@pytest.mark.parametrize(("words", "charset", "guess"), [
    (SONGBIE, "gbk", "gb18030"),
    (["亭"], "gbk", "gb18030"),  # CD A4 is valid UTF-8 too (U+0364, a combining mark)
    (["亭", "亭", "亭"], "gbk", "gb18030"),
    (["さ", "く", "ら", "咲", "く"], "cp932", "cp932"),
    (["春", "花", "秋", "月"], "cp932", "cp932"),
    (["我", "愛", "你", "的", "心"], "big5", "cp950"),
    (["愛", "情"], "big5", "cp950"),
    (["月", "亮", "代", "表", "我", "的", "心"], "gbk", "gb18030"),
    (["café", "crème", "été"], "cp1252", "cp1252"),
    (["café", "naïve", "亭", "Ωμέγα"], "utf-8", "utf-8"),
    (["la", "li"], "ascii", "utf-8"),
])
def test_guess_reads_every_piece_with_one_charset(words: list[str], charset: str,
                                                  guess: str) -> None:
    decoded = decode_pieces([w.encode(charset) for w in words])
    assert decoded.encoding == guess
    assert decoded.texts == tuple(words)


def test_given_encoding_and_clear_errors() -> None:
    assert decode_pieces(["亭".encode("gbk")], "GBK").texts == ("亭",)
    assert check_encoding("Shift_JIS") == "shift_jis" and check_encoding("latin1") == "latin-1"
    with pytest.raises(EncodingError, match=r"^unknown encoding 'klingon' \(e\.g\. utf-8"):
        check_encoding("klingon")
    with pytest.raises(EncodingError, match=r"'base64' is not a text encoding"):
        check_encoding("base64")
    with pytest.raises(EncodingError, match=r"^not UTF-8 text: bytes B3 A4 at offset 0"):
        decode_pieces(["长".encode("gbk")], "utf-8")
    assert decode_file("\ufeff亭".encode("utf-8")).how == "declared"
    assert decode_file("亭".encode("utf-16")).texts == ("亭",)


def _musicxml(charset: str, declared: str | None) -> bytes:
    text = song_path("jasmine").read_text(encoding="utf-8")
    body = text.split("?>", 1)[1]
    head = f'<?xml version="1.0" encoding="{declared}"?>' if declared else ""
    return (head + body).encode(charset)


@pytest.mark.parametrize(("charset", "declared", "notice"), [
    ("gbk", None, "GB18030"),        # no declaration: expat alone would read it as UTF-8
    ("gbk", "GBK", None),            # declared multi-byte charsets: expat alone refuses them
    ("gb18030", "GB18030", None),
    ("utf-16", "UTF-16", None),
])
def test_musicxml_in_legacy_charsets(tmp_path: Path, charset: str, declared: str | None,
                                     notice: str | None) -> None:
    reference = load_score(song_path("jasmine"))
    path = tmp_path / "jasmine.musicxml"
    path.write_bytes(_musicxml(charset, declared))
    assert detect_format(path) == "musicxml"
    score = load_score(path)
    assert [n.lyric for n in score.notes] == [n.lyric for n in reference.notes]
    assert [n.phonemes for n in score.notes] == [n.phonemes for n in reference.notes]
    said = [n for n in score.notices if "text read as" in n]
    assert (not said) if notice is None else (len(said) == 1 and notice in said[0]), said


def test_musicxml_declared_charset_is_overridden_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "jasmine.musicxml"
    path.write_bytes(_musicxml("gbk", "UTF-8"))  # a wrong declaration, as old tools write
    with pytest.raises(ScoreError, match=r"jasmine\.musicxml: not UTF-8 text: bytes"):
        load_score(path)
    assert load_score(path, encoding="gbk").notes[0].lyric == "好"
    path.write_bytes(_musicxml("utf-8", "x-klingon"))
    with pytest.raises(ScoreError, match=r"the file declares unknown encoding 'x-klingon'"):
        load_score(path)


USTX = """ustx_version: '0.6'
name: 送别
resolution: 480
tempos: [{position: 0, bpm: 100}]
tracks: [{track_name: Lead}]
voice_parts:
- track_no: 0
  position: 0
  notes:
"""


@pytest.mark.parametrize("charset", ["utf-8", "gbk"])
def test_ustx_charset(tmp_path: Path, charset: str) -> None:
    text = USTX + "".join(f"  - {{position: {i * 480}, duration: 480, tone: 64, lyric: {w}}}\n"
                          for i, w in enumerate(SONGBIE))
    path = tmp_path / "songbie.ustx"
    path.write_bytes(text.encode(charset))
    assert detect_format(path) == "ustx"
    score = load_score(path)
    assert score.title == "送别"
    assert [n.phonemes for n in score.notes] == [mandarin_phonemes(w) for w in SONGBIE]
    assert load_score(path, encoding=charset).title == "送别"


def _gbk_midi(path: Path) -> Path:
    import mido

    mid = mido.MidiFile(type=0, charset="gbk")
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120))])
    for word, pitch in (("亭", 64), ("外", 67)):
        track += [mido.MetaMessage("lyrics", text=word),
                  mido.Message("note_on", note=pitch, velocity=90),
                  mido.Message("note_off", note=pitch, time=mid.ticks_per_beat)]
    mid.tracks.append(track)
    mid.save(path)
    return path


def test_render_encoding_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import soundfile as sf

    song = _gbk_midi(tmp_path / "ting.mid")
    out = tmp_path / "ting.wav"
    assert main(["render", str(song), "-o", str(out)]) == 0
    guessed = capsys.readouterr().err
    assert "notice:" in guessed and "text read as GB18030" in guessed
    assert main(["render", str(song), "-o", str(out), "--encoding", "gbk"]) == 0
    assert "text read as" not in capsys.readouterr().err
    audio, _ = sf.read(out, dtype="float32")
    assert float(abs(audio).max()) > 0.05
    assert main(["render", str(song), "-o", str(out), "--encoding", "klingon"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("livesinger: error: --encoding: unknown encoding 'klingon'"), err
    assert err.strip().count("\n") == 0
    assert main(["render", str(song), "-o", str(out), "--encoding", "utf-8"]) == 2
    err = capsys.readouterr().err
    assert "ting.mid: text events: not UTF-8 text" in err and err.strip().count("\n") == 0
