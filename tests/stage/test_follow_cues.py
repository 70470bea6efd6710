"""Follow mode armed during a show and fed note events over OSC and MQTT: ``oscsend`` arms
it, python-osc plays the performer's note-ons in real time at 126 bpm (the score says 100),
and the idol's onsets measured in the recording land with the performer's."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pythonosc.udp_client import SimpleUDPClient

from mocap.performer_midi import midi_backend_missing
from singer.contracts import SAMPLE_RATE_HZ
from singer.follow import corpus
from singer.follow.evaluate import idol_asynchrony_ms, summary
from stage.serve import ServeOptions, serve
from tests.stage.test_duet_cli import duet_musicxml
from tests.streams.test_mqtt import Broker, pub

pytestmark = pytest.mark.timeout(90)


async def _ready(handles: dict[str, object], task: asyncio.Future[object]) -> None:
    for _ in range(600):
        pacer = handles.get("pacer")
        if pacer is not None and pacer.chunks_played > 0:  # type: ignore[attr-defined]
            return
        assert not task.done(), task.exception()
        await asyncio.sleep(0.05)
    raise AssertionError("the show did not start")


async def _oscsend(port: int, *args: str) -> int:
    proc = await asyncio.create_subprocess_exec("oscsend", "127.0.0.1", str(port), *args)
    return await asyncio.wait_for(proc.wait(), 10)


async def test_osc_arms_follow_and_notes_retime_the_idol(tmp_path: Path) -> None:
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    score = corpus.score_a(4)
    perf = corpus.perform(score, bpm=126.0, sing=False)
    handles: dict[str, object] = {}
    opts = ServeOptions(osc_port=0, http_port=None, headless=True, record=tmp_path / "rec",
                        song=str(xml), audible_label="off")
    task = asyncio.ensure_future(serve(opts, handles=handles))
    try:
        await _ready(handles, task)
        director, pacer, desk = handles["director"], handles["pacer"], handles["follow"]
        port = handles["osc"].port  # type: ignore[attr-defined]
        client = SimpleUDPClient("127.0.0.1", port)
        client.send_message("/livesinger/perform/note_on", [60, 0.8])  # not armed yet
        assert await _oscsend(port, "/livesinger/follow/start", "s", "nobody") == 0
        await asyncio.sleep(0.2)
        assert director.status()["follow"]["armed"] is False  # type: ignore[attr-defined]
        assert await _oscsend(port, "/livesinger/follow/start", "s", "performer") == 0
        for _ in range(200):
            if desk.start_sample is not None:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        start = int(desk.start_sample)  # type: ignore[attr-defined]
        for note in perf.notes:  # each note-on sent when the performer plays it
            due = start + perf.tempo_map.beat_to_sample(note.beat_on)
            while pacer.playout_sample < due:  # type: ignore[attr-defined]
                await asyncio.sleep(0.002)
            client.send_message("/livesinger/perform/note_on", [int(note.pitch_midi), 0.7])
        end = start + perf.tempo_map.beat_to_sample(16.0) + SAMPLE_RATE_HZ
        while pacer.playout_sample < end:  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
        following = director.status()["follow"]  # type: ignore[attr-defined]
        assert await _oscsend(port, "/livesinger/follow/stop") == 0
        await asyncio.sleep(0.2)
        stopped = director.status()["follow"]  # type: ignore[attr-defined]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert following["armed"] and following["input"] == "note events"
    assert following["notes_heard"] == len(perf.notes) and following["events"] == len(perf.notes)
    assert abs(following["bpm"] / 126.0 - 1) < 0.05, following
    assert stopped == {"armed": False, "arms": 1}
    audio, _ = sf.read(str(tmp_path / "rec" / "audio.wav"), dtype="float32")
    values = [v for v in idol_asynchrony_ms(score, perf, audio[start:], [(0, 4)])
              if np.isfinite(v)]  # (a note cut by a rare xrun under load has no onset)
    med, p95 = summary(values)
    # At the score's own 100 bpm the idol would be seconds behind by bar 4.
    assert len(values) >= 8 and med <= 40.0 and p95 <= 100.0, values


async def test_mqtt_arms_follow_and_feeds_note_events(tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    await broker.start()
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    handles: dict[str, object] = {}
    opts = ServeOptions(osc_port=None, http_port=None, headless=True, song=str(xml),
                        audible_label="off", mqtt=broker.url, show="duet")
    task = asyncio.ensure_future(serve(opts, handles=handles))
    try:
        await _ready(handles, task)
        director = handles["director"]
        cmd = "livesinger/duet/cmd"
        await asyncio.sleep(0.5)  # the bridge subscribes
        await pub(broker, f"{cmd}/follow/start", json.dumps({"part": "2"}))  # by number
        for _ in range(100):
            state = director.status()["follow"]  # type: ignore[attr-defined]
            if state["armed"]:
                break
            await asyncio.sleep(0.05)
        assert state["part"] == "Idol", state
        await pub(broker, f"{cmd}/follow/start", json.dumps({"part": "Performer"}))
        for pitch in (60, 62, 64, 65):
            await pub(broker, f"{cmd}/perform/note_on",
                      json.dumps({"pitch": pitch, "velocity": 0.8}))
            await asyncio.sleep(0.3)
        for _ in range(100):
            state = director.status()["follow"]  # type: ignore[attr-defined]
            if state.get("events", 0) >= 4:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await broker.stop()
    assert state["armed"] and state["part"] == "Performer" and state["arms"] == 2, state
    assert state["notes_heard"] == 4 and state["events"] == 4, state


def test_performer_midi_port_without_a_backend_is_one_line(tmp_path: Path) -> None:
    """``--performer-midi PORT`` where ports cannot be opened (no python-rtmidi, no ALSA
    sequencer: this machine) ends the start with one line naming what is missing."""
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=2)
    done = subprocess.run(
        [sys.executable, "-m", "stage.cli", "serve", "--headless", "--osc-port", "0",
         "--http-port", "0", "--song", str(xml), "--follow", "performer",
         "--performer-midi", "Keyboard 1", "--audible-label", "off"],
        capture_output=True, text=True, timeout=120, check=False)
    missing = midi_backend_missing()
    want = missing if missing is not None else "MIDI port 'Keyboard 1' not found"
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("livesinger: error")
             or "MIDI" in ln]
    assert done.returncode == 2 and len(lines) == 1 and want in lines[0], done.stderr
