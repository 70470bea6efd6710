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
from streams.timecode.mtc import MtcReader, full_frame, quarter_frames
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


class LocatingSender(MtcSender):
    """``MtcSender`` that can also send a full frame (a locate) for the timecode now, from
    its own thread (one writer on the port)."""

    def __init__(self, port: Any, rate: Rate, start: Timecode, speed: float) -> None:
        super().__init__(port, rate, start, speed)
        self.locate_now = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stopped.is_set():
            due = self.t0 + i * self.quarter_s / self.speed
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if self.locate_now.is_set():
                self.locate_now.clear()
                frames = int(self.tc_at(time.monotonic()) * float(self.rate.fps))
                self.port.send(full_frame(Timecode.from_frames(frames, self.rate)))
            run, piece = divmod(i, 8)
            self.port.send(quarter_frames(self.start_tc.add_frames(2 * run))[piece])
            i += 1


async def until(show: Show, check: Any, timeout_s: float = 4.0) -> dict[str, Any]:
    """Poll ``/status`` until ``check(status)`` holds (the last status either way)."""
    end = time.monotonic() + timeout_s
    while True:
        status = await show.status()
        if check(status) or time.monotonic() > end:
            return status
        await asyncio.sleep(0.05)


async def test_a_director_stop_holds_the_chase_until_play_or_a_locate(
        tmp_path: Path, jack_midi: JackMidi) -> None:
    from tests.stage.test_serve_live import UdpOsc

    rate = RATES["25"]
    source = jack_midi.virtual_output("timecode source")
    async with Show(song=str(make_song(tmp_path)), chase="mtc:timecode source") as show:
        osc = UdpOsc(int(show.ports["osc"]))  # type: ignore[call-overload]
        sender = LocatingSender(source, rate, Timecode(0, 0, 3, 0, rate), 1.001)
        sender.start()
        try:
            def chasing(s: dict[str, Any]) -> bool:
                return bool(s["playing"]) and s["timecode"]["state"] == "locked"

            def error(s: dict[str, Any]) -> float:  # the song against the timecode, frames
                t = show.mono_s(float(s["show_s"]))
                return (float(s["beat"]) * BEAT_S - sender.tc_at(t)) * 25

            locked = await until(show, chasing, 6.0)
            assert chasing(locked), locked
            # song.stop: the song stops and stays stopped while timecode runs on (the chase
            # would have re-placed it within 0.1 s)
            stop = await osc.ask("/livesinger/song/stop")
            assert stop["status"] == "ok", stop
            await asyncio.sleep(1.0)
            held = [await show.status() for _ in range(3)]
            for s in held:
                assert s["playing"] is False and s["beat"] is None, s
                assert s["timecode"]["state"] == "stopped", s
                assert s["timecode"]["held_by"] == "song.stop", s
                assert s["timecode"]["reading"] in ("locked", "locking"), s
            # a timecode locate (a full frame) ends a stop's hold: placed by the timecode
            sender.locate_now.set()
            back = await until(show, lambda s: chasing(s) and abs(error(s)) <= 2.0)
            assert chasing(back) and abs(error(back)) <= 2.0, back
            assert back["timecode"]["held_by"] is None, back
            # panic holds too, and a locate does not end it ...
            panic = await osc.ask("/livesinger/panic")
            assert panic["status"] == "ok", panic
            await asyncio.sleep(0.5)
            sender.locate_now.set()
            await asyncio.sleep(1.0)
            after_panic = await show.status()
            assert after_panic["playing"] is False, after_panic
            assert after_panic["timecode"]["state"] == "stopped", after_panic
            assert after_panic["timecode"]["held_by"] == "panic", after_panic
            relocations = after_panic["timecode"]["relocations"]
            assert relocations >= 3, after_panic  # the start, and both full frames were read
            # ... a song.play does: the chase places the song where the timecode is
            play = await osc.ask("/livesinger/song/play")
            assert play["status"] == "ok", play
            again = await until(show, lambda s: chasing(s) and abs(error(s)) <= 2.0)
            assert chasing(again) and abs(error(again)) <= 2.0, again
        finally:
            sender.stopped.set()
            sender.join()


