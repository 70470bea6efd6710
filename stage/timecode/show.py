"""Timecode wired into the show: the song's transport chases MTC or LTC, and the song
position leads MTC out (docs/timecode.md).

Chase: a source (``mtc:PORT``: a MIDI port; ``ltc:mic[:DEV]`` or ``ltc:FILE``: LTC audio)
stamps every timecode position with the show sample it arrived at (the show clock is the
local clock) and queues it; ``ShowChase.run`` feeds them to the ``TimecodeChase`` model every
few milliseconds and steers the song there through ``Director.chase_to``: the song position
follows the chase's ``position_at`` and the score plays at its ``ratio`` (a re-timing of the
notes, not a resampling of the audio: the voice's pitch does not move; the backing, which
cannot be re-timed, is resampled at that ratio: ``Director.chase_listeners``). A director's
stop holds the chase (``Director.transport_hold``). Lead: ``MtcLead`` follows the Director's
transport and sends the quarter frames of each played chunk as it plays.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from typing import Any

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from stage.director import Director
from stage.timecode.chase import ChaseOptions, TimecodeChase
from streams.cue import Cue, CueHandler
from streams.timecode.ltc import LtcDecoder
from streams.timecode.mtc import MtcGenerator, MtcReader, full_frame
from streams.timecode.smpte import Rate, Timecode

log = logging.getLogger(__name__)

STEER_PERIOD_S = 0.01
"""How often queued timecode is fed to the chase and the song steered."""
STEER_MIN_INTERVAL_S = 0.1
"""A speed trim re-times the song at most this often (each re-renders the lookahead)."""
STEER_RATIO_STEP = 5e-4
"""A trim when the chase's ratio moved this much from the one the song plays at..."""
STEER_ERROR_SAMPLES = 12
"""... or the song's position strays this far (0.25 ms) from the chase's."""
MAX_QUEUED = 4096
SPEED_WINDOW_S = 8.0
"""``speed`` in the status: the timecode's speed against the show clock, measured over this
much of the latest timecode (since the last locate)..."""
SPEED_BIN_S = 0.5
"""... from the least late arrival in each stretch this long (arrivals are only ever late:
the least late ones lie on the line), by least squares."""
FIT_WINDOW_S = 4.0
"""The chase is fed de-jittered arrivals: the line through the latest this much of the
timecode's arrivals (since the last locate)..."""
FIT_BIN_S = 0.25
"""... fitted through the least late arrival of each stretch this long (MIDI over JACK
arrives up to a period late, in steps: raw, they swing the loop between its limits)."""
FIT_OUTLIER_S = 0.04
"""An arrival this far off the line is a jump in the timecode: the fit starts again."""
LOOP_TIME_CONSTANT_S = 1.5
"""The show's chase loop once within 1 ms (``ChaseOptions.settled_time_constant_s``):
slower than the model's 0.4 s (still used to pull a larger error in), so what jitter the fit
leaves moves the ratio by ~10⁻⁴, not to its limits."""


class TimecodeSpecError(ValueError):
    """A ``--chase`` / ``--mtc-out`` that cannot be; the message names it."""


def parse_chase(spec: str) -> tuple[str, str]:
    """``mtc:PORT`` / ``ltc:mic[:DEV]`` / ``ltc:FILE`` → (kind, target)."""
    kind, _, target = spec.partition(":")
    if kind not in ("mtc", "ltc") or not target:
        raise TimecodeSpecError(f"--chase {spec!r}: want mtc:PORT, ltc:mic[:DEVICE] or "
                                "ltc:FILE")
    return kind, target


Arrival = tuple[int, float, bool, float]
"""(show sample it arrived at, timecode seconds, a locate, its arrival on the source's own
steady clock in seconds: for the timecode's speed, free of re-anchoring)."""


class MtcInput:
    """MTC from a MIDI input port: every quarter frame and full frame with the show sample it
    arrived at. rtmidi measures the time between messages in its own thread; the show sample
    of the first message, and of any later one that Python got to sooner, anchors them (a
    Python callback is only ever late: the least late one is the best anchor)."""

    ANCHOR_WINDOW_S = 2.0

    def __init__(self, port: str, now_sample: Any) -> None:
        from streams.devices.midi_ports import open_timed_input

        self.name = f"mtc:{port}"
        self.rate: Rate | None = None
        self.queue: collections.deque[Arrival] = collections.deque(maxlen=MAX_QUEUED)
        self._reader = MtcReader()
        self._now = now_sample
        self._elapsed_s = 0.0  # rtmidi's time since the first message
        self._anchors: collections.deque[tuple[float, float]] = collections.deque()
        self._port = open_timed_input(port, self._on_message)

    def _on_message(self, msg: Any, delta_s: float) -> None:  # rtmidi's thread
        stamped = self._now() / SAMPLE_RATE_HZ
        self._elapsed_s += delta_s if self._anchors else 0.0
        offset = stamped - self._elapsed_s  # true offset + how late Python was
        while self._anchors and (self._anchors[-1][1] >= offset
                                 or self._anchors[0][0] < self._elapsed_s
                                 - self.ANCHOR_WINDOW_S):
            if self._anchors[-1][1] >= offset:
                self._anchors.pop()
            else:
                self._anchors.popleft()
        self._anchors.append((self._elapsed_s, offset))
        at = int(round((self._elapsed_s + self._anchors[0][1]) * SAMPLE_RATE_HZ))
        got = self._reader.feed(msg)
        if got is not None:
            self.rate = got.timecode.rate
            self.queue.append((at, got.seconds, got.full_frame, self._elapsed_s))

    async def run(self) -> None:
        """Nothing to drive: the port's thread queues as messages come."""
        await asyncio.Event().wait()

    def close(self) -> None:
        self._port.close_port()


