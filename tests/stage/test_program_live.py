"""The program mix live: a real in-process ``serve --record`` with a song whose backing is a
click stem at every beat; audio.wav (the program) and voice.wav (the dry voice) are measured.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from tests.measure import xrun_budget
from tests.stage.test_serve_live import Engine, UdpOsc

SR = SAMPLE_RATE_HZ
BEAT = SR // 2  # 120 bpm
BEATS = 24
MS = SR // 1000


def make_song(folder: Path) -> Path:
    """A 120 bpm MIDI song: a short A4 on every beat; its sidecar declares a click stem
    with one impulse on every beat (score time = beat / 2 s)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000))
    for _ in range(BEATS):
        track.append(mido.Message("note_on", note=69, velocity=100, time=0))
        track.append(mido.Message("note_off", note=69, velocity=0, time=160))
        track.append(mido.Message("note_on", note=69, velocity=0, time=320))
    song = folder / "clicks.mid"
    mid.save(song)
    click = np.zeros(BEATS * BEAT + SR, np.float32)
    click[np.arange(BEATS) * BEAT] = 0.5
    sf.write(folder / "click.wav", click, SR, subtype="FLOAT")
    (folder / "clicks.backing.yaml").write_text("stems:\n  - file: click.wav\n    name: click\n")
    return song


def clicks(residual: np.ndarray) -> np.ndarray:
    """Sample positions of the impulses (single samples far above their neighbours)."""
    return np.nonzero(np.abs(residual) > 0.25)[0]


def voice_onsets(voice: np.ndarray, starts: list[int]) -> list[int]:
    """The first sample past −40 dBFS after each expected note start minus 150 ms."""
    out = []
    for s in starts:
        window = np.abs(voice[s - 150 * MS:s + 60 * MS])
        loud = np.nonzero(window > 0.01)[0]
        out.append(s - 150 * MS + int(loud[0]) if len(loud) else -1)
    return out


async def test_backing_keeps_the_score_relation_live_through_a_seek_and_a_mute(
        tmp_path: Path) -> None:
    song = make_song(tmp_path)
    async with Engine(tmp_path / "rec", song=str(song), synthesis="thread") as engine:
        ctl = UdpOsc(engine.osc)
        play = await ctl.ask("/livesinger/song/play", 0.0)
        assert play["status"] == "ok", play
        await asyncio.sleep(2.2)
        seek = await ctl.ask("/livesinger/song/seek", 12.0)
        assert seek["status"] == "ok", seek
        await asyncio.sleep(1.6)
        mute = await ctl.ask("/livesinger/backing/mute", "click", 1)
        assert mute["status"] == "ok", mute
        bad = await ctl.ask("/livesinger/backing/mute", "drums", 1)
        assert bad["status"] == "error" and "no stem 'drums'" in str(bad["data"]), bad
        await asyncio.sleep(1.0)
        status = await ctl.ask("/livesinger/thump")
        assert status["status"] == "ok"
    program, _ = sf.read(tmp_path / "rec" / "audio.wav", dtype="float32")
    voice, _ = sf.read(tmp_path / "rec" / "voice.wav", dtype="float32")
    n = min(len(program), len(voice))
    found = clicks(program[:n] - voice[:n])
    p_at = int(play["data"]["at_sample"])  # type: ignore[index]
    s_at, s_beat = int(seek["data"]["at_sample"]), float(seek["data"]["from_beat"])  # type: ignore[index]
    m_at = int(mute["data"]["at_sample"])  # type: ignore[index]
    assert s_beat == 12.0
    # where the score puts each beat on the show clock: the notes' starts, and the clicks'
    before = [p_at + b * BEAT for b in range(BEATS) if p_at + b * BEAT < s_at]
    after = [s_at + (b - 12) * BEAT for b in range(12, BEATS) if s_at + (b - 12) * BEAT < m_at]
    assert len(before) >= 3 and len(after) >= 2, (before, after)
    expected = before + after
    budget = xrun_budget(n // 240)  # 5 ms chunks; a skipped chunk is silence in the file
    # sample-exact where the score puts them, and none after the mute
    assert set(found) <= set(expected), (list(found), expected)
    assert len(found) >= len(expected) - budget, (list(found), expected)
    # the sung onsets keep one relation to the clicks, at the start and after the seek
    onsets = np.array(voice_onsets(voice, list(found)))
    lead = onsets - found
    middle = float(np.median(lead))
    assert int(np.sum(np.abs(lead - middle) > MS)) <= budget, lead  # within 1 ms
    assert abs(middle) < 150 * MS, lead
    # the dry voice carries no click
    for c in found:
        assert abs(voice[c] - voice[c - 1]) < 0.25, c  # the click's impulse is 0.5
