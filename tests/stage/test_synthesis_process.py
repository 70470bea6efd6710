"""Synthesis in a process of its own: the ring, replayed edits, a live show, and a restart."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
from pathlib import Path
from typing import Any

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk, Note
from singer.ensemble import Ensemble, LineEdit, SingerLine
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice
from stage.director import Director
from stage.pacer import PacerConfig
from stage.song_loader import local_loader
from stage.synthesis import ChunkRing, ProcessPacer
from stage.synthesis.pacer import HUNG_AFTER_S
from streams.cue import make_cue
from tests.measure import f0_track

SR = SAMPLE_RATE_HZ


def test_ring_spares_the_superseded_chunk_and_never_reads_a_torn_slot() -> None:
    ring = ChunkRing.create(positions=4, chunk_samples=8)
    try:
        ring.write(16, 1, np.full(8, 0.1, np.float32), 5, keep_generation=0)
        ring.write(16, 2, np.full(8, 0.2, np.float32), 6, keep_generation=1)
        ring.write(16, 3, np.full(8, 0.3, np.float32), 7, keep_generation=1)  # not over gen 1
        got = {c.generation: float(c.samples[0]) for c in ring.read(16)}
        assert got == {1: np.float32(0.1), 3: np.float32(0.3)}
        assert ring.read(48) == []  # same position, another chunk: nothing for it
        ring._meta[2, 0, 0] += 1  # gen 1's slot caught mid-write (sequence odd)
        assert [c.generation for c in ring.read(16)] == [3]
    finally:
        ring.close()


def _line(name: str, notes: list[Note]) -> SingerLine:
    return SingerLine(name, get_voice("soprano"), notes, seed=3)


def test_edits_replayed_on_a_copy_render_the_same_samples() -> None:
    synth = HarmonicNoiseSynth(device="cpu")
    show = Ensemble(synth, [_line("lead", [Note(4800, 20000, 62.0, "la", ("l", "a"))])])
    copy = Ensemble(synth, [SingerLine.from_state(s) for s in show.states()])
    sent: list[bytes] = []
    show.set_listener(lambda edit: sent.append(pickle.dumps(edit)))  # as over the pipe
    show.lines[0].set_notes([Note(4800, 20000, 62.0, "la", ("l", "a")),
                             Note(20000, 40000, 65.0, "mi", ("m", "i"))], changed_from=19000)
    lead = show.lines[0].notes
    show.lines[0].set_notes([Note(4800, 18000, 62.0, "la", ("l", "a")), lead[1]], 18000)
    show.lines[0].add_expression(24000, "vibrato_depth", 2.0)
    show.add_line(_line("alto", []))
    show.lines[1].set_notes([Note(9600, 36000, 57.0, "o", ("o",))], changed_from=9600)
    show.lines[1].set_voice(get_voice("tenor"), 12000)
    show.lines[0].fold_before(26000)
    edits = [pickle.loads(b) for b in sent]
    assert [e.op for e in edits] == ["set_notes", "set_notes", "add_expression", "add_line",
                                     "set_notes", "set_voice", "fold_before"]
    assert isinstance(edits[0], LineEdit) and edits[0].args[0] == 1  # the first note kept
    assert len(edits[0].args[1]) == 1  # only the new one sent
    assert edits[1].args[:1] == (0,) and len(edits[1].args[1]) == 1 and edits[1].args[2] == 1
    for edit in edits:
        copy.apply(edit)
    mine = np.concatenate([show.render(t, 480) for t in range(0, 43200, 480)], axis=1)
    theirs = np.concatenate([copy.render(t, 480) for t in range(0, 43200, 480)], axis=1)
    assert np.abs(mine).max() > 0.05
    np.testing.assert_array_equal(mine, theirs)


class ProcessShow:
    """A Director on a pacer whose synthesis runs in a process, recording what it plays."""

    def __init__(self, realtime_priority: int | None = None) -> None:
        self.director = Director(HarmonicNoiseSynth(device="cpu"), local_loader())
        self.chunks: list[AudioChunk] = []
        self.pacer = ProcessPacer(self.director.ensemble, [self.chunks.append],
                                  PacerConfig(240, 4, realtime_priority=realtime_priority),
                                  device="cpu")
        self.director.attach(self.pacer)
        self.director.prefetch = "controls"

    async def __aenter__(self) -> ProcessShow:
        self.task = asyncio.ensure_future(self.pacer.run())
        self.prefetch = asyncio.ensure_future(self.director.run_prefetch())
        while self.pacer.chunks_played < 20:  # the processes import torch first
            assert not self.task.done(), self.task
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.task.cancel()
        self.prefetch.cancel()
        await asyncio.gather(self.task, self.prefetch, return_exceptions=True)
        self.director.close()

    async def cue(self, kind: str, **args: object) -> dict[str, Any]:
        reply = await self.director.handle(make_cue(kind, args))
        assert isinstance(reply, dict)
        return reply

    def audio(self) -> np.ndarray:
        return np.concatenate([c.samples for c in self.chunks])


def _cents_off(audio: np.ndarray, from_s: float, to_s: float, hz: float) -> float:
    times, f0 = f0_track(audio, 150, 800)
    body = (times > from_s) & (times < to_s) & (f0 > 0)
    return abs(1200 * float(np.log2(np.median(f0[body]) / hz)))


async def test_a_show_rendered_in_a_synthesis_process_sings_edits_and_survives_its_death(
) -> None:
    async with ProcessShow() as show:
        first = show.chunks[0].t
        at = (await show.cue("note.on", pitch=67, velocity=0.8, syllable="la"))["at_sample"]
        await asyncio.sleep(0.6)
        await show.cue("note.off", pitch=67)
        again = (await show.cue("note.on", pitch=60, velocity=0.8, syllable="a"))["at_sample"]
        await asyncio.sleep(0.5)
        victim = show.pacer.synthesis.pid
        assert victim is not None and victim != os.getpid()
        killed_at = show.pacer.playout_sample
        os.kill(victim, signal.SIGKILL)  # mid-note
        await asyncio.sleep(1.5)
        state = show.director.status()["synthesis"]
        assert isinstance(state, dict)
        later = (await show.cue("note.on", pitch=64, velocity=0.8, syllable="a"))["at_sample"]
        await asyncio.sleep(0.6)
        await show.cue("note.off", pitch=64)
        await asyncio.sleep(0.2)
        replacement = show.pacer.synthesis.pid
    audio = show.audio()
    assert [c.t for c in show.chunks] == list(range(first, first + 240 * len(show.chunks), 240))
    at, again, later, killed_at = at - first, again - first, later - first, killed_at - first
    assert np.abs(audio[:at]).max() == 0.0  # silent right up to the live note
    assert _cents_off(audio, at / SR + 0.15, at / SR + 0.5, 392.0) < 20
    assert _cents_off(audio, again / SR + 0.15, killed_at / SR, 261.63) < 20
    # replaced, resumed within a second, and the gap counted and reported
    assert replacement not in (None, victim)
    assert state["restarts"] == 1 and state["last_exit"] == "killed by signal 9"
    assert state["last_gap_ms"] is not None and 0 <= state["last_gap_ms"] < 1000
    assert state["resuming"] is False
    # the note goes on (the gap, and the dead process's last chunks, are over by then)
    assert _cents_off(audio, killed_at / SR + 1.2, later / SR, 261.63) < 20
    assert _cents_off(audio, later / SR + 0.15, later / SR + 0.5, 329.63) < 20  # new edits too


async def test_serve_with_a_synthesis_process_sings_osc_notes_into_its_recording(
        tmp_path: Path) -> None:
    from tests.stage.test_serve_live import Engine, UdpOsc, onset

    async with Engine(tmp_path, synthesis="process") as engine:
        ctl = UdpOsc(engine.osc)
        for pitch in (62, 69):
            reply = await ctl.ask("/livesinger/note/on", pitch, 0.8, "a")
            assert reply["status"] == "ok", reply
            await asyncio.sleep(0.6)
            await ctl.ask("/livesinger/note/off", pitch)
            await asyncio.sleep(0.25)
    audio = engine.audio()  # --record: what the engine played, from the ring
    first = onset(audio, 0)
    second = onset(audio, first + int(0.7 * SR))
    assert first > 0 and second > 0
    assert _cents_off(audio, first / SR + 0.15, first / SR + 0.5, 293.66) < 25
    assert _cents_off(audio, second / SR + 0.15, second / SR + 0.5, 440.0) < 25


async def test_a_hung_synthesis_process_is_ended_and_replaced() -> None:
    async with ProcessShow() as show:
        await show.cue("note.on", pitch=62, velocity=0.8, syllable="a")
        await asyncio.sleep(0.3)
        victim = show.pacer.synthesis.pid
        assert victim is not None
        os.kill(victim, signal.SIGSTOP)  # alive, but never renders again
        for _ in range(200):
            await asyncio.sleep(0.05)
            if show.pacer.synthesis_restarts and show.pacer.last_synthesis_gap_ms:
                break
        state = show.pacer.synthesis_state()
    assert state["restarts"] == 1 and state["last_exit"] == "killed by signal 9"
    assert state["pid"] != victim
    gap_ms = state["last_gap_ms"]
    assert isinstance(gap_ms, float) and gap_ms < 1000 * (HUNG_AFTER_S + 1)
