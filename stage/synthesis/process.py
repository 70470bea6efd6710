"""The show's handle on its synthesis process: spawn, start, message, watch, replace.

A fresh process takes seconds to import torch, so one is always kept *warm* in standby: when
the running one dies, the standby takes over at once (it only has to build the ensemble from
the show's copy of it) and a new standby is spawned in the background.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from multiprocessing.process import BaseProcess

from singer.ensemble import LineEdit
from stage.synthesis import worker

log = logging.getLogger(__name__)

WARM_TIMEOUT_S = 60.0
"""How long a new process may take to import torch (a loaded machine is slow)."""
START_TIMEOUT_S = 20.0
"""How long it may take to build the ensemble once told to start."""


class SynthesisUnavailable(RuntimeError):
    """No synthesis process could be started."""


class _Child:
    """One spawned synthesis process and the show's end of its pipe."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded, torch-laden show
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.process: BaseProcess = ctx.Process(target=worker.main, args=(child_conn,),
                                                name="livesinger-synthesis", daemon=True)
        self.process.start()
        child_conn.close()
        self.warm = False

    def wait_for(self, what: str, timeout_s: float) -> None:
        """Block until the process says ``what`` (``SynthesisUnavailable`` if it dies or
        takes longer than ``timeout_s``)."""
        if not self.conn.poll(timeout_s):
            raise SynthesisUnavailable(f"synthesis process did not say {what!r} within "
                                       f"{timeout_s:.0f} s")
        try:
            msg = self.conn.recv()
        except (EOFError, OSError):
            raise SynthesisUnavailable(f"synthesis process ended before {what!r} (exit "
                                       f"{self.process.exitcode})") from None
        if msg[0] != what:
            raise SynthesisUnavailable(f"synthesis process said {msg[0]!r}, not {what!r}")

    def end(self) -> None:
        """Stop the process (politely, then for good) and close the pipe."""
        try:
            self.conn.send(("stop",))
        except (OSError, ValueError):
            pass
        self.process.join(timeout=1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=1.0)
        self.conn.close()


class SynthesisProcess:
    """The running synthesis process, with warm standbys to replace it."""

    def __init__(self) -> None:
        self._active: _Child | None = None
        self._standbys: list[_Child] = []
        self._send_lock = threading.Lock()
        self._spawn_lock = threading.Lock()  # held briefly: who is active, who is standby
        self._prepare_lock = threading.Lock()  # one waiter for a standby to warm up

    @property
    def pid(self) -> int | None:
        """The running synthesis process's id."""
        return self._active.process.pid if self._active else None

    def prepare(self, standbys: int = 1) -> None:
        """Have ``standbys`` warm standby processes (spawned together; blocks while they
        import torch, so call it off the loop)."""
        with self._prepare_lock:
            with self._spawn_lock:
                while len(self._standbys) < standbys:
                    self._standbys.append(_Child())
                waiting = [c for c in self._standbys if not c.warm]
            for child in waiting:
                try:
                    child.wait_for("warm", WARM_TIMEOUT_S)
                except SynthesisUnavailable:
                    with self._spawn_lock:
                        if child in self._standbys:
                            self._standbys.remove(child)
                    child.end()
                    raise
                child.warm = True

    @property
    def warm_standbys(self) -> int:
        """Standby processes ready to take over."""
        return sum(1 for c in self._standbys if c.warm)

    def start(self, spec: worker.StartSpec) -> None:
        """Make the standby the running process, rendering from ``spec`` (the running one,
        if any, is ended first). Needs ``prepare()`` first; returns once it is sent, so the
        caller can go on forwarding edits in order."""
        with self._spawn_lock:
            standby = next((c for c in self._standbys if c.warm), None)
            if standby is None:
                raise SynthesisUnavailable("no warm synthesis process to start")
            self._standbys.remove(standby)
        old, self._active = self._active, None
        if old is not None:
            old.end()
        with self._send_lock:
            standby.conn.send(("start", spec))
            self._active = standby

    def wait_started(self) -> None:
        """Block until the running process has built its ensemble (call off the loop)."""
        active = self._active
        if active is None:
            raise SynthesisUnavailable("no synthesis process is running")
        active.wait_for("started", START_TIMEOUT_S)

    def send_edit(self, edit: LineEdit) -> None:
        """Forward an edit of the show's ensemble (dropped while none runs: a restart sends
        the whole state)."""
        self._send(("edit", edit))

    def rewind(self, start_sample: int, generation: int) -> None:
        """Render again from ``start_sample`` as ``generation``."""
        self._send(("rewind", start_sample, generation))

    def inject_voice_fault(self, singer: str, renders: int) -> None:
        """Fault injection: ``singer``'s voice raises in its next ``renders`` renders (taken
        only where ``worker.FAULT_HOOKS_ENV`` is set; soaks and tests)."""
        self._send(("fault_voice", singer, renders))

    def _send(self, msg: tuple[object, ...]) -> None:
        with self._send_lock:
            active = self._active
            if active is None:
                return
            try:
                active.conn.send(msg)
            except (OSError, ValueError):  # it died: the watchdog restarts it
                pass

    def alive(self) -> bool:
        """Whether the running process is still running."""
        return self._active is not None and self._active.process.is_alive()

    def kill(self) -> None:
        """End the running process at once (a hung one); the watchdog replaces it."""
        if self._active is not None and self._active.process.is_alive():
            self._active.process.kill()

    def exit_description(self) -> str:
        """How the running process ended (for the log and the status)."""
        if self._active is None:
            return "not running"
        code = self._active.process.exitcode
        if code is None:
            return "running"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    def close(self) -> None:
        """End the running and the standby process."""
        with self._spawn_lock:
            children = [c for c in [self._active, *self._standbys] if c is not None]
            self._active, self._standbys = None, []
        for child in children:
            child.end()
