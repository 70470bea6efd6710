"""Timecode in a real show: ``serve --chase mtc:PORT`` fed by MTC the test sends from a real
JACK MIDI port, ``serve --chase ltc:FILE`` from generated LTC, and ``serve --mtc-out PORT``
read back from a JACK port. Positions are measured from the show: ``/status`` (the song beat
at the show sample playing, and the chase's state) over HTTP, against the timecode the test
sent at the instant the show clock plays that sample."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from stage.serve import ServeError, ServeOptions, serve
from streams.timecode.ltc import encode
from streams.timecode.mtc import MtcReader, quarter_frames
from streams.timecode.smpte import RATES, Rate, Timecode
from tests import midi_ports
from tests.midi_ports import JackMidi

jack_midi = midi_ports.jack_midi  # the fixture: a private JACK server per test

SR = SAMPLE_RATE_HZ
BEAT_S = 0.5  # the test songs run at 120 bpm


def make_song(folder: Path, beats: int = 80) -> Path:
    """A 120 bpm MIDI song: a short A4 on every beat (beat b at score time b / 2 s)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000))
    for _ in range(beats):
        track.append(mido.Message("note_on", note=69, velocity=100, time=0))
        track.append(mido.Message("note_off", note=69, velocity=0, time=240))
        track.append(mido.Message("note_on", note=69, velocity=0, time=240))
    song = folder / "beats.mid"
    mid.save(song)
    return song


