"""``serve`` driven live by real OSC clients; the recording is measured.

oscsend (liblo-tools) and python-osc over TCP/SLIP talk to the engine over loopback; the test
reads what the engine streamed (DIR/audio.wav) and checks the sung pitch and when it starts.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from singer.contracts import SAMPLE_RATE_HZ, Note
from stage.serve import ServeOptions, serve
from tests.measure import f0_track, note_cents_errors, xrun_budget

SR = SAMPLE_RATE_HZ


class Engine:
    """``livesinger serve`` running in this process on free ports, recording to a folder."""

    def __init__(self, record: Path, **options: object) -> None:
        options = {"audible_label": "off", **options}  # onsets are measured from sample 0
        self.opts = ServeOptions(osc_port=0, http_port=None, headless=True, record=record,
                                 **options)  # type: ignore[arg-type]
        self.ports: dict[str, object] = {}
        self._ready = asyncio.Event()
        self.task: asyncio.Task[dict[str, object]] | None = None

    async def __aenter__(self) -> Engine:
        def ready(ports: dict[str, object]) -> None:
            self.ports = ports
            self._ready.set()

        self.task = asyncio.ensure_future(serve(self.opts, ready))
        await asyncio.wait_for(self._ready.wait(), 30)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    @property
    def osc(self) -> int:
        return int(self.ports["osc"])  # type: ignore[arg-type]

    def audio(self) -> np.ndarray:
        samples, rate = sf.read(self.opts.record / "audio.wav", dtype="float32")  # type: ignore[operator]
        assert rate == SR
        return samples


class UdpOsc:
    """A python-osc style UDP controller that also reads the engine's replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = port

    def send(self, address: str, *args: object) -> None:
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(arg)
        self.sock.sendto(builder.build().dgram, ("127.0.0.1", self.port))

    def reply(self) -> dict[str, object]:
        data, _ = self.sock.recvfrom(65536)
        message = OscMessage(data)
        assert message.address.startswith("/reply/")
        return json.loads(message.params[0])

    async def ask(self, address: str, *args: object) -> dict[str, object]:
        self.send(address, *args)
        return await asyncio.to_thread(self.reply)


def onset(audio: np.ndarray, after: int, threshold: float = 0.01) -> int:
    loud = np.nonzero(np.abs(audio[after:]) > threshold)[0]
    return after + int(loud[0]) if len(loud) else -1


@pytest.mark.timeout(90)
async def test_oscsend_note_on_is_sung_at_its_pitch_within_one_chunk(tmp_path: Path) -> None:
    async with Engine(tmp_path) as engine:
        ctl = UdpOsc(engine.osc)
        await asyncio.sleep(0.3)
        sent: list[tuple[int, float]] = []
        for pitch in (62, 69, 65):
            proc = await asyncio.create_subprocess_exec(
                "oscsend", "localhost", str(engine.osc), "/livesinger/note/on", "ifs",
                str(pitch), "0.8", "a")
            assert await proc.wait() == 0
            sent.append((pitch, time.monotonic()))
            await asyncio.sleep(0.6)
            reply = await ctl.ask("/livesinger/note/off", pitch)
            assert reply["status"] == "ok", reply
            await asyncio.sleep(0.25)
        status = await ctl.ask("/livesinger/thump")
        assert status["status"] == "ok"
    audio = engine.audio()
    # three notes, each sung at its pitch, starting within a chunk of its note-on
    starts, cursor = [], 0
    for _ in sent:
        start = onset(audio, cursor)
        assert start > 0
        starts.append(start)
        cursor = start + int(0.7 * SR)
    notes = [Note(s, s + int(0.55 * SR), p, "a", ("a",)) for s, (p, _) in zip(starts, sent,
                                                                             strict=True)]
    errors = note_cents_errors(audio, notes)
    assert max(abs(e) for e in errors) < 25, errors
    gaps = np.diff(starts) / SR
    sent_gaps = np.diff([t for _, t in sent])
    # the engine kept the controller's timing (within a chunk or two of scheduling noise)
    assert np.all(np.abs(gaps - sent_gaps) < 0.03), (gaps, sent_gaps)


