"""MIDI ports by name: mido over python-rtmidi, on ALSA where the sequencer exists, else JACK.

The engine names a MIDI port ``midi:PORT`` (``PORT`` as ``mido.get_input_names()`` lists it;
a unique part of it will do, since ALSA appends client:port numbers that change). Which MIDI
API rtmidi uses: ``$LIVESINGER_MIDI_API`` (``alsa`` or ``jack``) when set, else ALSA when
``/dev/snd/seq`` exists, else JACK (a running JACK server, ``$JACK_DEFAULT_SERVER`` naming
it). A port that cannot be opened is a ``MidiPortError`` naming it and the ports there are.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mido
import rtmidi

MIDI_API_ENV = "LIVESINGER_MIDI_API"
ALSA_SEQUENCER = "/dev/snd/seq"
APIS = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK"}
PREFIX = "midi:"


class MidiPortError(ValueError):
    """A MIDI port that cannot be opened; the message names it and the ports available."""


def midi_api() -> str:
    """``alsa`` or ``jack``: the MIDI API ports are opened through (see the module doc)."""
    asked = os.environ.get(MIDI_API_ENV, "").strip().lower()
    if asked:
        if asked not in APIS:
            raise MidiPortError(f"${MIDI_API_ENV}={asked!r}: want one of {', '.join(APIS)}")
        return asked
    if sys.platform.startswith("linux") and not Path(ALSA_SEQUENCER).exists():
        return "jack"
    return "alsa"


def backend() -> Any:
    """The mido backend for ``midi_api()`` (python-rtmidi with that API)."""
    api = midi_api()
    compiled = rtmidi.get_compiled_api()
    wanted = rtmidi.API_UNIX_JACK if api == "jack" else rtmidi.API_LINUX_ALSA
    if sys.platform.startswith("linux") and wanted not in compiled:
        raise MidiPortError(f"python-rtmidi here has no {api.upper()} MIDI support")
    return mido.Backend(f"mido.backends.rtmidi/{APIS[api]}")


def port_name(spec: str) -> str:
    """``midi:PORT`` (or a bare ``PORT``) → ``PORT``; ``MidiPortError`` when empty."""
    name = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    if not name.strip():
        raise MidiPortError(f"MIDI port {spec!r}: name a port (midi:PORT)")
    return name


def _names(kind: str, lister: Callable[[], list[str]]) -> list[str]:
    try:
        return list(lister())
    except Exception as err:  # rtmidi's SystemError when the API cannot start (no server)
        raise _unavailable(err, kind) from None


def _unavailable(err: Exception, kind: str = "input") -> MidiPortError:
    """The MIDI API cannot be reached (``err`` from rtmidi), in one line."""
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    hint = " (is a JACK server running?)" if midi_api() == "jack" \
        and "server" not in reason else ""
    return MidiPortError(f"MIDI {kind} unavailable through {midi_api().upper()}: "
                         f"{reason}{hint}")


def resolve(name: str, names: list[str], kind: str) -> str:
    """The port among ``names`` that ``name`` means: itself, else the one name containing
    it; ``MidiPortError`` naming the ports otherwise."""
    if name in names:
        return name
    matches = [n for n in names if name in n]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(map(repr, names)) or "none"
    if matches:
        raise MidiPortError(f"MIDI port {name!r} is ambiguous: it matches "
                            f"{', '.join(map(repr, matches))}")
    raise MidiPortError(f"MIDI port {name!r} not found; {kind} ports "
                        f"({midi_api().upper()}): {listed}")


def unavailable() -> str | None:
    """Why MIDI ports cannot be opened here (one line), or ``None`` when they can."""
    try:
        _names("input", backend().get_input_names)
    except MidiPortError as err:
        return str(err)
    return None


def open_timed_input(spec: str, callback: Callable[[mido.Message, float], None]) -> Any:
    """Open MIDI input port ``spec`` for timing: ``callback(message, delta_s)`` gets with each
    message the seconds since the previous one as rtmidi measured them in the MIDI API's own
    thread, so a late Python callback (a busy interpreter) does not move when it arrived.
    Returns the ``rtmidi.MidiIn`` (``close_port()`` closes it)."""
    api = rtmidi.API_UNIX_JACK if midi_api() == "jack" else rtmidi.API_LINUX_ALSA
    backend()  # the API is compiled in
    try:
        midi_in = rtmidi.MidiIn(rtapi=api, name="livesinger")
        names = list(midi_in.get_ports())
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MidiPortError(f"MIDI input unavailable through {midi_api().upper()}: "
                            f"{reason}") from None
    name = resolve(port_name(spec), names, "input")

    def relay(event: tuple[list[int], float], _data: object) -> None:
        data, delta_s = event
        try:
            msg = mido.Message.from_bytes(data)
        except ValueError:
            return  # a malformed message is not timing
        callback(msg, float(delta_s))

    try:
        midi_in.open_port(names.index(name), name="timecode in")
        midi_in.ignore_types(sysex=False, timing=False, active_sense=True)
        midi_in.set_callback(relay)
    except Exception as err:
        raise MidiPortError(f"MIDI input port {name!r}: cannot open it ({err})") from None
    return midi_in


class InputPort:
    """A MIDI input port by name (``midi:PORT``), on one client kept for its life:
    ``callback`` gets each message in rtmidi's thread (SysEx, timing and active sensing
    filtered out). rtmidi gives no notice of a port going away (a JACK client quitting, a
    keyboard unplugged), so the same client lists the ports (``ports()``) and connects to
    the port again once it is back (``reopen``): a JACK client coming or going holds the GIL
    15-25 ms, a port opened or closed on one about 5 ms."""

    def __init__(self, spec: str, callback: Callable[[mido.Message], None]) -> None:
        api = rtmidi.API_UNIX_JACK if midi_api() == "jack" else rtmidi.API_LINUX_ALSA
        backend()  # the API is compiled in
        try:
            self._in = rtmidi.MidiIn(rtapi=api, name="livesinger")
        except Exception as err:  # rtmidi's SystemError when the API cannot start (no server)
            raise _unavailable(err) from None
        self._callback = callback
        self.name = ""
        """The port's full name, as the MIDI API lists it (the one opened last)."""
        try:
            self.reopen(spec)
        except MidiPortError:
            self._in.delete()
            raise

    def ports(self) -> list[str]:
        """The input ports listed now; ``MidiPortError`` when the MIDI API itself went away
        (the JACK server stopped)."""
        try:
            return list(self._in.get_ports())
        except Exception as err:
            raise _unavailable(err) from None

    def reopen(self, spec: str) -> None:
        """Open the port ``spec`` means now (the one open before is closed first);
        ``MidiPortError`` naming it and the ports there are when it cannot be."""
        names = self.ports()
        name = resolve(port_name(spec), names, "input")
        try:
            if self._in.is_port_open():
                self._in.close_port()  # (which drops the callback)
            self._in.open_port(names.index(name), name="performer in")
            self._in.ignore_types(sysex=True, timing=True, active_sense=True)
            self._in.set_callback(self._relay)
        except Exception as err:
            raise MidiPortError(f"MIDI input port {name!r}: cannot open it ({err})") from None
        self.name = name

    def _relay(self, event: tuple[list[int], float], _data: object) -> None:
        try:
            msg = mido.Message.from_bytes(event[0])
        except ValueError:
            return  # a malformed message
        self._callback(msg)

    def close(self) -> None:
        """Close the port and release the client."""
        self._in.close_port()
        self._in.delete()


def open_output(spec: str) -> Any:
    """Open MIDI output port ``spec`` (``midi:PORT``)."""
    be = backend()
    name = resolve(port_name(spec), _names("output", be.get_output_names), "output")
    try:
        return be.open_output(name)
    except Exception as err:
        raise MidiPortError(f"MIDI output port {name!r}: cannot open it ({err})") from None