class LtcInput:
    """LTC audio from the sound card input (``mic[:DEV]``) or a sound file played from the
    moment the show starts chasing; a frame arrives at the show sample of its first edge."""

    def __init__(self, target: str, rate: Rate, now_sample: Any) -> None:
        from mocap.performer_audio import PerformerAudioError, open_performer_audio

        self.name = f"ltc:{target}"
        self.rate: Rate | None = rate
        self.queue: collections.deque[Arrival] = collections.deque(maxlen=MAX_QUEUED)
        self._decoder = LtcDecoder(rate)
        self._fed = 0
        self._now = now_sample
        try:
            self._source = open_performer_audio(target, now_sample)
        except PerformerAudioError as err:
            raise TimecodeSpecError(f"--chase ltc:{target}: {err}") from None
        self.file_origin_sample: int | None = None
        """Show sample at which a file source's sample 0 plays (once it runs)."""

    def _feed(self, chunk: AudioChunk) -> None:
        before = self._fed
        for frame in self._decoder.feed(chunk.samples):
            at = chunk.t + int(round(frame.start_sample - before))
            self.queue.append((at, frame.timecode.seconds, False, at / SAMPLE_RATE_HZ))
        self._fed += len(chunk.samples)

    async def run(self) -> None:
        from mocap.performer_audio import WavFileSource

        source = self._source
        if isinstance(source, WavFileSource):
            source.start_sample = self.file_origin_sample = int(self._now())
            async for chunk in source.stream(now_sample=self._now):
                self._feed(chunk)
            log.info("LTC file %s played to its end", source.path)
            await asyncio.Event().wait()
        while True:
            assert not isinstance(source, WavFileSource)
            got = await asyncio.to_thread(source.read, 0.1)
            if got is not None:
                self._feed(got)

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


TimecodeInput = MtcInput | LtcInput


def open_chase_input(spec: str, rate: Rate, now_sample: Any) -> TimecodeInput:
    """The source ``--chase SPEC`` names (``TimecodeSpecError`` / ``MidiPortError``)."""
    kind, target = parse_chase(spec)
    if kind == "mtc":
        return MtcInput(target, now_sample)
    return LtcInput(target, rate, now_sample)


class ArrivalFit:
    """De-jitters timecode arrivals: ``arrival(at_s, tc_s)`` is where the line through the
    least late recent arrivals puts timecode ``tc_s`` (``at_s`` itself until there are
    some, or when it is off the line by ``FIT_OUTLIER_S``: a jump, the fit restarts)."""

    def __init__(self) -> None:
        self._points: collections.deque[tuple[float, float]] = collections.deque()

    def reset(self) -> None:
        self._points.clear()

    def arrival(self, at_s: float, tc_s: float) -> float:
        """The de-jittered arrival of ``tc_s`` (which then joins the fit)."""
        fitted = self._predict(tc_s)
        if fitted is None or abs(at_s - fitted) > FIT_OUTLIER_S:
            self._points.clear()
            fitted = at_s
        self._points.append((tc_s, at_s))
        while self._points[0][0] < tc_s - FIT_WINDOW_S:
            self._points.popleft()
        return min(fitted, at_s)  # never later than it came: lateness is what is removed

    def _predict(self, tc_s: float) -> float | None:
        if not self._points:
            return None
        best: dict[int, tuple[float, float]] = {}  # bin -> (tc, arrival - tc), least late
        t0 = self._points[0][0]
        for tc, at in self._points:
            k = int((tc - t0) / FIT_BIN_S)
            if k not in best or at - tc < best[k][1]:
                best[k] = (tc, at - tc)
        xs = [x - t0 for x, _ in best.values()]
        ys = [y for _, y in best.values()]
        if len(best) < 3:
            return tc_s + min(ys)
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
        return tc_s + my + slope * (tc_s - t0 - mx)


