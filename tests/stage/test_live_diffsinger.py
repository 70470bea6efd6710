"""A DiffSinger bank in the live show: `serve --voice BANK` (synthesis process, phrase-ahead
worker, recording) plays a scored song in tune within the xrun budget, and sings notes
played over OSC (held notes) in tune, sustained while held, released at note-off; with a
bank as slow as a real one, each played note's mouth (the recorded pose stream) opens with its
voice (the recorded audio)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rigs.lipsync import MOUTH_EXPRESSIONS
from singer.backends.discovery import describe_bank
from singer.backends.live import BankRef, open_bank
from singer.contracts import DEFAULT_HOP_SAMPLES, SAMPLE_RATE_HZ, AudioChunk, Note
from singer.ensemble import LiveReport
from singer.scores.load import load_score
from stage.serve import serve
from tests.measure import StallWatch, note_cents_errors, xrun_budget
from tests.singer.backends.diffsinger_bank import BankSpec, build_bank
from tests.singer.backends.scores import DIFFSINGER_SCORE, sung_notes, write_ust
from tests.stage.test_serve_live import Engine, UdpOsc, onset

SR = SAMPLE_RATE_HZ
CHUNK = 240  # serve's 5 ms chunks
XRUN_PERCENT = {"process": 8, "thread": 25}
"""A bank's functional tests' xrun budget, by ``--synthesis``: on the slow shared machine
(sum(range(3e7)) ~0.9 s) a DiffSinger song's first phrase came 0.3 s after its cue (5.6 %
of the song's chunks) and held notes lost 3-6 % at their note-ons (the first segment, then
the next, on two cores with the show; `bench voice` reports it: live_late_chunks); in a
thread of the show's process, which shares the GIL with the bank worker and the network
loop (docs/synthesis.md), 4-13 %. A voice that stutters all along still fails."""


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
        covers = CoverWatch(pacer)
        pacer.add_sink(covers)
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
    # the song's first phrase is rendered only once it is cued (a known gap on a slow
    # machine, 0.3-0.5 s there): the chunks covered in a run from the song's start are that
    # wait, measured apart, at most a second
    opening = _opening_wait(covers.covered, at)
    assert len(opening) * CHUNK <= SR, len(opening) * CHUNK / SR
    # while the song played; chunks due while the machine ran none of this process are excused
    excused = int(watch.stalled_s * SR / CHUNK)
    assert xruns - len(opening) - excused <= xrun_budget(played, XRUN_PERCENT["process"]), \
        (xruns, len(opening), excused, played)


def _opening_wait(covered: set[int], at: int) -> list[int]:
    """The chunks covered in one run from within 0.1 s of show sample ``at`` on."""
    run: list[int] = []
    for t in sorted(c for c in covered if c >= at):
        if (not run and t - at <= SR // 10) or (run and t - run[-1] <= CHUNK):
            run.append(t)
        else:
            break
    return run


LIVE_NOTES = ((60, "ba", 1.0), (64, "la", 2.4), (67, "ma", 1.0))
"""(pitch, syllable, seconds held) played over OSC: the long one outlasts several of the
held note's continuation segments; the short ones outlast a first segment that, with
``--synthesis thread`` on the slow shared machine, came over half a second after the note-on
(80-110 ms on a quiet one)."""


def _rms(audio: np.ndarray, start: int, end: int, covered: set[int], win: int = 2400
         ) -> np.ndarray:
    """RMS per window of ``[start, end)``, leaving out windows that hold a chunk the pacer
    covered (an xrun on the loaded machine: a hole of the machine's, measured apart)."""
    return np.array([np.sqrt(np.mean(audio[t:t + win] ** 2)) for t in range(start, end, win)
                     if not any(c in covered for c in range(t - t % CHUNK - CHUNK, t + win,
                                                               CHUNK))])


class CoverWatch:
    """A pacer sink noting the show samples of the chunks played as xrun covers."""

    def __init__(self, pacer: Any) -> None:
        self.pacer = pacer
        self.covered: set[int] = set()
        self._xruns = pacer.xruns

    def __call__(self, chunk: AudioChunk) -> None:
        if self.pacer.xruns != self._xruns:
            self._xruns = self.pacer.xruns
            self.covered.add(chunk.t)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("synthesis", ["process", "thread"])
async def test_played_notes_with_a_diffsinger_voice_sing_in_tune_hold_and_release(
        bank: BankRef, tmp_path: Path, synthesis: str) -> None:
    # note-on / note-off over OSC into `serve --voice BANK`: each note is the bank's held
    # note (first segment rendered in the bank worker, extended while held, released at
    # note-off), not a phrase of the open note
    engine = HandledEngine(tmp_path / "rec", voice=bank.path, synthesis=synthesis)
    played: list[tuple[int, int, int]] = []
    async with engine:
        ctl = UdpOsc(engine.osc)
        pacer: Any = engine.handles["pacer"]
        director: Any = engine.handles["director"]
        covers = CoverWatch(pacer)
        pacer.add_sink(covers)
        await asyncio.sleep(0.3)
        xruns, chunks = pacer.xruns, pacer.chunks_played
        with StallWatch() as watch:
            for pitch, syllable, hold_s in LIVE_NOTES:
                on = await ctl.ask("/livesinger/note/on", pitch, 0.8, syllable)
                assert on["status"] == "ok", on
                await asyncio.sleep(hold_s / 2)
                # lip-sync is still driven in the show's process by the built-in controls
                frame = director.line("lead").control_frame(pacer.playout_sample)
                assert frame.loudness > 0
                await asyncio.sleep(hold_s / 2)
                released = await ctl.ask("/livesinger/note/off", pitch)
                assert released["status"] == "ok", released
                played.append((pitch, int(on["data"]["at_sample"]),  # type: ignore[call-overload, index]
                               int(released["data"]["at_sample"])))  # type: ignore[call-overload, index]
                await asyncio.sleep(0.6)
            thump = await ctl.ask("/livesinger/thump")  # the show carries on answering
            assert thump["status"] == "ok", thump
            xruns, chunks = pacer.xruns - xruns, pacer.chunks_played - chunks
        assert not pacer.render_errors
    audio = engine.audio()
    assert np.abs(audio[:played[0][1]]).max() < 1e-3  # silent before the first note-on
    bodies = []
    for k, (pitch, at, off) in enumerate(played):
        sound = onset(audio, at, threshold=0.01)
        # heard from its note-on sample, or the first chunk after its first segment was ready
        assert at <= sound < off - SR // 10, (k, at, sound, off)
        bodies.append(Note(sound, off, float(pitch), "a", ("a",)))
        # held: energy all through the hold (no hole between segments) ...
        level = _rms(audio, sound + SR // 10, off, covers.covered)
        assert level.min() > 0.25 * float(np.median(level)), (k, level.round(3))
        # ... then released after its note-off (the release may land a chunk or two later)
        quiet_from = off + int(0.35 * SR)
        quiet_to = played[k + 1][1] if k + 1 < len(played) else quiet_from + SR // 5
        assert np.abs(audio[quiet_from:quiet_to]).max() < 1e-3, k
    errors = np.abs(note_cents_errors(audio, bodies))
    assert len(errors) == len(played)
    assert float(np.median(errors)) <= 10.0, errors
    excused = int(watch.stalled_s * SR / CHUNK)
    assert xruns - excused <= xrun_budget(chunks, XRUN_PERCENT[synthesis]), \
        (xruns, excused, chunks)


async def test_a_live_note_the_bank_cannot_sing_is_refused_in_one_line(bank: BankRef) -> None:
    # checked in the show's process from the bank's dictionaries (no model loaded) before
    # anything changes; a syllable it has is taken as a held note
    from singer.synth import HarmonicNoiseSynth
    from stage.director import CueError, Director
    from stage.pacer import AudioPacer, PacerConfig
    from streams.cue import make_cue

    director = Director(HarmonicNoiseSynth(device="cpu"), load_score, voice=bank.path)
    director.attach(AudioPacer(director.render, config=PacerConfig(CHUNK, 4)))
    with pytest.raises(CueError) as err:
        await director.handle(make_cue("note.on", {"pitch": 67, "velocity": 0.8,
                                                   "syllable": "zhuang"}))
    assert "zhuang" in str(err.value) and "\n" not in str(err.value)
    line = director.line("lead")
    assert line.notes == [] and not line.held_notes
    await director.handle(make_cue("note.on", {"pitch": 67, "velocity": 0.8, "syllable": "ma"}))
    held = list(line.held_notes)
    assert [(h.pitch_midi, h.lyric, h.off_sample) for h in held] == [(67.0, "ma", None)]
    assert line.notes == []  # its mouth waits for the bank to say where its voice starts
    director.on_live_report(LiveReport("lead", held[0].id, "on", held[0].sample))
    assert len(line.notes) == 1 and line.notes_without_held() == []  # held, not a phrase
    await director.handle(make_cue("note.off", {"pitch": 67}))
    assert [h.off_sample is not None for h in line.held_notes] == [True]


SLOW_LAYERS = 160
"""The slow test bank's wasted layers: a live note's first segment takes ~0.05 s on a quiet
machine alone, and up to a second on the slow shared machine under load (the 5 ms chunks'
20 ms lookahead is less either way)."""
SLOW_HOLD_S = 1.2
"""How long each note is held: longer than the first segment takes under load."""
MOUTH_OPEN = 0.1
"""Mouth opening (the largest VRM mouth weight of a pose) from which the mouth is open."""
LIPSYNC_LEAD_SAMPLES = 2 * DEFAULT_HOP_SAMPLES
"""The lip-sync's own lead of its sound (docs/voices.md): the mouth is drawn from the built-in
controls, a frame per hop, and opens up to two control frames before the note's sound."""


@pytest.fixture(scope="module")
def slow_bank(tmp_path_factory: pytest.TempPathFactory) -> BankRef:
    folder = build_bank(tmp_path_factory.mktemp("voices") / "slow",
                        BankSpec(work_layers=SLOW_LAYERS))
    ref = BankRef.of(describe_bank(folder))
    open_bank(ref)
    return ref


def _mouth_moves(poses: list[tuple[int, float]], after: int, to_open: bool
                 ) -> tuple[int, int]:
    """The span ``(last frame before, first frame after]`` in which the recorded mouth opens
    (``to_open``) or shuts after show sample ``after`` (the pose stream samples it at
    ``POSE_RATE_HZ``: that is as close as it is known)."""
    before = after
    for t, opening in poses:
        if t < after:
            continue
        if (opening > MOUTH_OPEN) == to_open:
            return before, t
        before = t
    raise AssertionError(f"the mouth never {'opens' if to_open else 'shuts'} after {after}")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("synthesis", ["process", "thread"])
async def test_a_slow_banks_played_notes_open_the_mouth_when_the_voice_starts(
        slow_bank: BankRef, tmp_path: Path, synthesis: str) -> None:
    # a bank whose first segment takes longer than the render loop's lookahead: each note
    # is placed where its segment is expected (the reply says where), and where the voice
    # still starts later, the mouth is moved there: the sound's onset in the recording and
    # the mouth's opening in the recorded pose stream agree within a chunk (+ a pose frame)
    engine = HandledEngine(tmp_path / "rec", voice=slow_bank.path, synthesis=synthesis)
    played: list[tuple[int, int]] = []
    async with engine:
        ctl = UdpOsc(engine.osc)
        director: Any = engine.handles["director"]
        covers = CoverWatch(engine.handles["pacer"])
        engine.handles["pacer"].add_sink(covers)  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)
        for pitch, syllable in ((60, "a"), (64, "la"), (67, "wo"), (62, "a"), (65, "la")):
            on = await ctl.ask("/livesinger/note/on", pitch, 0.8, syllable)
            assert on["status"] == "ok", on
            await asyncio.sleep(SLOW_HOLD_S)
            released = await ctl.ask("/livesinger/note/off", pitch)
            assert released["status"] == "ok", released
            played.append((int(on["data"]["at_sample"]),  # type: ignore[call-overload, index]
                           int(released["data"]["at_sample"])))  # type: ignore[call-overload, index]
            await asyncio.sleep(0.8)
        await asyncio.sleep(0.7)  # the last release, late on a loaded machine, is reported
        latency = director.live_latency()
    assert latency > 0  # the bank worker's measured latency reached the show
    audio = engine.audio()
    lines = (tmp_path / "rec" / "pose.jsonl").read_text().splitlines()[1:]
    poses = sorted((int(p["t"]), max(float(p["e"].get(k, 0.0)) for k in MOUTH_EXPRESSIONS))
                   for p in map(json.loads, lines))
    tolerance = CHUNK + LIPSYNC_LEAD_SAMPLES
    quiet_from = 0
    for k, (at, off) in enumerate(played):
        # nothing before its at_sample (but an xrun's cover: a fade of the chunk before)
        # (the last note's release may end past this note-on on a slow machine: none to check)
        if quiet_from < at and not any(quiet_from - CHUNK <= c < at for c in covers.covered):
            assert np.abs(audio[quiet_from:at]).max() < 1e-3, k
        sound = onset(audio, at - CHUNK, threshold=0.01)
        shut, opened = _mouth_moves(poses, quiet_from, to_open=True)
        assert at <= sound < off, (k, at, sound, off)
        # the voice may have been due from the chunks the pacer covered just before its first
        # sound (an xrun on the loaded machine: its hole, counted by the pacer, not the mouth's)
        due = sound - sound % CHUNK
        while due - CHUNK in covers.covered and due - CHUNK >= at - CHUNK:
            due -= CHUNK
        assert shut - tolerance <= sound and min(sound, max(due, at)) <= opened + tolerance, \
            (k, shut, sound, due, opened, sorted(c for c in covers.covered if at <= c < sound))
        # the mouth shuts with the voice's release (moved with it when that was late), and
        # the voice is silent soon after
        _, closed = _mouth_moves(poses, opened, to_open=False)
        assert closed >= off - tolerance, (k, off, closed)
        quiet_from = closed + int(0.35 * SR)