def make_quiet_song(folder: Path, beats: int = 80) -> Path:
    """A 120 bpm MIDI song of ``beats`` beats whose one note is its last beat: the voice is
    silent where the tests measure the backing (the program's watermark marks the voice too:
    what a test subtracts must be silence)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000))
    track.append(mido.Message("note_on", note=69, velocity=100, time=480 * (beats - 1)))
    track.append(mido.Message("note_off", note=69, velocity=0, time=240))
    song = folder / "quiet.mid"
    mid.save(song)
    return song


def make_backing(folder: Path, song: Path, beats: int = 80) -> tuple[float, float]:
    """Beside ``song``: a backing of two stems, a 1 kHz tone (amplitude 0.05) and a click
    (0.8) on every beat. Returns (tone amplitude, tone frequency)."""
    n = beats * SR // 2 + SR
    tone = (0.05 * np.sin(2 * np.pi * 1000.0 * np.arange(n) / SR)).astype(np.float32)
    click = np.zeros(n, np.float32)
    click[np.arange(beats) * SR // 2] = 0.8
    sf.write(folder / "tone.wav", tone, SR, subtype="FLOAT")
    sf.write(folder / "click.wav", click, SR, subtype="FLOAT")
    song.with_suffix(".backing.yaml").write_text(
        "stems:\n  - file: tone.wav\n    name: tone\n  - file: click.wav\n    name: click\n")
    return 0.05, 1000.0


async def test_the_backing_is_resampled_not_jumped_while_chasing_drift(
        tmp_path: Path, jack_midi: JackMidi) -> None:
    rate = RATES["25"]
    song = make_quiet_song(tmp_path)
    amplitude, freq = make_backing(tmp_path, song)
    source = jack_midi.virtual_output("timecode source")
    record = tmp_path / "rec"
    async with Show(song=str(song), chase="mtc:timecode source", record=record) as show:
        sender = MtcSender(source, rate, Timecode(0, 0, 3, 0, rate), 1.001)
        sender.start()
        try:
            await asyncio.sleep(9.0)
            status = await show.status()
        finally:
            sender.stopped.set()
            sender.join()
        pacer = show.handles["pacer"]
        chase_end = pacer.clock.now_sample()  # type: ignore[attr-defined]
        clock = pacer.clock  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)
    assert status["timecode"]["state"] == "locked", status
    assert status["timecode"]["relocations"] == 1, status  # one locate: drift is ridden
    program, _ = sf.read(record / "audio.wav", dtype="float32")
    voice, _ = sf.read(record / "voice.wav", dtype="float32")
    n = min(len(program), len(voice), chase_end)
    backing = (program[:n] - voice[:n]).astype(np.float64)
    clicks = np.nonzero(np.abs(backing) > 0.3)[0]
    clicks = clicks[np.concatenate(([True], np.diff(clicks) > 100))]  # one per click
    start = int(np.nonzero(np.abs(backing) > 0.01)[0][0]) + SR // 20  # after the locate
    assert n - start > 5 * SR, (start, n)
    # where the timecode puts each click: the show sample whose instant the sender's
    # timecode names the click's beat; once the chase settled (3 s after its locate: it
    # pulls in the first quarter frame's lateness at 0.5 % at most), found within 1 ms of
    # it, relative to the median (the MIDI path's constant latency), all through the drift
    errors_ms = []
    for c in clicks:
        if c < start + 3 * SR:
            continue
        peak = c - 4 + int(np.argmax(np.abs(backing[c - 4:c + 5])))
        tc = sender.tc_at(float(clock.ns_of(int(peak))) / 1e9)
        beat = round(tc / BEAT_S)
        errors_ms.append((tc - beat * BEAT_S) * 1000.0)
    errors = np.array(errors_ms)
    assert len(errors) >= 8, errors
    middle = float(np.median(errors))
    print(f"clicks against the timecode: median {middle:+.3f} ms, spread "
          f"{np.ptp(errors):.3f} ms", errors)
    assert int(np.sum(np.abs(errors - middle) > 1.0)) <= 1, errors
    budget = pacer.xruns  # type: ignore[attr-defined]
    assert abs(middle) < 40.0, errors  # within a frame at 25 fps
    # the tone has no discontinuity: its second difference stays within the bound of a
    # 1 kHz sine (at up to the chase's +0.5 %, with the program's watermark: its band gains
    # move the tone ±10 %, its noise is 30 dB under) all through the chase, but next to the
    # clicks (the watermark's filters and its noise after a click: 2048 samples)
    d2 = np.abs(backing[start + 1:n - 1] - 2 * backing[start:n - 2] + backing[start - 1:n - 3])
    bound = amplitude * (2 * np.sin(np.pi * freq * 1.005 / SR)) ** 2 * 1.5
    near_click = np.zeros(len(d2), bool)
    for c in clicks:
        near_click[max(0, c - start - 300):max(0, c - start + 2048)] = True
    bad = np.nonzero((d2 > bound) & ~near_click)[0]
    bursts = int(np.sum(np.diff(bad) > 480)) + 1 if len(bad) else 0
    print(f"second difference: max {d2[~near_click].max():.2e} against {bound:.2e}; "
          f"{len(bad)} samples over in {bursts} bursts; xruns {budget}")
    assert bursts <= 2 * budget, (bursts, (bad[:20] + start).tolist())
