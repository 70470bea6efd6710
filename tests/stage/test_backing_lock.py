"""Tempo cues against a backing track that cannot be re-timed (docs/mix.md), through a real
in-process ``serve`` and OSC: refused inside the span the backing locks, with one line naming
it and nothing changed; free after it; before it, the override ends where the backing starts
(measured in the recorded program: the backing's clicks against the voice's beats)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from tests.measure import xrun_budget
from tests.stage.test_serve_live import UdpOsc
from tests.stage.test_timecode_show import Show

SR = SAMPLE_RATE_HZ
BEAT = SR // 2  # 120 bpm
MS = SR // 1000
FIRST, LAST = 8, 28  # the backing covers beats 8..28 (score time 4 s .. 14 s)


def make_song(folder: Path) -> Path:
    """40 beats at 120 bpm (a short A4 on each); its backing, from beat 8, is a click stem
    with an impulse on every beat for 10 s."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000))
    for _ in range(40):
        track.append(mido.Message("note_on", note=69, velocity=100, time=0))
        track.append(mido.Message("note_off", note=69, velocity=0, time=160))
        track.append(mido.Message("note_on", note=69, velocity=0, time=320))
    song = folder / "locked.mid"
    mid.save(song)
    click = np.zeros((LAST - FIRST) * BEAT, np.float32)
    click[np.arange(LAST - FIRST) * BEAT] = 0.5
    sf.write(folder / "click.wav", click, SR, subtype="FLOAT")
    (folder / "locked.backing.yaml").write_text(
        f"offset_s: {FIRST * 0.5}\nstems:\n  - file: click.wav\n    name: click\n")
    return song


async def beats_per_s(show: Show, wait_s: float = 0.6) -> float:
    """The song's speed now (beats per second of show time), from two ``/status`` readings."""
    a = await show.status()
    await asyncio.sleep(wait_s)
    b = await show.status()
    return (float(b["beat"]) - float(a["beat"])) / (float(b["show_s"]) - float(a["show_s"]))


async def test_tempo_cues_are_refused_inside_the_locked_backing_and_work_outside(
        tmp_path: Path) -> None:
    song = make_song(tmp_path)
    async with Show(song=str(song), record=tmp_path / "rec") as show:
        osc = UdpOsc(int(show.ports["osc"]))  # type: ignore[call-overload]
        assert (await osc.ask("/livesinger/song/play", 0.0))["status"] == "ok"
        # inside the span: refused, one line naming it, and the song plays on unchanged
        assert (await osc.ask("/livesinger/song/seek", 12.0))["status"] == "ok"
        refused = await osc.ask("/livesinger/tempo", 90.0)
        assert refused["status"] == "error", refused
        assert "beats 8..28" in str(refused["data"]) and "\n" not in str(refused["data"])
        assert abs(await beats_per_s(show) - 2.0) < 0.05
        # after the span: a tempo cue re-times the voice
        assert (await osc.ask("/livesinger/song/seek", 30.0))["status"] == "ok"
        after = await osc.ask("/livesinger/tempo", 90.0)
        assert after["status"] == "ok", after
        assert abs(await beats_per_s(show) - 1.5) < 0.05
        # before the span: the override holds until beat 8, where the backing starts with
        # the voice, and the score's tempo runs from there
        seek = await osc.ask("/livesinger/song/seek", 1.0)
        assert seek["status"] == "ok", seek
        before = await osc.ask("/livesinger/tempo", 90.0)
        assert before["status"] == "ok", before
        await asyncio.sleep(7 * 60 / 90 + 1.6)
        assert abs(await beats_per_s(show) - 2.0) < 0.05
        pacer = show.handles["pacer"]
    at, beat = int(before["data"]["at_sample"]), float(before["data"]["from_beat"])  # type: ignore[index]
    span_at = at + int(round((FIRST - beat) * 60 / 90 * SR))  # the voice reaches beat 8
    program, _ = sf.read(tmp_path / "rec" / "audio.wav", dtype="float32")
    voice, _ = sf.read(tmp_path / "rec" / "voice.wav", dtype="float32")
    n = min(len(program), len(voice))
    clicks = np.nonzero(np.abs(program[:n] - voice[:n]) > 0.25)[0]
    clicks = clicks[clicks > at]
    expected = [span_at + k * BEAT for k in range(3) if span_at + k * BEAT < n]
    budget = xrun_budget(pacer.chunks_played)  # type: ignore[attr-defined]
    assert len(expected) == 3 and len(clicks) >= 3 - budget, (clicks, expected)
    assert all(np.min(np.abs(np.array(expected) - c)) <= MS for c in clicks[:3]), \
        (clicks[:3], expected)
