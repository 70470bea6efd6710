"""Follow mode in a live show: the performer heard on the show clock, the idol's song parts
re-timed through the Director's edit path.

``LiveFollow`` takes the loaded duet score, the performer's part and one input (a sound file
played in real time or the sound card: ``--performer-audio``; a MIDI port or a MIDI file
played in real time: ``--performer-midi``; the ``/perform`` page's microphone: audio pushed in;
or, with none of these, note events sent over OSC/MQTT into its ``notes`` queue). Its helper
loop feeds the follower and, after each onset (and every ``HOLD_RETIME_S`` while the
performer holds), re-times every other part from the first sample the pacer can still
change (``Director.retime_song``). The followed part is not sung. The follower's state is in
the Director's status (``follow``: ``stage.follow.desk``), hence in MQTT and ``/status``.

A MIDI port is looked at every ``PORT_WATCH_S``: one that goes away (a keyboard unplugged, the
sending program quit) is ``input_lost`` in the status, with a line naming it and the ports
there are, logged once; the show goes on as through a long silence (``on_silence``), and a
port of that name coming back is opened again and followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from mocap.performer_audio import (
    PerformerAudioError,
    PushedAudioSource,
    SoundCardSource,
    WavFileSource,
    open_performer_audio,
)
from mocap.performer_midi import (
    MidiEventQueue,
    MidiPortSource,
    PerformerMidiError,
    midi_file_events,
)
from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from singer.follow.events import PerformerEvent
from singer.follow.follower import FollowState, ScoreFollower, SilencePolicy
from singer.follow.part import FollowedPart
from singer.follow.retime import IdolRetimer, idol_notes
from singer.score import Score, ScoreError
from stage.director import Director

log = logging.getLogger(__name__)

HOLD_RETIME_S = 0.05
MIDI_POLL_S = 0.005
"""Between note-ons the loop still wakes this often (holds and phrase ends are re-timed as
time passes); a note-on itself wakes it at once."""
CLOCK_POLL_S = 0.01
"""How often a follower armed before the show clock runs looks whether it runs yet."""
PORT_WATCH_S = 0.25
"""How often a MIDI port's presence is looked at (it lists the ports, in a worker thread)."""


class FollowError(ValueError):
    """Follow mode cannot start: the part or the input is wrong (one line)."""


class _WakeOnNote(MidiEventQueue):
    """A note event queue that wakes the follow loop as each note-on arrives (a note-on is
    exact and instantaneous: waiting for a poll would make the idol's answer later)."""

    wake: Callable[[], None] | None = None

    def note_on(self, pitch: float, velocity: float, at_sample: int) -> None:
        """Queue the note-on, then wake the loop (from any thread)."""
        super().note_on(pitch, velocity, at_sample)
        if self.wake is not None:
            self.wake()


class _WakingPort(_WakeOnNote, MidiPortSource):
    """A MIDI input port whose note-ons wake the follow loop."""


