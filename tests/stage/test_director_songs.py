"""Songs during a show: remote cues load library songs only, a load cuts the old song at its
edit point, and parsing never runs on the event loop (real pacer, real voice, real worker)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from singer.songs import song_path
from stage.cuelist import load_cue_list
from streams.cue import CueError
from tests.measure import StallWatch, xrun_budget
from tests.stage.song_probe import load_noting_process
from tests.stage.test_director import Show

SR = SAMPLE_RATE_HZ


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


@pytest.fixture
def songs(tmp_path: Path) -> Path:
    """A song folder holding twinkle, with a secret file and a FIFO outside it."""
    folder = tmp_path / "songs"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(song_path("twinkle"), folder / "twinkle.musicxml")
    shutil.copy(song_path("twinkle"), folder / "sub" / "nested.musicxml")
    os.mkfifo(folder / "pipe.musicxml")
    shutil.copy(song_path("jasmine"), tmp_path / "secret.musicxml")
    os.mkfifo(tmp_path / "outside.fifo")
    return folder


async def test_remote_loads_take_library_songs_only_and_say_nothing_of_other_files(
        songs: Path) -> None:
    outside = songs.parent
    async with Show(song_folders=[songs]) as show:
        refused = {}
        for ref in (str(outside / "secret.musicxml"), str(outside / "missing.musicxml"),
                    str(outside / "outside.fifo"), "../secret.musicxml", "/dev/zero",
                    "sub/../../secret.musicxml", "pipe.musicxml", "sub", "nope"):
            with pytest.raises(CueError) as err:
                # a FIFO or device must not block the loader: the cue is answered at once
                await asyncio.wait_for(show.cue("song.load", song=ref), 30)
            refused[ref] = str(err.value).replace(repr(ref), "<ref>")
        # one message for every refused reference, whether the file exists or not
        assert len(set(refused.values())) == 1, refused
        message = next(iter(refused.values()))
        assert message.startswith("unknown song <ref>: remote cues load library songs")
        assert "songs: twinkle" in message
        assert show.director.song is None  # nothing was loaded
        # a library name, and a file inside the folder, are loaded
        assert (await show.cue("song.load", song="twinkle"))["parts"] == 1  # type: ignore[index]
        await show.cue("song.load", song="sub/nested.musicxml")
        assert show.director.song is not None
        await show.cue("song.play", beat=0.0)
        await asyncio.sleep(0.5)
        assert show.director.status()["playing"] is True


async def test_a_cue_list_keeps_loading_paths(tmp_path: Path, songs: Path) -> None:
    cues = tmp_path / "show.yaml"
    cues.write_text(f"cues:\n  - id: '1'\n    do:\n      - song.load: {tmp_path}/secret.musicxml"
                    "\n      - song.play: 0\n", encoding="utf-8")
    async with Show(load_cue_list(cues), song_folders=[songs]) as show:
        reply = await show.cue("go")
        assert reply["done"][0]["song"]  # type: ignore[index]
        await asyncio.sleep(0.5)
        assert show.director.status()["playing"] is True
    assert rms(show.audio()[-SR // 4:]) > 0.005


async def test_a_song_load_cuts_the_old_song_at_its_edit_point(
        keep_audio: Callable[[str, np.ndarray], None]) -> None:
    # 100 ms rendered ahead: the most the pacer ever renders ahead of playout
    async with Show(lookahead_chunks=20) as show:
        await show.cue("song.load", song="twinkle")
        await show.cue("song.play", beat=0.0)
        await asyncio.sleep(1.2)
        reply = await show.cue("song.load", song="jasmine")
        cut = reply["at_sample"]  # type: ignore[index]
        await asyncio.sleep(0.4)
    audio = show.audio()
    keep_audio("cut", audio)
    assert show.pacer.xruns <= xrun_budget(show.pacer.chunks_played)
    before = rms(audio[cut - SR // 5:cut])
    assert before > 0.02  # the old song was singing at the cut
    # from the edit point the old song releases (its notes end there): nothing of it is
    # left 50 ms on, although 100 ms of it had been rendered ahead
    after = rms(audio[cut + int(0.05 * SR):cut + int(0.1 * SR)])
    assert after < 0.05 * before, (after, before)
    assert np.abs(audio[cut + int(0.1 * SR):]).max() < 1e-3


async def test_go_parses_its_song_in_another_process_ahead_of_time(tmp_path: Path) -> None:
    cues = tmp_path / "show.yaml"
    cues.write_text("cues:\n  - id: '1'\n    do:\n      - song.load: jasmine\n"
                    "      - song.play: 0\n", encoding="utf-8")
    lags: list[float] = []

    async def tick() -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(0.005)
            lags.append(time.monotonic() - asked - 0.005)

    with StallWatch() as watch:
        async with Show(load_cue_list(cues), load=load_noting_process) as show:
            ticker = asyncio.ensure_future(tick())
            while not show.director.songs.ready("jasmine"):  # parsed as the show starts
                await asyncio.sleep(0.05)
            reply = await show.cue("go")
            await asyncio.sleep(0.5)
            ticker.cancel()
    assert reply["done"][0]["song"]  # type: ignore[index]
    song = show.director.song
    assert song is not None and show.director.songs.in_process
    parsed_in = [n for n in song.notices if n.startswith("parsed in process")]
    assert parsed_in and parsed_in[0] != f"parsed in process {os.getpid()}"
    # the loop kept ticking all along (music21 parsing on it stalls it for a second or more);
    # time the machine did not run this process at all is excused
    print(f"longest loop lag {max(lags):.3f} s, stalled {watch.stalled_s:.3f} s")
    assert max(lags) - watch.stalled_s < 0.25, (max(lags), watch.stalled_s)
