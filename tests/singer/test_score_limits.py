"""A score is a bounded regular file: pipes, devices, huge files and zip bombs are refused
before any reader touches them, with one line naming what was wrong."""

from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path

import pytest

from singer.score import ScoreError
from singer.scores.limits import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_MEMBERS, check_score_file
from singer.scores.load import load_score
from singer.songs import song_path


def load_in_thread(path: Path) -> BaseException | None:
    """``load_score(path)``'s error, from a thread that must not block for good."""
    result: list[BaseException | None] = []

    def run() -> None:
        try:
            load_score(path)
            result.append(None)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            result.append(err)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert result, f"loading {path} blocked"
    return result[0]


def test_a_fifo_is_refused_without_being_opened_for_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "song.musicxml"
    os.mkfifo(fifo)
    err = load_in_thread(fifo)
    assert isinstance(err, ScoreError)
    assert str(err) == f"{fifo}: not a regular file (a pipe, socket or device)"


def test_a_device_is_refused() -> None:
    err = load_in_thread(Path("/dev/zero"))
    assert isinstance(err, ScoreError) and "not a regular file" in str(err)


def test_a_zip_bomb_is_refused_from_its_directory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.mxl"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("score.musicxml", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(MAX_ARCHIVE_BYTES // len(block) + 1):
                member.write(block)
    assert bomb.stat().st_size < 1_000_000  # small on disk...
    with pytest.raises(ScoreError, match=r"bomb.mxl: an archive expanding to \d+ bytes; at most"):
        load_score(bomb)


def test_an_archive_of_too_many_members_is_refused(tmp_path: Path) -> None:
    crowd = tmp_path / "crowd.mxl"
    with zipfile.ZipFile(crowd, "w") as archive:
        for k in range(MAX_ARCHIVE_MEMBERS + 1):
            archive.writestr(f"m{k}.xml", b"")
    with pytest.raises(ScoreError, match=rf"an archive of {MAX_ARCHIVE_MEMBERS + 1} members"):
        check_score_file(crowd)


def test_an_ordinary_score_passes_and_loads() -> None:
    check_score_file(song_path("twinkle"))
    assert load_score(song_path("twinkle")).parts
