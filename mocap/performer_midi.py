"""The performer's MIDI: a MIDI input port (mido; python-rtmidi is its backend where
installed), a MIDI file played as a rehearsal, or note events arriving over OSC.

Each yields ``PerformerEvent``s (note-ons; note-offs are not needed to follow) stamped on
the show clock.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow.events import PerformerEvent

QUEUE_EVENTS = 256
ALSA_SEQUENCER = "/dev/snd/seq"


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

    def drain(self) -> Iterator[PerformerEvent]:
        """The events queued so far, oldest first."""
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return


def midi_backend_missing() -> str | None:
    """Why MIDI ports cannot be opened here, in one line, or None when they can be tried:
    mido needs python-rtmidi, and on Linux rtmidi needs the ALSA sequencer."""
    import importlib.util
    import sys

    if importlib.util.find_spec("rtmidi") is None:
        return ("no MIDI backend: mido opens ports through python-rtmidi, which is not "
                "installed (pip install python-rtmidi); a .mid file or note events over "
                "OSC/MQTT work without it")
    if sys.platform.startswith("linux") and not Path(ALSA_SEQUENCER).exists():
        return (f"no ALSA sequencer ({ALSA_SEQUENCER} is missing: load snd-seq, or give the "
                "container the device); a .mid file or note events over OSC/MQTT work "
                "without it")
    return None


class MidiPortSource(MidiEventQueue):
    """A MIDI input port by name (as ``mido.get_input_names()`` lists them); ``now_sample()``
    stamps each note-on as it arrives."""

    def __init__(self, port: str, now_sample: Any) -> None:
        super().__init__()
        import mido

        missing = midi_backend_missing()
        if missing is not None:
            raise PerformerMidiError(f"MIDI port {port!r}: {missing}")
        try:
            names = mido.get_input_names()
        except Exception as err:  # rtmidi's SystemError/OSError when the API cannot start
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise PerformerMidiError(f"MIDI port {port!r}: MIDI input unavailable here "
                                     f"({reason})") from None
        if port not in names:
            raise PerformerMidiError(f"MIDI port {port!r} not found; ports: "
                                     f"{', '.join(map(repr, names)) or 'none'}")
        self._now = now_sample
        self._port: Any = mido.open_input(port, callback=self._on_message)

    def _on_message(self, msg: Any) -> None:
        if msg.type == "note_on" and msg.velocity > 0:
            self.note_on(float(msg.note), msg.velocity / 127.0, int(self._now()))

    def close(self) -> None:
        """Close the port."""
        self._port.close()
