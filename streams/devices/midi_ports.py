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
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        hint = " (is a JACK server running?)" if midi_api() == "jack" \
            and "server" not in reason else ""
        raise MidiPortError(f"MIDI {kind} unavailable through {midi_api().upper()}: "
                            f"{reason}{hint}") from None


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


def open_input(spec: str, callback: Callable[[mido.Message], None]) -> Any:
    """Open MIDI input port ``spec`` (``midi:PORT``); ``callback`` gets every message, in
    rtmidi's thread (timing, SysEx and active sensing are not filtered out)."""
    be = backend()
    name = resolve(port_name(spec), _names("input", be.get_input_names), "input")
    try:
        return be.open_input(name, callback=callback)
    except Exception as err:
        raise MidiPortError(f"MIDI input port {name!r}: cannot open it ({err})") from None


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


class InputWatch:
    """Says whether a MIDI input port is still there. rtmidi gives no notice of a port going
    away (a JACK client quitting, a keyboard unplugged), so ``present()`` lists the ports, on
    one client kept open for it (a client per look would come and go on the JACK graph)."""

    def __init__(self, name: str) -> None:
        """``name``: the port's full name, as ``open_input`` resolved it (``port.name``)."""
        api = rtmidi.API_UNIX_JACK if midi_api() == "jack" else rtmidi.API_LINUX_ALSA
        backend()  # the API is compiled in
        try:
            self._in = rtmidi.MidiIn(rtapi=api, name="livesinger watch")
        except Exception as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise MidiPortError(f"MIDI input unavailable through {midi_api().upper()}: "
                                f"{reason}") from None
        self.name = name

    def present(self) -> bool:
        """True while the port is listed."""
        try:
            return self.name in self._in.get_ports()
        except Exception:  # the MIDI API itself went away (the JACK server stopped)
            return False

    def close(self) -> None:
        """Release the client."""
        self._in.delete()


def open_output(spec: str) -> Any:
    """Open MIDI output port ``spec`` (``midi:PORT``)."""
    be = backend()
    name = resolve(port_name(spec), _names("output", be.get_output_names), "output")
    try:
        return be.open_output(name)
    except Exception as err:
        raise MidiPortError(f"MIDI output port {name!r}: cannot open it ({err})") from None
