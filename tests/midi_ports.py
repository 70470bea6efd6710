"""Real MIDI ports for tests: a private JACK server (dummy driver, no sound card) per test.

python-rtmidi's wheel has JACK MIDI compiled in, and ``jackd -d dummy`` runs without any
device, so virtual ports made here are real ports other clients (the engine) open by name::

    from tests import midi_ports
    from tests.midi_ports import JackMidi

    jack_midi = midi_ports.jack_midi  # the fixture, in the test module

    def test_x(jack_midi: JackMidi) -> None:
        out = jack_midi.virtual_output("performer")      # the test plays into this
        ... serve --performer-midi midi:performer ...   # in-process: env is set already
        subprocess.run(..., env=jack_midi.env())        # a child process: pass the env

The fixture sets ``$JACK_DEFAULT_SERVER`` (a unique name) and ``$LIVESINGER_MIDI_API=jack``
for the test and stops the server after it. Tests skip when ``jackd`` is not installed
(``scripts/setup.sh`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import IO, Any

import mido
import pytest

JACK_BACKEND = "mido.backends.rtmidi/UNIX_JACK"
START_TIMEOUT_S = 20.0
_PROBE = ("import rtmidi; m = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name='probe'); "
          "m.open_virtual_port('probe'); m.close_port()")


class JackMidi:
    """A running private JACK server and helpers to make ports on it."""

    def __init__(self, name: str, process: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.process = process
        self.backend: Any = mido.Backend(JACK_BACKEND)
        self._ports: list[Any] = []

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for a child process that should use this server."""
        env = dict(os.environ if base is None else base)
        env.update(JACK_DEFAULT_SERVER=self.name, LIVESINGER_MIDI_API="jack",
                   JACK_NO_START_SERVER="1")
        return env

    def virtual_output(self, name: str) -> Any:
        """A virtual MIDI output port (messages sent on it reach whoever opens it)."""
        port = self.backend.open_output(name, virtual=True)
        self._ports.append(port)
        return port

    def virtual_input(self, name: str, callback: Any = None) -> Any:
        """A virtual MIDI input port (whoever opens it by name sends into it)."""
        port = self.backend.open_input(name, virtual=True, callback=callback)
        self._ports.append(port)
        return port

    def timed_input(self, name: str) -> TimedInput:
        """A virtual MIDI input port that notes when each message arrived, on rtmidi's clock
        (``TimedInput.arrivals``): a test's late Python callback does not move it."""
        port = TimedInput(name)
        self._ports.append(port)
        return port

    def input_names(self) -> list[str]:
        return list(self.backend.get_input_names())

    def output_names(self) -> list[str]:
        return list(self.backend.get_output_names())

    def close(self) -> None:
        try:
            for port in self._ports:
                port.close()
        finally:
            self._ports.clear()
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class TimedInput:
    """A virtual JACK MIDI input port recording every message with rtmidi's time between
    messages (measured in JACK's thread) and the ``time.monotonic()`` its callback ran."""

    def __init__(self, name: str) -> None:
        import rtmidi

        self._in = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name=name)
        self._in.ignore_types(sysex=False, timing=False, active_sense=True)
        self._events: list[tuple[float, float, list[int]]] = []
        self._elapsed = 0.0
        self._in.set_callback(self._on)
        self._in.open_virtual_port(name)

    def _on(self, event: tuple[list[int], float], _data: object) -> None:
        data, delta = event
        self._elapsed += delta if self._events else 0.0
        self._events.append((time.monotonic(), self._elapsed, list(data)))

    def arrivals(self) -> list[tuple[float, mido.Message]]:
        """(monotonic arrival, message) for everything received: rtmidi's times, anchored
        by the callback that ran least late (a callback is only ever late)."""
        if not self._events:
            return []
        offset = min(stamp - elapsed for stamp, elapsed, _ in self._events)
        return [(elapsed + offset, mido.Message.from_bytes(data))
                for _, elapsed, data in self._events]

    def close(self) -> None:
        self._in.close_port()


def _die_with_parent() -> None:
    """In the jackd child before exec: be killed when the test process ends, however it ends
    (a test killed by its timeout skips the fixture's teardown; a server left behind counts
    against JACK's limit of servers and fails later tests with "too many servers")."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def start_jack(name: str | None = None, attempts: int = 3) -> JackMidi:
    """``_start_jack``, tried again when jackd fails to come up (it can fail to create its
    message thread on a machine under heavy load)."""
    for attempt in range(attempts):
        try:
            return _start_jack(name)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _start_jack(name: str | None = None) -> JackMidi:
    """Start ``jackd -n NAME -d dummy`` and wait until clients can connect to it (sets
    ``$JACK_DEFAULT_SERVER`` in this process; the fixture restores it after)."""
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.skip("jackd is not installed (scripts/setup.sh installs jackd2)")
    name = name or f"livesinger-test-{uuid.uuid4().hex[:8]}"
    # its messages go to a file: a pipe nobody reads fills up (64 KiB of "client was not
    # finished" xruns on a busy machine) and blocks jackd, and with it every client's call
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen([jackd, "--no-realtime", "-n", name, "-d", "dummy",
                                "-r", "48000", "-p", "256"],
                               stdout=subprocess.DEVNULL, stderr=errors,
                               preexec_fn=_die_with_parent)
    try:
        _wait_for(process, name, errors)
    finally:
        errors.close()  # (the server keeps its own handle)
    return JackMidi(name, process)


def _wait_for(process: subprocess.Popen[bytes], name: str, errors: IO[bytes]) -> None:
    """Wait until clients can connect to jackd ``name`` (``RuntimeError`` with its last
    messages, from the file ``errors``, when it exits; or when it takes too long)."""
    os.environ["JACK_DEFAULT_SERVER"] = name  # this process's clients use it
    os.environ["JACK_NO_START_SERVER"] = "1"  # never a server started behind our back
    deadline = time.monotonic() + START_TIMEOUT_S
    # A client connecting while the server is still setting up its shared memory can crash
    # libjack (a segfault, seen under load), so the probe runs in a process of its own and
    # this process opens its clients only once one has connected.
    env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
    while True:
        if process.poll() is not None:
            errors.seek(0)
            err = errors.read().decode(errors="replace")
            raise RuntimeError(f"jackd exited {process.returncode}: {err[-400:]}")
        try:
            probe = subprocess.run([sys.executable, "-c", _PROBE], env=env, timeout=10,
                                   capture_output=True, check=False)
            if probe.returncode == 0:
                break
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"jackd {name} did not start in {START_TIMEOUT_S} s")
        time.sleep(0.1)


@pytest.fixture
def jack_midi(monkeypatch: pytest.MonkeyPatch) -> Iterator[JackMidi]:
    """A private JACK server for one test (env set for in-process use), stopped after."""
    name = f"livesinger-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LIVESINGER_MIDI_API", "jack")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)  # restored after the test
    server = start_jack(name)
    try:
        yield server
    finally:
        server.close()
