"""The live program stage chunk by chunk, on real renders (no clock): each singer's rows
through their own chain equal the offline program mix sample for sample; a live preset swap
crossfades (no click) and keeps the program's latency; the ring and the pacer carry a row
per singer."""

from __future__ import annotations

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ as SR
from singer.contracts import AudioChunk
from singer.mix.chain import chain_preset
from singer.mix.program import ProgramMix, render_program
from singer.render import build_ensemble, render_ensemble_parts
from singer.score import SourceNote, assemble_score
from singer.synth import HarmonicNoiseSynth
from singer.tempo import TempoChange, TempoMap
from stage.cuelist import parse_cue_list
from stage.director import Director
from stage.pacer import AudioPacer, PacerConfig
from stage.program import ProgramStage, WithProgram
from stage.song_loader import local_loader
from stage.synthesis import ChunkRing
from streams.cue import CueError, make_cue

CHUNK = 240


def _parts() -> np.ndarray:
    notes = {"lead": [SourceNote(0.0, 1.0, 69.0, "la"), SourceNote(2.0, 3.0, 71.0, "la")],
             "alto": [SourceNote(1.0, 2.0, 64.0, "la"), SourceNote(3.0, 4.0, 62.0, "la")]}
    score = assemble_score("duo", TempoMap([TempoChange(0.0, 120.0)]), notes, language="en")
    return render_ensemble_parts(build_ensemble(score, ["soprano"], singers=["lead", "alto"]))


