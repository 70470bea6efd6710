"""``livesinger duet --input midi:PORT``: follow a performer playing a live MIDI input port,
in real time, and record the idol.

The same causal loop as a recorded input (``singer.follow.duet``), on the wall clock: show
sample 0 is the moment the port is open (a line on stderr says so); each note-on is stamped
on that clock as it arrives (in rtmidi's thread); every ``HOP_S`` the follower hears what has
arrived (at once when a note-on arrives), the idol's coming notes are re-timed from the
first sample a live pacer could still change then, and the idol is sung up to that moment.
The performer is expected on the score's beat 0 at show sample 0 (the idol starts on the
score's tempo, then follows).

It ends at the song's end (the performer's part and every idol line over, plus ``TAIL_S``),
at SIGINT/SIGTERM (Ctrl-C; exit status 0), or when the port goes away (one line, exit
status 1); each way ``DIR/audio.wav`` and ``DIR/follow.jsonl`` hold everything up to then.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal

from mocap.performer_midi import MidiPortSource, PerformerMidiError
from singer.contracts import SAMPLE_RATE_HZ
from singer.follow.duet import DuetResult, DuetSession
from singer.follow.follower import FollowState

HOP_S = 0.01
"""Between note-ons the follower is stepped every 10 ms (as ``duet_from_midi``'s hop: holds
and phrase ends are re-timed as time passes)."""
WATCH_S = 0.25
"""How often the port's presence is looked at."""
TAIL_S = 1.0
RENDER_BLOCK_S = 0.05
"""The idol is sung in blocks of at least this much, up to the moment heard."""
EndReason = Literal["end", "stopped", "port gone"]


@dataclass(frozen=True, slots=True)
class PortDuetEnd:
    """How a port duet ended, and when (seconds after show sample 0)."""

    reason: EndReason
    at_s: float


class PortDuet:
    """One duet session fed from a live MIDI input port: ``run()`` until the song ends, a
    stop (``stop()``, SIGINT/SIGTERM) or the port goes away; ``result()`` then."""

    def __init__(self, session: DuetSession, port: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Opens ``port`` (``midi:PORT``); ``PerformerMidiError`` names it and the ports
        there are when it cannot be."""
        from streams.devices.midi_ports import unavailable

        missing = unavailable()
        if missing is not None:
            raise PerformerMidiError(f"MIDI port {port!r}: {missing}; a MIDI file "
                                     "(midi:FILE.mid) works without ports")
        self.session = session
        self._clock = clock
        self.origin_s = clock()  # (a note-on may come while the port opens)
        self.source = MidiPortSource(port, self.now_sample)
        self.origin_s = clock()  # show sample 0: the port is open and listening
        self._stop = threading.Event()
        self._part_end_beat = max(n.beat_off for n in session.part.notes)

    def now_sample(self) -> int:
        """The show clock: samples since the port was opened."""
        return int((self._clock() - self.origin_s) * SAMPLE_RATE_HZ)

    def stop(self) -> None:
        """End the run at the next hop (from any thread, or a signal handler)."""
        self._stop.set()

    def end_sample(self) -> float:
        """Where the song ends as known now: the performer's last note (where the follower
        predicts it) and every idol line over."""
        follower = self.session.follower
        if follower.started:
            performer = follower.sample_of(self._part_end_beat)
        else:  # nothing matched yet: the score's own tempo from show sample 0
            performer = self._part_end_beat * 60.0 / follower.part.bpm * SAMPLE_RATE_HZ
        idol = max((n.t_off for notes in self.session.notes().values() for n in notes),
                   default=0)
        return max(performer, float(idol))

    def run(self) -> PortDuetEnd:
        """Follow in real time until the end; the port is closed after."""
        session = self.session
        follower = session.follower
        block = int(RENDER_BLOCK_S * SAMPLE_RATE_HZ)
        next_hop = self._clock() + HOP_S
        next_watch = self._clock() + WATCH_S
        reason: EndReason = "end"
        try:
            while True:
                # wake on a note-on's arrival (acted on at once), else every hop
                first = self.source.wait(next_hop - self._clock())
                if self._stop.is_set():
                    reason = "stopped"
                    break
                heard = self.now_sample()
                states: list[FollowState] = []
                for event in ([first] if first is not None else []) + list(self.source.drain()):
                    state = follower.feed_midi(event)
                    if state is not None:
                        states.append(state)
                follower.heard_sample = max(follower.heard_sample, heard)
                session.after_hearing(states, heard)
                if heard - session.rendered_until >= block:
                    session.render_to(heard)  # (what is before ``heard`` cannot change)
                now = self._clock()
                if now < next_hop:
                    continue
                # a late hop is not made up with a burst: the next one is a hop from now
                next_hop = max(next_hop + HOP_S, now)
                if heard >= self.end_sample() + TAIL_S * SAMPLE_RATE_HZ:
                    break
                if now >= next_watch:
                    next_watch = now + WATCH_S
                    if not self.source.present():
                        reason = "port gone"
                        break
        finally:
            self.source.close()
        end = self.now_sample()
        session.render_to(max(end, session.rendered_until))
        return PortDuetEnd(reason, end / SAMPLE_RATE_HZ)

    def result(self) -> DuetResult:
        """The idol's audio (show sample 0 = the port opened) and the follower's log."""
        s = self.session
        return DuetResult(s.audio, s.log, s.notes(), s.retimes)


@contextmanager
def signals_stop(duet: PortDuet) -> Iterator[None]:
    """Inside, SIGINT and SIGTERM stop ``duet`` (its files are written, no traceback); the
    handlers before are put back after. Off the main thread, signals are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        duet.stop()

    before = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def describe(duet: PortDuet, folder: Path) -> str:
    """The line that says what is listened to and where show sample 0 is."""
    from streams.devices.midi_ports import midi_api

    return (f"livesinger duet: following {duet.session.part.name!r} on MIDI port "
            f"{duet.source.name!r} ({midi_api().upper()}), recording into {folder}; show "
            f"sample 0 = monotonic {duet.origin_s:.6f} s; Ctrl-C stops")
