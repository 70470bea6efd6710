"""A DiffSinger bank in the live show: `serve --voice BANK` (synthesis process, phrase-ahead
worker, recording) plays a scored song in tune within the xrun budget."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from singer.backends.discovery import describe_bank
from singer.backends.live import BankRef, open_bank
from singer.contracts import SAMPLE_RATE_HZ
from singer.load import load_score
from stage.serve import serve
from tests.measure import StallWatch, note_cents_errors, xrun_budget
from tests.singer.backends.diffsinger_bank import build_bank
from tests.singer.backends.scores import DIFFSINGER_SCORE, sung_notes, write_ust
from tests.stage.test_serve_live import Engine, UdpOsc

SR = SAMPLE_RATE_HZ
CHUNK = 240  # serve's 5 ms chunks


class HandledEngine(Engine):
    """``Engine`` that keeps serve's handles (the pacer: its xruns and chunks played)."""

    handles: dict[str, object]

    async def __aenter__(self) -> HandledEngine:
        self.handles = {}

        def ready(ports: dict[str, object]) -> None:
            self.ports = ports
            self._ready.set()

        self.task = asyncio.ensure_future(serve(self.opts, ready, self.handles))
        await asyncio.wait_for(self._ready.wait(), 60)
        return self


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> BankRef:
    folder = build_bank(tmp_path_factory.mktemp("voices") / "tiny")
    ref = BankRef.of(describe_bank(folder))
    open_bank(ref)
    return ref


@pytest.mark.timeout(120)
async def test_serve_with_a_diffsinger_bank_plays_a_song_in_tune(bank: BankRef,
                                                                 tmp_path: Path) -> None:
    songs = tmp_path / "songs"
    songs.mkdir()
    write_ust(songs / "tiny.ust", DIFFSINGER_SCORE)
    notes = sung_notes(load_score(str(songs / "tiny.ust")).parts[0].notes)
    engine = HandledEngine(tmp_path / "rec", voice=bank.path, songs=songs,
                           synthesis="process")
    async with engine:
        ctl = UdpOsc(engine.osc)
        reply = await ctl.ask("/livesinger/song/load", "tiny.ust")
        assert reply["status"] == "ok", reply
        pacer: Any = engine.handles["pacer"]
        xruns, played = pacer.xruns, pacer.chunks_played
        with StallWatch() as watch:
            reply = await ctl.ask("/livesinger/song/play", 0.0)
            assert reply["status"] == "ok", reply
            await asyncio.sleep(notes[-1].t_off / SR + 0.8)
            xruns, played = pacer.xruns - xruns, pacer.chunks_played - played
    at = int(reply["data"]["at_sample"])  # type: ignore[call-overload, index]
    audio = engine.audio()
    placed = [replace(n, t_on=n.t_on + at, t_off=n.t_off + at) for n in notes]
    assert len(audio) > placed[-1].t_off
    assert np.abs(audio[:at]).max() < 1e-3  # silent before the song
    errors = np.abs(note_cents_errors(audio, placed))
    assert len(errors) == len(placed)
    assert float(np.median(errors)) <= 10.0, errors
    assert float(errors.max()) <= 25.0, errors
    # while the song played; chunks due while the machine ran none of this process are excused
    excused = int(watch.stalled_s * SR / CHUNK)
    assert xruns - excused <= xrun_budget(played), (xruns, excused, played)


async def test_a_live_note_on_a_diffsinger_voice_is_refused_in_one_line(bank: BankRef) -> None:
    # a phrase-ahead bank would render minutes of audio before a live note's first sample
    # (its end is unknown) and stall the show: the note is refused and nothing changes
    from singer.synth import HarmonicNoiseSynth
    from stage.director import CueError, Director
    from stage.pacer import AudioPacer, PacerConfig
    from streams.cue import make_cue

    director = Director(HarmonicNoiseSynth(device="cpu"), load_score, voice=bank.path)
    director.attach(AudioPacer(director.render, config=PacerConfig(CHUNK, 4)))
    with pytest.raises(CueError) as err:
        await director.handle(make_cue("note.on", {"pitch": 67, "velocity": 0.8}))
    assert "DiffSinger" in str(err.value) and "\n" not in str(err.value)
    assert director.line("lead") is not None and director.line("lead").notes == []  # type: ignore[union-attr]