class LiveFollow:
    """One performer followed through ``score``'s part ``follow`` during a show."""

    def __init__(self, director: Director, score: Score, follow: str, *,
                 audio: str | None = None, midi: str | None = None,
                 pushed: PushedAudioSource | None = None,
                 on_silence: SilencePolicy = "hold") -> None:
        if sum(x is not None for x in (audio, midi, pushed)) > 1:
            raise FollowError("name one performer input: --performer-audio or "
                              "--performer-midi, not both")
        try:
            self.part = FollowedPart.of(score, follow)
        except ScoreError as err:
            raise FollowError(str(err)) from None
        self.director = director
        self.score = score
        self.audio_spec = audio
        self.midi_spec = midi
        self.on_silence = on_silence
        singers = Director.part_singers(score)
        self._idol = [(singer, part) for singer, part in zip(singers, score.parts, strict=True)
                      if part.name != self.part.name]
        if not self._idol:
            raise FollowError(f"{score.title}: only the part {self.part.name!r}; nothing left "
                              "for the idol to sing")
        self.silent_singers = [s for s, p in zip(singers, score.parts, strict=True)
                               if p.name == self.part.name]
        self.follower: ScoreFollower | None = None
        self.retimers: dict[str, IdolRetimer] = {}
        self.start_sample: int | None = None
        self.last: FollowState | None = None
        self._audio: WavFileSource | PushedAudioSource | None = pushed
        self._midi_port: MidiEventQueue | None = None
        self._midi_file: list[PerformerEvent] | None = None
        self._now: Callable[[], int] = lambda: 0
        self.input_error: str | None = None
        """While the input is lost: one line naming it and what there is instead."""

    def open(self, now_sample: Callable[[], int]) -> None:
        """Open the input (``FollowError`` naming what is wrong); ``now_sample`` is the
        show clock (the pacer's playout sample)."""
        self._now = now_sample
        try:
            if self.audio_spec is not None:
                self._audio = open_performer_audio(self.audio_spec, now_sample)
            elif self.midi_spec is not None and Path(self.midi_spec).suffix.lower() in (
                    ".mid", ".midi"):
                self._midi_file = midi_file_events(self.midi_spec)
            elif self.midi_spec is not None:
                self._midi_port = _WakingPort(self.midi_spec, self._clock_now)
            elif self._audio is None:
                self._midi_port = _WakeOnNote()
        except (PerformerAudioError, PerformerMidiError) as err:
            raise FollowError(str(err)) from None

    def _clock_now(self) -> int:
        """The show sample playing at this instant: note-ons are stamped with it (the
        playout sample is the next chunk's start, up to a chunk later)."""
        return self.director.pacer.clock.now_sample()

    @property
    def notes(self) -> MidiEventQueue | None:
        """The queue note events from OSC/MQTT go to (a MIDI port's, or the one kept when no
        input was named); None when the performer is heard as audio or from a MIDI file."""
        return self._midi_port

    @property
    def input_name(self) -> str:
        """The input, in a word or two, for the status."""
        if self.audio_spec is not None:
            return f"audio {self.audio_spec}"
        if self.midi_spec is not None:
            return f"midi {self.midi_spec}"
        return "page microphone" if self._audio is not None else "note events"

    def status(self) -> dict[str, object]:
        """The follower's state for the show's status (MQTT, ``/status``, the overlay)."""
        lost = {"input_lost": self.input_error is not None} | (
            {"input_error": self.input_error} if self.input_error is not None else {})
        if self.follower is None or self.last is None:
            return {"part": self.part.name, "input": self.input_name, **lost, "started": False}
        return {"part": self.part.name, "input": self.input_name, **lost, "started": True,
                "beat": round(self.last.beat, 3),
                "bpm": round(self.last.bpm, 2), "confidence": round(self.last.confidence, 3),
                "holding": self.follower.holding(self._now()), "events": self.follower.events}

    async def run(self) -> None:
        """Follow until the input ends (a supervised helper: a restart starts over); a MIDI
        port is watched meanwhile."""
        port = self._midi_port
        if not isinstance(port, MidiPortSource):
            await self._follow()
            return
        tasks = {asyncio.ensure_future(self._follow()),
                 asyncio.ensure_future(self._run_watch(port))}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # (a failure is raised for the supervisor)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_watch(self, port: MidiPortSource) -> None:
        """Every ``PORT_WATCH_S``: is the port still there (once lost: is it back)? The
        status says; each change is logged once."""
        while True:
            await asyncio.sleep(PORT_WATCH_S)
            error = await asyncio.to_thread(port.watch)
            if error is not None and self.input_error is None:
                log.warning("follow %r: %s; the show goes on (on silence: %s), the port is "
                            "opened again when it returns", self.part.name, error,
                            self.on_silence)
            elif error is None and self.input_error is not None:
                log.info("follow %r: MIDI port %r is back; following it again",
                         self.part.name, port.name)
            self.input_error = error

    async def _follow(self) -> None:
        """Follow until the input ends."""
        pacer = self.director.pacer
        # armed at the start (--follow): the clock's origin is set only once synthesis is
        # ready (seconds, for a synthesis process), so the part's beat 0 is chosen on the
        # running clock, not on one that is re-anchored afterwards
        while pacer.chunks_played == 0:
            await asyncio.sleep(CLOCK_POLL_S)
        start = pacer.earliest_editable_sample()
        self.start_sample = start
        self.follower = ScoreFollower(self.part, start_sample=start,
                                      midi=self._audio is None, on_silence=self.on_silence)
        tm = self.score.tempo_map
        self.retimers = {singer: IdolRetimer(idol_notes(part, tm), tm, start_sample=start,
                                             call=self.part)
                         for singer, part in self._idol}
        self.director.retime_song({s: r.notes for s, r in self.retimers.items()}
                                  | {s: [] for s in self.silent_singers}, start)
        last_hold = -(1 << 40)
        async for states, heard in self._heard(start):
            if states:
                self.last = states[-1]
            # held notes and phrase ends (a response waits for the call's heard end) are
            # re-timed as time passes, not only at onsets
            waiting = self.follower.holding(heard) or self.follower.at_phrase_end()
            if not states and not (waiting and heard - last_hold >= HOLD_RETIME_S
                                   * SAMPLE_RATE_HZ):
                continue
            if waiting:
                last_hold = heard
            horizon = self.director.pacer.earliest_editable_sample()
            moved = {s: r.notes for s, r in self.retimers.items()
                     if r.update(self.follower, horizon)}
            if moved:
                self.director.retime_song(moved, horizon)

    async def _heard(self, start: int) -> AsyncIterator[tuple[list[FollowState], int]]:
        """(states, heard sample) after each piece of input."""
        assert self.follower is not None
        follower = self.follower
        if isinstance(self._audio, WavFileSource):
            self._audio.start_sample = start
            async for chunk in self._audio.stream(now_sample=self._now):
                yield follower.feed_audio(chunk.samples), chunk.end
        elif isinstance(self._audio, PushedAudioSource):
            source = self._audio
            expected: int | None = None
            while not source.closed:
                got: AudioChunk | None = await asyncio.to_thread(source.read, 0.1)
                if got is None:
                    yield [], self._now()
                    continue
                if expected is None or got.t != expected:
                    follower.resync(got.t)
                expected = got.end
                yield follower.feed_audio(got.samples), got.end + source.latency_samples
        else:
            async for event in self._midi_events(start):
                states = []
                if event is not None:
                    state = follower.feed_midi(event)
                    if state is not None:
                        states.append(state)
                follower.heard_sample = max(follower.heard_sample, self._clock_now())
                yield states, follower.heard_sample

    async def _midi_events(self, start: int) -> AsyncIterator[PerformerEvent | None]:
        """Note-ons as they are due (None on idle polls, so holds are re-timed): a file's at
        the instant the show clock reaches them (not before: a port could not tell the
        future either), a port's or the surfaces' as they arrive."""
        clock = self.director.pacer.clock
        if self._midi_file is not None:
            for event in self._midi_file:
                at = start + event.onset_sample
                while (wait_s := clock.seconds_until(at)) > 0:
                    await asyncio.sleep(min(wait_s, MIDI_POLL_S))
                    if clock.seconds_until(at) > 0:
                        yield None
                yield PerformerEvent(at, event.pitch_midi, max(at, self._clock_now()), "midi",
                                     event.velocity)
            return
        queue = self._midi_port
        assert queue is not None
        arrived = asyncio.Event()
        if isinstance(queue, _WakeOnNote):
            loop = asyncio.get_running_loop()
            def wake() -> None:
                loop.call_soon_threadsafe(arrived.set)

            queue.wake = wake
        while True:
            arrived.clear()
            got = list(queue.drain())
            for event in got:
                yield event
            if not got:
                yield None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), MIDI_POLL_S)

    def close(self) -> None:
        """Close the input."""
        if isinstance(self._audio, SoundCardSource):
            self._audio.close()  # (audio pushed from the page belongs to its receiver)
        if isinstance(self._midi_port, MidiPortSource):
            self._midi_port.close()
