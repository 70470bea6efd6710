"""The UST reader on UTAU files written here after the format (Shift-JIS and UTF-8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from singer.score import ScoreError, Vibrato
from singer.scores.ust import read_ust
from singer.tempo import TempoChange
from tests.singer.excerpts import sung_cents

SR = SAMPLE_RATE_HZ

# (Length ticks, Lyric, NoteNum, extra keys)
ENGLISH = [(480, "shine", 57, ""), (480, "so", 57, ""), (480, "bright", 64, ""),
           (480, "in", 64, ""), (240, "R", 60, ""), (240, "the", 66, "Intensity=50\n"),
           (480, "night", 66, "Tempo=90.00\n"), (960, "star", 64, "VBR=65,180,35,20,20,0,0,0\n")]
MANDARIN = [(480, "一", 72, ""), (480, "闪", 72, ""), (480, "一", 79, ""), (480, "闪", 79, ""),
            (480, "亮", 81, ""), (480, "晶", 81, ""), (960, "晶", 79, "")]


def _ust(blocks: list[tuple[int, str, int, str]], project: str, tempo: str = "120.00") -> str:
    text = f"""[#VERSION]
UST Version1.2
[#SETTING]
Tempo={tempo}
Tracks=1
ProjectName={project}
VoiceDir=%VOICE%uta
OutFile=
CacheDir=song.cache
Tool1=wavtool.exe
Tool2=resampler.exe
Mode2=True
"""
    for i, (length, lyric, num, extra) in enumerate(blocks):
        text += (f"[#{i:04d}]\nLength={length}\nLyric={lyric}\nNoteNum={num}\nPreUtterance=\n"
                 f"VoiceOverlap=\nIntensity=100\nModulation=0\nPBS=-40;0\nPBW=80\n{extra}")
    return text + "[#TRACKEND]\n"


def test_shift_jis_file_with_rest_tempo_change_and_vibrato(tmp_path: Path) -> None:
    path = tmp_path / "kirakira.ust"
    path.write_bytes(_ust(ENGLISH, "きらきら星").encode("cp932"))
    score = read_ust(path)
    assert score.title == "きらきら星" and score.language == "en"
    assert score.tempo_map.changes == (TempoChange(0.0, 120.0), TempoChange(5.0, 90.0))
    notes = score.notes
    sung = [b for b in ENGLISH if b[1] != "R"]
    assert [n.lyric for n in notes] == [b[1] for b in sung]
    assert [n.pitch_midi for n in notes] == [b[2] for b in sung]
    # Ticks at 120 bpm until the "night" block (tick 2400 = beat 5), 90 bpm from there.
    starts = [0, 480, 960, 1440, 2160, 2400, 2880]
    ends = [480, 960, 1440, 1920, 2400, 2880, 3840]
    def sample(tick: int) -> int:
        beats = tick / 480
        return round((min(beats, 5) * 0.5 + max(0.0, beats - 5) * 60 / 90) * SR)
    assert [(n.t_on, n.t_off) for n in notes] == [(sample(a), sample(b))
                                                  for a, b in zip(starts, ends, strict=True)]
    assert notes[4].velocity == pytest.approx(0.4)  # Intensity=50
    assert dict(score.parts[0].vibrato)[notes[-1].t_on] == Vibrato(35.0, 1000 / 180)
    # PBS/PBW only shape the portamento; the one notice names the charset guessed
    assert score.notices == (f"{path}: text read as Shift-JIS (cp932) (guessed from the file; "
                             "--encoding NAME overrides)",)


def test_english_pitch(tmp_path: Path) -> None:
    path = tmp_path / "kirakira.ust"
    path.write_bytes(_ust(ENGLISH, "kirakira").encode("cp932"))
    errors = sung_cents(read_ust(path), "tenor")
    assert len(errors) == 7 and np.median(errors) <= 10.0, errors


def test_utf8_mandarin_and_pitch(tmp_path: Path) -> None:
    path = tmp_path / "xiaoxingxing.ust"
    path.write_text(_ust(MANDARIN, "小星星", tempo="100,00"), encoding="utf-8")
    score = read_ust(path)
    assert score.title == "小星星" and score.language == "zh"
    assert "".join(n.lyric for n in score.notes) == "一闪一闪亮晶晶"
    assert score.tempo_map.changes == (TempoChange(0.0, 100.0),)  # a comma decimal
    errors = sung_cents(score, "soprano")
    assert len(errors) == 7 and np.median(errors) <= 10.0, errors


def test_pitch_bends_are_reported(tmp_path: Path) -> None:
    blocks = [(480, "la", 60, "PBY=-10,5,0\n"), (480, "la", 62, "")]
    path = tmp_path / "bend.ust"
    path.write_text(_ust(blocks, "bend"), encoding="utf-8")
    assert any("1 notes have pitch bends" in n for n in read_ust(path).notices)


def test_bad_note_num_names_line_and_block(tmp_path: Path) -> None:
    blocks = [(480, "la", 60, ""), (480, "la", 60, ""), (480, "la", 60, "")]
    text = _ust(blocks, "bad").replace("NoteNum=60\nPreUtterance=\nVoiceOverlap=\nIntensity=100\n"
                                       "Modulation=0\nPBS=-40;0\nPBW=80\n[#0002]",
                                       "NoteNum=C4\nPreUtterance=\nVoiceOverlap=\nIntensity=100\n"
                                       "Modulation=0\nPBS=-40;0\nPBW=80\n[#0002]")
    path = tmp_path / "bad.ust"
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("NoteNum=C4") + 1
    with pytest.raises(ScoreError, match=rf"bad\.ust: line {line}: note \[#0001\]: NoteNum 'C4' "
                                         "is not a whole number"):
        read_ust(path)
    path.write_text(_ust([(480, "la", 130, "")], "bad"), encoding="utf-8")
    with pytest.raises(ScoreError, match=r"note \[#0000\]: NoteNum 130 is not a MIDI note"):
        read_ust(path)
    path.write_text("Tempo=120\n[#0000]\nLength=480\n", encoding="utf-8")
    with pytest.raises(ScoreError, match=r"line 1: text before the first \[#...\] section"):
        read_ust(path)


SONGBIE = [(480, "长", 67, ""), (240, "亭", 64, ""), (240, "外", 67, ""), (960, "古", 72, ""),
           (480, "道", 69, ""), (480, "边", 72, "")]


@pytest.mark.parametrize(("charset", "project", "blocks", "label"), [
    ("gbk", "送别", SONGBIE, "GB18030"),
    ("gbk", "亭", [(480, "亭", 64, ""), (480, "亭", 67, "")], "GB18030"),
    ("cp932", "きらきら星", [(480, "春", 64, ""), (480, "花", 67, ""), (480, "月", 69, "")],
     "Shift-JIS"),
    ("big5", "愛你", [(480, "我", 64, ""), (480, "愛", 67, ""), (480, "你", 69, "")], "Big5"),
    ("utf-8", "送别", SONGBIE, None),
])
def test_charset_is_guessed_from_the_whole_file(
        tmp_path: Path, charset: str, project: str, blocks: list[tuple[int, str, int, str]],
        label: str | None) -> None:
    from singer.lyrics import mandarin_phonemes

    path = tmp_path / "song.ust"
    path.write_bytes(_ust(blocks, project).encode(charset))
    score = read_ust(path)
    assert score.title == project
    assert [n.lyric for n in score.notes] == [b[1] for b in blocks]
    assert [n.phonemes for n in score.notes] == [mandarin_phonemes(b[1]) for b in blocks]
    said = [n for n in score.notices if "text read as" in n]
    assert (not said) if label is None else (len(said) == 1 and label in said[0]), said


def test_charset_key_and_encoding_option(tmp_path: Path) -> None:
    path = tmp_path / "song.ust"
    path.write_bytes(_ust(SONGBIE, "送别").replace("[#SETTING]", "Charset=GBK\n[#SETTING]")
                     .encode("gbk"))
    score = read_ust(path)
    assert score.title == "送别" and not score.notices
    path.write_bytes(_ust(SONGBIE, "送别").encode("gbk"))
    assert read_ust(path, encoding="gb2312").title == "送别"
    with pytest.raises(ScoreError, match=r"song\.ust: not Shift-JIS text: bytes"):
        read_ust(path, encoding="shift_jis")
    with pytest.raises(ScoreError, match=r"song\.ust: unknown encoding 'nope'"):
        read_ust(path, encoding="nope")