@pytest.mark.timeout(90)
async def test_lyrics_and_legato_over_tcp_slip_and_bad_packets_change_nothing(
        tmp_path: Path) -> None:
    from pythonosc.tcp_client import SimpleTCPClient

    async with Engine(tmp_path) as engine:
        udp = UdpOsc(engine.osc)
        reply = await udp.ask("/livesinger/lyric", "sa la")
        assert reply["status"] == "ok", reply
        # malformed and unknown input in between: error replies, nothing sung, nothing lost
        udp.sock.sendto(b"/livesinger/note/on\x00,i", ("127.0.0.1", engine.osc))  # truncated
        truncated = await asyncio.to_thread(udp.reply)
        assert truncated["status"] == "error" and "bad packet" in str(truncated["data"])
        bad = await udp.ask("/livesinger/note/on", "sixty")
        assert bad["status"] == "error" and "pitch" in json.dumps(bad)
        bad = await udp.ask("/livesinger/nonsense", 1)
        assert bad["status"] == "error"
        tcp = SimpleTCPClient("127.0.0.1", engine.osc, mode="1.1")
        tcp.send_message("/livesinger/note/on", [60, 0.9])  # takes "sa" from the lyric queue
        await asyncio.sleep(0.5)
        tcp.send_message("/livesinger/note/on", [67, 0.9])  # legato: "la", no note-off between
        await asyncio.sleep(0.5)
        tcp.send_message("/livesinger/note/off", [67])
        await asyncio.sleep(0.4)
        tcp.close()
    audio = engine.audio()
    times, f0 = f0_track(audio, 150, 600)
    voiced = times[f0 > 0]
    assert len(voiced) > 50
    first = voiced[0]
    low = np.median(f0[(times > first + 0.15) & (times < first + 0.4)])
    high = np.median(f0[(times > first + 0.65) & (times < first + 0.9)])
    assert abs(1200 * np.log2(low / 261.63)) < 25
    assert abs(1200 * np.log2(high / 392.0)) < 25
    # legato: no silence between the two notes
    a, b = int((first + 0.3) * SR), int((first + 0.8) * SR)
    window = int(0.02 * SR)
    rms = [np.sqrt(np.mean(audio[i:i + window] ** 2)) for i in range(a, b, window)]
    assert min(rms) > 0.01
    # the first syllable started with /s/: noise before the voicing
    s_start = onset(audio, 0, 0.003)
    assert s_start / SR < first - 0.04


@pytest.mark.timeout(90)
async def test_mosquitto_pub_drives_the_engine_and_state_is_published(tmp_path: Path) -> None:
    from tests.streams.test_mqtt import Broker, pub, sub_one

    broker = Broker(tmp_path)
    await broker.start()
    try:
        async with Engine(tmp_path / "rec", mqtt=broker.url, show="gala") as engine:
            # the bridge has subscribed once it has published its state (it does so after)
            await sub_one(broker, "livesinger/gala/state")
            await pub(broker, "livesinger/gala/cmd/lyric", '{"text": "好"}')
            await pub(broker, "livesinger/gala/cmd/note/on", '{"pitch": 64, "velocity": 0.9}')
            await asyncio.sleep(1.2)  # the retained state is republished every second
            state = json.loads(await sub_one(broker, "livesinger/gala/state"))
            assert state["singing"] and state["singing"][0]["lyric"] == "好", state
            assert state["xruns"] <= xrun_budget(int(state["show_s"] / 0.005)), state  # 5 ms chunks
            await pub(broker, "livesinger/gala/cmd/note/on", '{"pitch": "high"}')  # refused
            await pub(broker, "livesinger/gala/cmd/note/off", '{"pitch": 64}')
            await asyncio.sleep(0.3)
            online = await sub_one(broker, "livesinger/gala/online")
            assert online == "true"
    finally:
        await broker.stop()
    audio = engine.audio()
    start = onset(audio, 0)
    assert start > 0
    note = Note(start, start + int(1.0 * SR), 64, "好", ("kh", "a", "u"))
    assert abs(note_cents_errors(audio, [note], min_body_s=0.1)[0]) < 25
    # one note only: the refused command sang nothing
    assert onset(audio, start + int(1.6 * SR)) == -1