def _play(stage: ProgramStage, parts: np.ndarray, extra: int) -> list[AudioChunk]:
    out: list[AudioChunk] = []
    stage.out = out.append
    rows = np.concatenate([parts, np.zeros((len(parts), extra), np.float32)], axis=1)
    for t in range(0, rows.shape[1] // CHUNK * CHUNK, CHUNK):
        block = rows[:, t:t + CHUNK]
        stage(AudioChunk(t, block.sum(axis=0, dtype=np.float32), block))
    return out


def test_each_singer_through_their_chain_equals_the_offline_program() -> None:
    parts = _parts()
    stage = ProgramStage(lambda _c: None, "dry", chains={"alto": "ballad"},
                         singers=lambda: ["lead", "alto"])
    dry: list[AudioChunk] = []
    stage.dry_sinks.append(dry.append)
    per_singer: dict[str, list[AudioChunk]] = {}
    stage.singer_sink = lambda name: per_singer.setdefault(name, []).append
    tail = 2 * SR
    live = np.concatenate([c.samples for c in _play(stage, parts, tail)])
    mix = ProgramMix({"lead": chain_preset("dry"), "alto": chain_preset("ballad")})
    offline = render_program({"lead": parts[0], "alto": parts[1]}, mix, tail_samples=tail)
    top = stage.latency_samples
    assert top == chain_preset("ballad").latency_samples > 0
    n = len(live) - top
    np.testing.assert_array_equal(live[top:], offline.program[:n])  # tails included
    lead = np.concatenate([c.samples for c in per_singer["lead"]])[top:]
    np.testing.assert_array_equal(lead, parts[0][:n] if n <= parts.shape[1] else
                                  np.pad(parts[0], (0, n - parts.shape[1])))
    voice = np.concatenate([c.samples for c in dry])[top:]
    np.testing.assert_array_equal(voice, offline.dry[:n])
    singers: dict[str, dict[str, object]] = stage.status()["singers"]  # type: ignore[assignment]
    assert singers["lead"]["chain"] == "dry" and singers["alto"]["chain"] == "ballad"
    assert -40 < float(singers["alto"]["rms_dbfs"]) < 0  # type: ignore[arg-type]


def test_chain_cues_swap_a_singer_and_refuse_by_name() -> None:
    parts = _parts()
    stage = ProgramStage(lambda _c: None, "pop", singers=lambda: ["lead", "alto"])
    top = stage.latency_samples
    out: list[AudioChunk] = []
    stage.out = out.append
    rows = parts[:, :SR]
    swap_at = SR // 2 // CHUNK * CHUNK
    for t in range(0, SR, CHUNK):
        if t == swap_at:
            reply = stage.chain_cue(make_cue("chain.set", {"preset": "ballad"},
                                             singer="alto"))
            assert reply["singers"] == ["alto"] and reply["preset"] == "ballad"
        block = rows[:, t:t + CHUNK]
        stage(AudioChunk(t, block.sum(axis=0, dtype=np.float32), block))
    program = np.concatenate([c.samples for c in out])
    assert stage.latency_samples == top  # the program did not move on the clock
    assert stage.status()["singers"]["alto"]["chain"] == "ballad"  # type: ignore[index]
    # no click at the swap: the jump between samples there is no bigger than the song's own
    jumps = np.abs(np.diff(program))
    around = jumps[swap_at - CHUNK:swap_at + 2 * CHUNK]
    assert around.max() <= 1.5 * np.percentile(jumps[jumps > 0], 99.9)
    with pytest.raises(CueError, match="latency \\(96 samples\\) is more than"):
        stage.chain_cue(make_cue("chain.set", {"preset": "broadcast"}, singer="lead"))
    with pytest.raises(CueError, match="unknown chain preset 'loud'"):
        stage.chain_cue(make_cue("chain.set", {"preset": "loud"}))
    with pytest.raises(CueError, match="no 'flanger' effect"):
        stage.chain_cue(make_cue("chain.set", {"param": "flanger.rate", "value": 1.0}))
    with pytest.raises(CueError, match="takes a preset, or a param"):
        make_cue("chain.set", {"preset": "pop", "param": "reverb.mix", "value": 0.1})
    reply = stage.chain_cue(make_cue("chain.set", {"param": "reverb.mix", "value": 0.4}))
    assert reply["singers"] == ["alto", "lead"]
    assert stage.mix.chains["lead"].effect("reverb").params.mix == 0.4  # type: ignore[attr-defined]


def test_the_ring_carries_a_row_per_singer() -> None:
    ring = ChunkRing.create(positions=4, chunk_samples=8, planes=3)
    try:
        rows = np.arange(16, dtype=np.float32).reshape(2, 8)
        ring.write(16, 1, rows, 5, keep_generation=0)
        (got,) = ring.read(16)
        assert got.samples.shape == (3, 8)
        np.testing.assert_array_equal(got.samples[:2], rows)
        assert not got.samples[2].any()
        four = np.ones((4, 8), np.float32)  # more singers than planes: the last holds the rest
        ring.write(24, 1, four, 6, keep_generation=0)
        (got,) = ring.read(24)
        np.testing.assert_array_equal(got.samples[2], np.full(8, 2.0, np.float32))
    finally:
        ring.close()


def test_the_pacer_plays_the_rows_summed_and_hands_them_on() -> None:
    parts = _parts()[:, :CHUNK]
    pacer = AudioPacer(lambda t, n: parts)
    pacer._ready[0] = (0, parts)  # what the synthesis thread rendered for show sample 0
    chunk = pacer._take_due_chunk()
    np.testing.assert_array_equal(chunk.samples, parts.sum(axis=0, dtype=np.float32))
    assert chunk.parts is not None and chunk.parts.shape == (2, CHUNK)


async def test_a_fired_cue_list_entry_reaches_the_chains() -> None:
    """A cue-list entry with ``chain.set`` fired by GO is answered by the program stage, as
    the same cue sent alone is (the Director delegates the program's cue kinds)."""
    cues = parse_cue_list("cues:\n- id: '1'\n  do:\n  - chain.set: {preset: ballad, singer: lead}\n"
                          "- id: '2'\n  do:\n  - chain.set: {preset: radio}\n")
    director = Director(HarmonicNoiseSynth(device="cpu"), local_loader(), cue_list=cues)
    director.attach(AudioPacer(director.render, config=PacerConfig(CHUNK, 4)))
    stage = ProgramStage(lambda _c: None, "pop", singers=lambda: ["lead"])
    control = WithProgram(director, stage, director)
    try:
        reply = await control.handle(make_cue("go", {}))
        assert isinstance(reply, dict) and reply["cue"] == "1"
        assert reply["done"][0]["preset"] == "ballad"
        assert stage.status()["singers"]["lead"]["chain"] == "ballad"  # type: ignore[index]
        with pytest.raises(CueError, match="unknown chain preset 'radio'"):
            await control.handle(make_cue("go", {}))
        assert stage.status()["singers"]["lead"]["chain"] == "ballad"  # type: ignore[index]
    finally:
        director.close()