class ShowChase:
    """Steers the Director's song to the timecode ``source`` delivers; ``start`` is the
    timecode of the song's beat 0. A director's stop (``Director.transport_hold``) holds
    it: it reads on but leaves the song alone until a ``song.play`` / GO, or a timecode
    locate (not after a ``panic``); then it places the song by a locate."""

    def __init__(self, director: Director, source: TimecodeInput, rate: Rate,
                 start: Timecode) -> None:
        self.director = director
        self.source = source
        self.start = start
        self.chase = TimecodeChase(ChaseOptions(fps=float(rate.fps),
                                                timecode_origin_s=start.seconds,
                                                settled_time_constant_s=LOOP_TIME_CONSTANT_S))
        self._relocations = 0
        self._rate_applied = 1.0
        self._steered_at = 0.0
        self._recent: collections.deque[tuple[float, float]] = collections.deque()
        self._fit = ArrivalFit()
        self._held_since: int | None = None
        """``chase.relocations`` when a director's stop began holding the chase."""

    async def run(self) -> None:
        """Feed and steer until cancelled (the source runs beside it)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.source.run())
            while True:
                self.step()
                await asyncio.sleep(STEER_PERIOD_S)

    def step(self) -> None:
        """Feed what arrived, notice a dropout, steer the song."""
        rate = self.source.rate
        if rate is not None and abs(float(rate.fps) - self.chase.options.fps) > 1e-9:
            # the MTC source says its rate: frames measure lock and relocation
            from dataclasses import replace

            self.chase.options = replace(self.chase.options, fps=float(rate.fps))
        while self.source.queue:
            at, seconds, locate, steady_s = self.source.queue.popleft()
            relocations = self.chase.relocations
            if locate:
                self._fit.reset()
            arrival = self._fit.arrival(at / SAMPLE_RATE_HZ, seconds)
            self.chase.update(arrival, seconds, locate)
            if self.chase.relocations != relocations:
                self._recent.clear()
                self._fit.reset()
                self._fit.arrival(at / SAMPLE_RATE_HZ, seconds)
            self._recent.append((steady_s, seconds))
            while self._recent[0][0] < self._recent[-1][0] - SPEED_WINDOW_S:
                self._recent.popleft()
        now = self.director.pacer.clock.now_sample()
        state = self.chase.state
        self.chase.poll(now / SAMPLE_RATE_HZ)
        if self.chase.state == "freewheel" and state != "freewheel":
            self.chase.ratio = self.speed()  # run on at the speed measured over seconds
        self._steer()

    def _held(self) -> bool:
        """Whether a director's stop holds the chase now (ending the hold when a timecode
        locate came after a stop)."""
        hold = self.director.transport_hold
        if hold is None:
            if self._held_since is not None:
                self._held_since = None
                self._relocations = -1  # released by a play: placed by a locate
            return False
        if self._held_since is None:
            self._held_since = self.chase.relocations
            log.info("timecode chase: held by %s (timecode still read)", hold)
        if hold != "panic" and self.chase.relocations > self._held_since:
            log.info("timecode chase: a timecode locate ends the %s hold", hold)
            self.director.transport_hold = None
            self._held_since = None
            self._relocations = -1
            return False
        return True

    def _steer(self) -> None:
        chase, director = self.chase, self.director
        if chase.state == "idle" or director.song is None or self._held():
            return
        at = director.pacer.earliest_editable_sample()
        song_sample = chase.position_at(at / SAMPLE_RATE_HZ)
        tm = director.song.tempo_map
        beat = tm.sample_to_beat(tm.origin_sample + song_sample)
        relocate = chase.relocations != self._relocations
        if not relocate:
            current = director.beat_at(at)
            if current is None:
                relocate = True
            else:
                stray = abs(tm.beat_to_sample(current) - tm.beat_to_sample(beat))
                moved = abs(chase.ratio - self._rate_applied)
                due = time.monotonic() - self._steered_at >= STEER_MIN_INTERVAL_S
                if not (due and (moved > STEER_RATIO_STEP or stray > STEER_ERROR_SAMPLES)):
                    return
        if beat < 0:
            return  # timecode before the song's beat 0: wait for it to reach the song
        director.chase_to(at, beat, chase.ratio, relocate=relocate)
        if relocate:
            log.info("timecode chase: locate to beat %.3f at show sample %d", beat, at)
        self._relocations = chase.relocations
        self._rate_applied = chase.ratio
        self._steered_at = time.monotonic()

    def speed(self) -> float:
        """The timecode's speed against the show clock (1.0 until a second of it came)."""
        if len(self._recent) < 8 or self._recent[-1][0] - self._recent[0][0] < 1.0:
            return 1.0
        t0, tc0 = self._recent[0]
        best: dict[int, tuple[float, float]] = {}  # bin -> (time, timecode - time), least late
        for t, tc in self._recent:
            k = int((t - t0) / SPEED_BIN_S)
            lead = (tc - tc0) - (t - t0)
            if k not in best or lead > best[k][1]:
                best[k] = (t - t0, lead)
        if len(best) < 2:
            return 1.0
        xs = [x for x, _ in best.values()]
        ys = [y for _, y in best.values()]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        return 1.0 + cov / var if var > 0 else 1.0

    def status(self) -> dict[str, object]:
        """``timecode`` in /status and MQTT state."""
        s = self.chase.status()
        held = self.director.transport_hold
        return {"source": self.source.name, "state": "stopped" if held else s.state,
                "reading": s.state, "held_by": held,
                "error_frames": round(s.error_frames, 3), "speed": round(self.speed(), 6),
                "ratio": round(s.ratio, 6), "relocations": s.relocations,
                "fps": self.chase.options.fps}

    def close(self) -> None:
        self.source.close()