class Show:
    """``serve`` in this process (headless, HTTP and OSC on free ports) with its parts."""

    def __init__(self, **options: Any) -> None:
        options = {"audible_label": "off", "synthesis": "thread", **options}
        self.opts = ServeOptions(osc_port=0, http_port=0, headless=True, **options)
        self.handles: dict[str, object] = {}
        self.ports: dict[str, object] = {}
        self._ready = asyncio.Event()
        self.task: asyncio.Task[dict[str, object]] | None = None

    async def __aenter__(self) -> Show:
        def ready(ports: dict[str, object]) -> None:
            self.ports = ports
            self._ready.set()

        self.task = asyncio.ensure_future(serve(self.opts, ready, self.handles))
        done, _ = await asyncio.wait({self.task, asyncio.ensure_future(self._ready.wait())},
                                     timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            self.task.result()  # raises what stopped it
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def status(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.ports['http']}/status"

        def get() -> dict[str, Any]:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return dict(json.loads(reply.read()))

        return await asyncio.to_thread(get)

    def mono_s(self, show_s: float) -> float:
        """The ``time.monotonic()`` instant the show clock plays show time ``show_s``."""
        clock = self.handles["pacer"].clock  # type: ignore[attr-defined]
        return float(clock.ns_of(int(round(show_s * SR)))) / 1e9


class MtcSender(threading.Thread):
    """Sends quarter frames from ``start`` at ``speed`` × real time on a MIDI port (its own
    thread, each at its due instant); ``tc_at(t)`` is the timecode it says at monotonic t."""

    def __init__(self, port: Any, rate: Rate, start: Timecode, speed: float) -> None:
        super().__init__(daemon=True)
        self.port, self.rate, self.start_tc, self.speed = port, rate, start, speed
        self.quarter_s = 1.0 / float(rate.fps) / 4
        self.t0 = time.monotonic() + 0.05
        self.stopped = threading.Event()

    def tc_at(self, mono_s: float) -> float:
        return self.start_tc.seconds + (mono_s - self.t0) * self.speed

    def run(self) -> None:
        i = 0
        while not self.stopped.is_set():
            due = self.t0 + i * self.quarter_s / self.speed
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            run, piece = divmod(i, 8)
            self.port.send(quarter_frames(self.start_tc.add_frames(2 * run))[piece])
            i += 1


async def watch(show: Show, tc_at: Any, fps: float, seconds: float,
                period_s: float = 0.1) -> list[tuple[float, float, dict[str, Any]]]:
    """Every ``period_s``: (monotonic instant of the status's show sample, the song's error
    against the timecode in frames, the status's ``timecode``)."""
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        status = await show.status()
        if status["beat"] is not None:
            t = show.mono_s(float(status["show_s"]))
            song_s = float(status["beat"]) * BEAT_S
            out.append((t, (song_s - tc_at(t)) * fps, status["timecode"]))
        await asyncio.sleep(period_s)
    return out


def error_drift(seen: list[tuple[float, float, dict[str, Any]]], since: float,
                fps: float) -> float:
    """How fast the song's error against the timecode grows after ``since`` (seconds per
    second, least squares): 0 when the song runs at the timecode's speed; ±0.001 if it ran
    at its own speed against timecode running 0.1 % off."""
    t = np.array([t for t, _, _ in seen if t >= since])
    err = np.array([e for t, e, _ in seen if t >= since]) / fps
    return float(np.polyfit(t - t[0], err, 1)[0])


@pytest.mark.parametrize(("rate_name", "speed", "synthesis"),
                         [("25", 1.001, "thread"), ("30", 0.999, "process")])
async def test_the_show_chases_mtc_from_a_midi_port(tmp_path: Path, jack_midi: JackMidi,
                                                    rate_name: str, speed: float,
                                                    synthesis: str) -> None:
    rate = RATES[rate_name]
    fps = float(rate.fps)
    source = jack_midi.virtual_output("timecode source")
    async with Show(song=str(make_song(tmp_path)), chase="mtc:timecode source",
                    synthesis=synthesis) as show:
        before = await show.status()
        assert before["timecode"]["state"] == "idle" and before["playing"] is False, before
        start = Timecode(0, 0, 3, 0, rate)  # beat 6 of the song
        sender = MtcSender(source, rate, start, speed)
        sender.start()
        try:
            seen = await watch(show, sender.tc_at, fps, 9.0, period_s=0.05)
        finally:
            sender.stopped.set()
            sender.join()
        stop_s = time.monotonic()
        await asyncio.sleep(0.8)
        after = await show.status()
        later = await show.status()
    # locked within 2 frames in under 2 s of the first quarter frame, and it stays there
    locked = [t for t, err, tc in seen if tc["state"] == "locked" and abs(err) <= 2.0]
    assert locked, seen
    assert locked[0] - sender.t0 < 2.0, (locked[0] - sender.t0, seen)
    after_lock = [(t, err) for t, err, _ in seen if t >= locked[0]]
    assert len(after_lock) >= 60 and max(abs(e) for _, e in after_lock) <= 2.0, after_lock
    # the ±0.1 % drift is ridden, not jumped: one locate (the start); the song runs at the
    # timecode's speed (measured on the show: song position against show time), and the
    # status says that speed
    assert abs(error_drift(seen, locked[0] + 1.0, fps)) < 5e-4, seen
    last = seen[-1][2]
    assert last["relocations"] == 1, last
    assert abs(last["speed"] - speed) < 5e-4, last
    # the timecode stopped: the show freewheels on at the learnt speed and says so
    assert after["timecode"]["state"] == "freewheel", after
    assert later["beat"] >= after["beat"], (after, later)
    assert show.mono_s(float(after["show_s"])) > stop_s


async def test_the_show_chases_ltc_from_a_sound_file(tmp_path: Path) -> None:
    rate = RATES["25"]
    start = Timecode(0, 0, 2, 0, rate)
    speed = 0.999
    ltc = tmp_path / "ltc.wav"
    sf.write(ltc, encode(start, 25 * 6, speed=speed), SR, subtype="FLOAT")
    async with Show(song=str(make_song(tmp_path)), chase=f"ltc:{ltc}",
                    timecode_rate="25") as show:
        timecode = show.handles["timecode"]
        source = timecode.chase.source  # type: ignore[attr-defined]
        while source.file_origin_sample is None:
            await asyncio.sleep(0.01)
        origin = show.mono_s(source.file_origin_sample / SR)  # the file's sample 0 plays here

        def tc_at(t: float) -> float:
            return start.seconds + (t - origin) * speed

        seen = await watch(show, tc_at, 25.0, 5.0)
        await asyncio.sleep(1.5)  # the file ends after 6 s: timecode stops
        after = await show.status()
    locked = [t for t, err, tc in seen if tc["state"] == "locked" and abs(err) <= 2.0]
    assert locked and locked[0] - origin < 2.0, seen
    after_lock = [err for t, err, _ in seen if t >= locked[0]]
    assert len(after_lock) >= 15 and max(map(abs, after_lock)) <= 2.0, after_lock
    assert seen[-1][2]["relocations"] == 1, seen[-1]
    assert after["timecode"]["state"] == "freewheel", after


async def test_mtc_out_follows_the_song_position(tmp_path: Path, jack_midi: JackMidi) -> None:
    lights = jack_midi.timed_input("lights")
    from tests.stage.test_serve_live import UdpOsc

    async with Show(song=str(make_song(tmp_path)), mtc_out="midi:lights",
                    timecode_rate="30", timecode_start="01:00:00:00") as show:
        osc = UdpOsc(int(show.ports["osc"]))  # type: ignore[call-overload]
        play = await osc.ask("/livesinger/song/play", 4.0)
        assert play["status"] == "ok", play
        await asyncio.sleep(2.0)
        seek = await osc.ask("/livesinger/song/seek", 40.0)
        assert seek["status"] == "ok", seek
        await asyncio.sleep(2.0)
        stop = await osc.ask("/livesinger/song/stop")
        assert stop["status"] == "ok", stop
        await asyncio.sleep(0.5)
        status = await show.status()
        pacer = show.handles["pacer"]
    assert status["timecode"]["lead"]["messages"] > 200, status
    heard = lights.arrivals()

    segments = [(int(r["data"]["at_sample"]), float(r["data"]["from_beat"]))  # type: ignore[index]
                for r in (play, seek)]
    stop_at = int(stop["data"]["at_sample"])  # type: ignore[index]

    def song_s(t: float) -> float | None:
        """The song position (s) the show played at monotonic instant ``t``."""
        sample = show.handles["pacer"].clock.sample_at(int(t * 1e9))  # type: ignore[attr-defined]
        if sample >= stop_at:
            return None
        at, beat = max((s for s in segments if s[0] <= sample), default=(None, 0.0))
        return None if at is None else beat * BEAT_S + (sample - at) / SR

    reader = MtcReader()
    errors, locates = [], []
    for t, msg in heard:
        got = reader.feed(msg)
        if got is None:
            continue
        if got.full_frame:
            locates.append(got.timecode)
            continue
        want = song_s(t)
        if want is not None:
            errors.append((got.seconds - 3600.0 - want) * 30)
    assert [str(tc) for tc in locates[:2]] == ["01:00:02:00", "01:00:20:00"], locates
    assert len(errors) > 100, errors
    # within 2 frames, but for what was sent while the show itself ran late (its xruns: the
    # machine stalled the whole process) and the run of eight that re-reads the timecode
    late_s = pacer.xruns * pacer.config.chunk_samples / SR  # type: ignore[attr-defined]
    budget = int(late_s * 30 * 4) + 8
    assert sum(abs(e) > 2.0 for e in errors) <= budget, (budget, errors)
    assert float(np.median(np.abs(errors))) <= 1.0, errors


async def test_a_missing_mtc_port_is_one_line_and_nothing_runs(tmp_path: Path,
                                                               jack_midi: JackMidi) -> None:
    jack_midi.virtual_output("desk")
    with pytest.raises(ServeError) as err:
        async with Show(song=str(make_song(tmp_path, 8)), chase="mtc:nowhere"):
            pass
    message = str(err.value)
    assert "\n" not in message and "'nowhere' not found" in message and "desk" in message, \
        message
    with pytest.raises(ServeError, match="--chase 'smpte:x'"):
        async with Show(chase="smpte:x"):
            pass
