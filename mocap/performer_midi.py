"""The performer's MIDI: a MIDI input port (mido; python-rtmidi is its backend where
installed), a MIDI file played as a rehearsal, or note events arriving over OSC.

Each yields ``PerformerEvent``s (note-ons; note-offs are not needed to follow) stamped on
the show clock.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow.events import PerformerEvent

QUEUE_EVENTS = 256


class PerformerMidiError(ValueError):
    """The performer's MIDI input cannot be opened; the message names it and why."""


def midi_file_events(path: str | Path, start_sample: int = 0) -> list[PerformerEvent]:
    """The note-ons of a MIDI file (all tracks, in time order) on the show clock."""
    import mido

    p = Path(path)
    if not p.is_file():
        raise PerformerMidiError(f"performer MIDI {str(p)!r}: no such file")
    try:
        mid = mido.MidiFile(str(p))
        events: list[PerformerEvent] = []
        t = 0.0
        for msg in mid:  # merged tracks, times in seconds through the file's tempo map
            t += float(msg.time)
            if msg.type == "note_on" and msg.velocity > 0:
                at = start_sample + int(round(t * SAMPLE_RATE_HZ))
                events.append(PerformerEvent(at, float(msg.note), at, "midi",
                                             msg.velocity / 127.0))
    except Exception as err:  # mido raises OSError, EOFError, ValueError, KeyError
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PerformerMidiError(f"performer MIDI {str(p)!r}: not a readable MIDI file "
                                 f"({reason})") from None
    if not events:
        raise PerformerMidiError(f"performer MIDI {str(p)!r}: no notes")
    return events


class MidiEventQueue:
    """Note-ons from a live input (a MIDI port's callback thread, OSC handlers), queued for
    the follower; when full the oldest is dropped and counted."""

    def __init__(self) -> None:
        self._queue: queue.Queue[PerformerEvent] = queue.Queue(QUEUE_EVENTS)
        self.dropped = 0

    def note_on(self, pitch: float, velocity: float, at_sample: int) -> None:
        """A note-on heard at show sample ``at_sample`` (pitch 0..127, velocity 0..1)."""
        if not (0.0 <= pitch <= 127.0 and 0.0 <= velocity <= 1.0):
            raise PerformerMidiError(f"note-on pitch {pitch} / velocity {velocity} out of "
                                     "range (0..127, 0..1)")
        event = PerformerEvent(at_sample, float(pitch), at_sample, "midi", velocity)
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._queue.get_nowait()
            self.dropped += 1
            self._queue.put_nowait(event)

    def wait(self, timeout_s: float) -> PerformerEvent | None:
        """The oldest event, waiting up to ``timeout_s`` for one to come (None if none did):
        a live loop wakes on a note-on's arrival."""
        try:
            if timeout_s <= 0:
                return self._queue.get_nowait()
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def drain(self) -> Iterator[PerformerEvent]:
        """The events queued so far, oldest first."""
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return


def midi_backend_missing() -> str | None:
    """Why MIDI ports cannot be opened here, in one line, or None when they can: mido opens
    them through python-rtmidi, on ALSA or, without an ALSA sequencer, JACK
    (``streams.devices.midi_ports``)."""
    from streams.devices.midi_ports import unavailable

    missing = unavailable()
    if missing is None:
        return None
    return f"{missing}; a .mid file or note events over OSC/MQTT work without it"


class MidiPortSource(MidiEventQueue):
    """A MIDI input port by name (``midi:PORT`` or ``PORT``, as ``streams.devices.midi_ports``
    opens it); ``now_sample()`` stamps each note-on as it arrives. ``watch()`` notices the
    port going away and opens it again once a port of its name is back."""

    def __init__(self, port: str, now_sample: Any) -> None:
        super().__init__()
        from streams.devices.midi_ports import InputPort, MidiPortError

        missing = midi_backend_missing()
        if missing is not None:
            raise PerformerMidiError(f"MIDI port {port!r}: {missing}")
        self.spec = port
        self._now = now_sample
        self._lock = threading.Lock()  # the port: watch() runs in a worker thread, close()
        self._closed = False  # in the show's loop
        self._gone = False
        try:
            self._port = InputPort(port, self._on_message)
        except MidiPortError as err:
            raise PerformerMidiError(str(err)) from None

    @property
    def name(self) -> str:
        """The port's full name, as the MIDI API lists it (the one opened last)."""
        return self._port.name

    def present(self) -> bool:
        """True while the port is still there (a keyboard unplugged, the sending program
        quit: False). Lists the ports: call it a few times a second at most."""
        from streams.devices.midi_ports import MidiPortError

        with self._lock:
            try:
                return not self._closed and self.name in self._port.ports()
            except MidiPortError:  # the MIDI API itself is gone
                return False

    def watch(self) -> str | None:
        """None while the port is listed; else one line naming it and the input ports there
        are. A port that went away is opened again once a port its name means
        (``midi_ports.resolve``: the same name, or the one name containing the one asked
        for) is listed again. Lists the ports (1 ms), opens one when it is back (10 ms, the
        GIL held about 5 ms at a time): call it from a worker thread, a few times a second
        at most."""
        from streams.devices.midi_ports import MidiPortError, midi_api, port_name

        with self._lock:
            if self._closed:
                return None
            try:
                names = self._port.ports()
            except MidiPortError as err:
                self._gone = True
                return f"MIDI port {self.name!r} went away: {err}"
            if not self._gone and self.name in names:
                return None
            self._gone = True  # (the MIDI API does not connect to it again by itself)
            if not any(port_name(self.spec) in n for n in names):
                listed = ", ".join(map(repr, names)) or "none"
                return (f"MIDI port {self.name!r} went away; input ports "
                        f"({midi_api().upper()}): {listed}")
            try:
                self._port.reopen(self.spec)
            except MidiPortError as err:  # ambiguous now, or it cannot be opened
                return f"MIDI port {self.name!r} went away; {err}"
            self._gone = False
            return None

    def _on_message(self, msg: Any) -> None:
        if msg.type == "note_on" and msg.velocity > 0:
            self.note_on(float(msg.note), msg.velocity / 127.0, int(self._now()))

    def close(self) -> None:
        """Close the port (after a ``watch()`` under way in another thread)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._port.close()