TRIM_TOLERANCE_FRAMES = 0.5
"""A chase's speed trim re-bases MTC out only when the song has moved this far from the
quarter frames being sent (then without a full frame: receivers follow the quarter frames)."""


class MtcLead:
    """MTC out following the song position: a transport listener (a locate at each song
    start, seek or tempo change; silence when stopped) and a pacer sink (each chunk's quarter
    frames sent as it plays). The song's beat 0 is timecode ``start``."""

    def __init__(self, port: str, director: Director, rate: Rate, start: Timecode) -> None:
        from streams.devices.midi_ports import open_output

        self.name = port
        self.director = director
        self.rate = rate
        self.start = start
        self.sent = 0
        self._port = open_output(port)
        self._generator: MtcGenerator | None = None
        self._pending: list[tuple[int, MtcGenerator | None, Timecode | None]] = []

    def transport(self, what: str, at: int, beat: float | None) -> None:
        """``Director.transport_listeners``: re-base the timecode at ``at``."""
        if what not in ("play", "stop", "trim"):
            return  # the backing alone
        self._pending = [p for p in self._pending if p[0] < at]
        song = self.director.song
        if what == "stop" or song is None:
            self._pending.append((at, None, None))
            return
        tm = song.tempo_map
        position_s = (tm.beat_to_sample(beat or 0.0) - tm.origin_sample) / SAMPLE_RATE_HZ
        tc_s = self.start.seconds + max(0.0, position_s)
        fps = float(self.rate.fps)
        running = self._pending[-1][1] if self._pending else self._generator
        if what == "trim" and running is not None and abs(
                running.start.seconds + (at - running.origin_sample) / SAMPLE_RATE_HZ - tc_s
        ) < TRIM_TOLERANCE_FRAMES / fps:
            return  # a chase's speed trim: the quarter frames run on unbroken
        frame = math.ceil(tc_s * fps - 1e-9)
        origin = at + int(round((frame / fps - tc_s) * SAMPLE_RATE_HZ))
        generator = MtcGenerator(self.rate, Timecode.from_frames(frame, self.rate), origin)
        locate = None if what == "trim" else Timecode.from_frames(int(tc_s * fps), self.rate)
        self._pending.append((at, generator, locate))

    def __call__(self, chunk: AudioChunk) -> None:
        """Send the MTC due in the chunk now playing."""
        t, end = chunk.t, chunk.end
        while self._pending and self._pending[0][0] < end:
            at, generator, locate = self._pending.pop(0)
            self._send(t, max(t, at))
            t = max(t, at)
            self._generator = generator
            if locate is not None:
                self._port.send(full_frame(locate))
        self._send(t, end)

    def _send(self, a: int, b: int) -> None:
        if self._generator is None or b <= a:
            return
        for _, msg in self._generator.messages(a, b):
            self._port.send(msg)
            self.sent += 1

    def status(self) -> dict[str, object]:
        return {"port": self.name, "rate": self.rate.name, "sending": self._generator
                is not None, "messages": self.sent}

    def close(self) -> None:
        self._port.close()


class WithTimecode:
    """A cue handler in front of the show's: ``timecode`` (chase and lead) in its status."""

    def __init__(self, inner: CueHandler, chase: ShowChase | None,
                 lead: MtcLead | None) -> None:
        self.inner = inner
        self.chase = chase
        self.lead = lead

    async def handle(self, cue: Cue) -> object:
        return await self.inner.handle(cue)

    def show_sample_at_unix(self, unix_s: float) -> int:
        return self.inner.show_sample_at_unix(unix_s)

    def status(self) -> dict[str, object]:
        timecode: dict[str, object] = self.chase.status() if self.chase else {"state": "off"}
        if self.lead is not None:
            timecode = {**timecode, "lead": self.lead.status()}
        return {**self.inner.status(), "timecode": timecode}

    def __getattr__(self, attr: str) -> object:
        return getattr(self.inner, attr)

