"""The song library: names, metadata from each score, bad files listed, and the CLI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from singer.library import SongLibrary, default_folder
from singer.score import ScoreError
from singer.songs import SONGS_DIR
from stage.cli import main

UST = ("[#SETTING]\nTempo=100\nProjectName=Verse One\n[#0000]\nLength=1920\nLyric=la\n"
       "NoteNum=64\n[#0001]\nLength=960\nLyric=la\nNoteNum=62\nTempo=80\n[#TRACKEND]\n")
USTX = """ustx_version: '0.6'
name: Chorus
tempos: [{position: 0, bpm: 140}]
tracks: [{track_name: Alto}, {track_name: Bass}]
voice_parts:
- {track_no: 0, position: 0, notes: [{position: 0, duration: 480, tone: 64, lyric: 你}]}
- {track_no: 1, position: 0, notes: [{position: 0, duration: 960, tone: 48, lyric: 好}]}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "verse.ust").write_text(UST, encoding="utf-8")
    (tmp_path / "chorus.ustx").write_text(USTX, encoding="utf-8")
    (tmp_path / "chorus.ust").write_text(UST, encoding="utf-8")
    (tmp_path / "broken.ust").write_text(UST.replace("NoteNum=62", "NoteNum=x"),
                                         encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a score", encoding="utf-8")
    return tmp_path


def test_names_and_metadata(folder: Path) -> None:
    library = SongLibrary(folder)
    assert library.names() == ["broken", "chorus.ust", "chorus.ustx", "verse"]
    verse = library.info("verse")
    assert (verse.title, verse.language, verse.format) == ("Verse One", "en", "ust")
    assert verse.tempo_bpm == (100.0, 80.0)
    assert verse.length_s == pytest.approx(4 * 0.6 + 2 * 0.75)
    assert verse.singers == ("UTAU",) and verse.notes == 2 and verse.ok
    chorus = library.info("chorus.ustx")
    assert (chorus.title, chorus.language, chorus.singers) == ("Chorus", "zh", ("Alto", "Bass"))
    assert chorus.length_s == pytest.approx(2 * 60 / 140, abs=1 / 48_000)
    broken = library.info("broken")
    assert not broken.ok and "broken.ust: line 11: note [#0001]: NoteNum 'x'" in str(broken.error)
    assert [s.name for s in library.songs()] == library.names()
    assert library.load("verse").title == "Verse One"
    with pytest.raises(ScoreError, match=r"bridge: no such song in .* \(songs: broken, "):
        library.path("bridge")


def test_metadata_is_cached_until_the_file_changes(folder: Path) -> None:
    library = SongLibrary(folder)
    first = library.info("verse")
    again = SongLibrary(folder).info("verse")
    assert again == first
    path = folder / "verse.ust"
    path.write_text(UST.replace("Verse One", "Verse Two"), encoding="utf-8")
    later = time.time() + 5
    os.utime(path, (later, later))
    assert library.info("verse").title == "Verse Two"


def test_default_folder_is_the_demo_songs(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.delenv("LIVESINGER_SONGS", raising=False)
    assert default_folder() == SONGS_DIR
    assert SongLibrary(default_folder()).names() == ["jasmine", "twinkle"]
    monkeypatch.setenv("LIVESINGER_SONGS", str(folder))
    assert default_folder() == folder
    with pytest.raises(ScoreError, match="songs folder not found"):
        SongLibrary(folder / "nowhere")


def test_cli_lists_demo_songs(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LIVESINGER_SONGS", raising=False)
    assert main(["songs", "list"]) == 0
    out = capsys.readouterr().out
    assert "jasmine" in out and "茉莉花 (Jasmine Flower) [zh, 76 bpm, 42.6 s" in out
    assert "twinkle" in out and "[en, 100/80 bpm, 30.0 s, 43 notes, sung by Tenor]" in out


def test_cli_lists_a_bad_file_with_its_error(folder: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["songs", "list", "--songs", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[0] == "broken" and "error:" in line and "NoteNum 'x'" in line
               for line in lines[1:])
    assert main(["songs", "list", "--songs", str(folder), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == ["broken", "chorus.ust", "chorus.ustx", "verse"]
    assert rows[0]["error"] and rows[3]["tempo_bpm"] == [100.0, 80.0]
    assert main(["songs", "list", "--songs", str(folder / "nowhere")]) == 2
    assert "songs folder not found" in capsys.readouterr().err
