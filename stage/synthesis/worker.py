"""The synthesis process: owns a copy of the ensemble and renders chunks into the ring.

It is started empty (``main``), imports torch and says ``warm``; it then waits for a
``start`` message carrying a ``StartSpec`` (the ring to write, what every singer sings, from
which show sample to render), builds the ensemble from it and renders each chunk once it is
within the lookahead of the show clock (read from the ring: the clock's origin and the
playout point), as the synthesis thread does. Between chunks it applies the messages that
arrive on its pipe in order: ``edit`` (a ``LineEdit``), ``rewind`` (render again from a
sample, under a new generation) and ``stop``. It never waits on the show's event loop.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from singer.backends.preparer import BankPreparer
from singer.contracts import SAMPLE_RATE_HZ
from singer.ensemble import BLOCK_FRAMES, Ensemble, LineEdit, LineState, LiveReport, SingerLine
from stage.clock import ClockSync
from stage.synthesis.lateness import StepTimer
from stage.synthesis.ring import ChunkRing

log = logging.getLogger(__name__)

EDIT_QUIET_S = 0.03
"""No prefetching this soon after an edit: the edit's chunks come first."""
PREFETCH_AHEAD_S = 0.05
PREFETCH_HORIZON_S = 0.25
"""Blocks prefetched: the one after the lookahead, about (live edits every few tens of ms
would make any further ones wasted work, and a block being prefetched delays an edit)."""
PREFETCH_MIN_WAIT_S = 0.003
"""Prefetch one block only when the next chunk is due at least this far off."""
SKIP_LOG_PERIOD_S = 1.0
"""Skipped chunks are logged at most this often (summed)."""
IDLE_POLL_S = 0.002
FAULT_HOOKS_ENV = "LIVESINGER_FAULT_HOOKS"
"""Set to ``1`` in the show's environment (``livesinger soak`` does), the synthesis process
takes ``fault_voice`` messages (a singer's voice raises for some renders); unset, it refuses
them with a log line. For soaks and tests only (docs/synthesis.md)."""
GC_THRESHOLDS = (10_000, 50, 1000)
"""Young collections stay frequent and short; full collections become rare."""
"""How often to look at the playout point while waiting for playout to move on."""


@dataclass(frozen=True, slots=True)
class StartSpec:
    """What a synthesis process needs to take over the show's rendering (picklable)."""

    ring_name: str
    ring_positions: int
    chunk_samples: int
    device: str | None
    lines: tuple[LineState, ...]
    generation: int
    """The generation of every chunk it renders until a ``rewind`` names another."""
    start_sample: int
    """The first chunk to render."""
    until_sample: int | None
    max_ahead_samples: int
    stale_after_s: float
    realtime_priority: int | None
    planes: int = 1
    """Audio rows per ring chunk: 1 renders the singers' sum, more one row per singer."""


def main(conn: Connection) -> None:
    """The synthesis process's entry point (``multiprocessing`` spawn target)."""
    # Ctrl-C in a terminal reaches the whole process group: the show, not this process,
    # decides when it ends (``stop``, the pipe closing, or the show ending it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="livesinger synthesis: %(levelname)s %(message)s")
    import torch

    torch.set_num_threads(1)
    conn.send(("warm",))
    try:
        msg = conn.recv()
    except EOFError:
        return
    if msg[0] != "start":
        return
    Renderer(conn, msg[1]).run()


class Renderer:
    """The render loop of one synthesis process."""

    def __init__(self, conn: Connection, spec: StartSpec) -> None:
        from singer.synth import HarmonicNoiseSynth

        self._conn = conn
        self._spec = spec
        self._ring = ChunkRing.attach(spec.ring_name, spec.ring_positions, spec.chunk_samples,
                                      spec.planes)
        synth = HarmonicNoiseSynth(device=spec.device)
        self._ensemble = Ensemble(synth, [SingerLine.from_state(s) for s in spec.lines])
        # bank voices are loaded here by their folder (never pickled) and warmed (every
        # sample analysed, every ONNX session run once) before the show clock runs
        self._ensemble.warm_banks()
        # held live notes' real starts and ends, and their expected latency, go to the show
        # through the ring's header (docs/synthesis.md)
        self._report_lock = threading.Lock()
        self._ensemble.live_reports = self._push_report
        self._ring.set("live_latency_samples", self._ensemble.live_latency_samples())
        # the first render warms torch and the first blocks' caches: before the clock runs
        self._ensemble.render(spec.start_sample, spec.chunk_samples)
        self._ensemble.reset()
        # as in the show's process (serve.realtime_gc): what is alive now (torch, the voices)
        # is never collected, and full collections become rare -- a full pass over this heap
        # held rendering up for tens of ms every few seconds (measured as bursts of skips)
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self._generation = spec.generation
        self._next = spec.start_sample
        self._last_edit = 0.0
        self._skipped = 0  # chunks skipped since the last log line
        self._skip_logged = 0.0
        self._clock = ClockSync(origin_ns=0)
        # a held live note's first segment is waited for within the chunk's budget only
        self._ensemble.seconds_until = self._clock.seconds_until
        self._rendered = 0
        self._fallbacks = self._ensemble.voice_fallbacks
        self._steps = StepTimer()  # a late or skipped chunk's cause, counted in the ring
        self._preparer: BankPreparer | None = None

    def run(self) -> None:
        """Render until told to stop (or the show's end of the pipe closes)."""
        spec = self._spec
        self._start_preparer()
        if spec.realtime_priority is not None:
            from stage.pacer import _schedule_realtime

            self._ring.set("realtime", int(_schedule_realtime(spec.realtime_priority)))
        self._conn.send(("started",))
        n = spec.chunk_samples
        steps = self._steps
        steps.mark("start")
        try:
            while True:
                if not self._drain():
                    return
                steps.mark("messages")
                ring = self._ring
                if ring.get("stopping"):
                    return
                self._clock.origin_ns = ring.get("origin_ns")
                playout = ring.get("playout_sample")
                self._skip_stale(playout)
                ring.set("generation", self._generation)
                ring.set("next_render", self._next)
                ring.set("heartbeat_ns", time.monotonic_ns())
                ring.set("live_latency_samples", self._ensemble.live_latency_samples())
                if spec.until_sample is not None and self._next >= spec.until_sample:
                    wait_s = 0.01
                elif self._next - playout > spec.max_ahead_samples or not self._clock.origin_ns:
                    wait_s = IDLE_POLL_S
                else:
                    ahead = ring.get("lookahead_chunks") * n
                    wait_s = self._clock.seconds_until(self._next - ahead)
                if wait_s > 0:
                    steps.mark("messages")
                    if wait_s < PREFETCH_MIN_WAIT_S or not self._prefetch_one(playout):
                        self._conn.poll(wait_s)  # a message wakes it at once
                        steps.mark("wait", int(wait_s * 1e9))
                    else:
                        steps.mark("prefetch")
                    continue
                self._render_next(playout)
        except (EOFError, OSError):  # the show went away
            return
        finally:
            steps.close()
            if self._preparer is not None:
                self._preparer.stop()
            self._ring.close()

    def _start_preparer(self) -> None:
        """Start the bank worker once a singer has a phrase-ahead bank (DiffSinger): it
        renders their coming phrases and held live notes beside the render loop.

        Not before: a thread that only polls still takes this process's GIL every poll, and
        when the OS preempts it while it holds the GIL, the render loop (``SCHED_FIFO``
        with ``--realtime``) waits for an ordinary thread to be run again (priority
        inversion). It is started with ordinary scheduling: a thread inherits its
        creator's, and a bank's seconds of ONNX work must never hold a core in
        ``SCHED_FIFO``.
        """
        if self._preparer is not None or not self._ensemble.has_phrase_ahead_banks():
            return
        with _ordinary_scheduling():
            self._preparer = BankPreparer(self._ensemble,
                                          lambda: self._ring.get("playout_sample")).start()

    def _push_report(self, report: LiveReport) -> None:
        """A held live note's report into the ring (from the render loop or the bank
        worker: one writer at a time)."""
        with self._report_lock:
            self._ring.push_report(report.held_id, 0 if report.kind == "on" else 1,
                                   -1 if report.sample is None else report.sample)

    def _drain(self) -> bool:
        """Apply every message waiting on the pipe; False on ``stop``."""
        while self._conn.poll(0):
            msg = self._conn.recv()
            kind = msg[0]
            if kind == "edit":
                edit: LineEdit = msg[1]
                self._ensemble.apply(edit)
                if edit.op == "set_bank":  # a new bank loads between chunks, not inside one
                    self._ensemble.warm_banks()
                if edit.op in ("set_bank", "add_line"):
                    self._start_preparer()
                self._last_edit = time.monotonic()
            elif kind == "rewind":
                _, start, generation = msg
                self._generation = generation
                self._next = min(self._next, start)
                self._last_edit = time.monotonic()
            elif kind == "fault_voice":
                _, singer, renders = msg
                if os.environ.get(FAULT_HOOKS_ENV) == "1":
                    self._ensemble.fail_voice(singer, renders)
                else:
                    log.error("fault injection refused: %s is not set", FAULT_HOOKS_ENV)
            elif kind == "stop":
                return False
            else:
                log.error("unknown message %r from the show; ignored", kind)
        return True

    def _render_next(self, playout: int) -> None:
        n = self._spec.chunk_samples
        t = self._next
        try:
            rows = self._ensemble.render(t, n)  # [singers, n]: each singer's dry voice
            samples = rows.sum(axis=0, dtype=np.float32) if self._spec.planes == 1 else rows
        except Exception:  # a failing render is a gap covered like an xrun, not an end
            self._ring.add("render_errors", 1)
            log.exception("rendering show samples %d..%d failed", t, t + n)
        else:
            done_ns = time.monotonic_ns()
            self._ring.write(t, self._generation, samples, done_ns,
                             keep_generation=self._ring.get("played_generation"))
            self._steps.mark("render")
            if self._ring.get("playout_sample") > t:  # playout passed it: covered, an xrun
                self._ring.add(f"late_{self._steps.blame()}", 1)
        fallbacks = self._ensemble.voice_fallbacks
        if fallbacks != self._fallbacks:  # counted show-wide: a restarted process adds on
            self._ring.add("voice_fallbacks", fallbacks - self._fallbacks)
            self._fallbacks = fallbacks
        self._next = t + n
        self._rendered += 1
        if self._rendered % 64 == 0:  # blocks behind playout will not be needed again
            for line in list(self._ensemble.lines):
                line.forget_before(playout)

    def _skip_stale(self, playout: int) -> None:
        """Move past chunks already played, or long due while playout is on time.

        A chunk playout has not reached is stale only by as much as playout itself is on
        time: while playout lags the show clock (the show's event loop held up), it still
        plays every chunk ahead of it, late, so those are rendered for it rather than
        skipped (each skip would be an xrun). Unlike the synthesis thread, which shares its
        process's stalls with playout, this process runs on when the show's loop does not.
        """
        n = self._spec.chunk_samples
        t = self._next
        if t < playout:
            t = playout + n
        if self._clock.origin_ns:
            lag_s = max(0.0, -self._clock.seconds_until(playout))  # playout behind the clock
            while self._clock.seconds_until(t) < -(self._spec.stale_after_s + lag_s):
                t += n
        skipped = (t - self._next) // n
        if skipped <= 0:
            return
        self._ring.add("stale_chunks", skipped)
        self._ring.add(f"late_{self._steps.blame()}", skipped)
        self._skipped += skipped
        now = time.monotonic()
        if now - self._skip_logged >= SKIP_LOG_PERIOD_S:
            log.warning("synthesis fell behind the show clock: skipped %.0f ms of chunks "
                        "whose time had passed (up to show sample %d)",
                        1000 * self._skipped * n / SAMPLE_RATE_HZ, t)
            self._skip_logged, self._skipped = now, 0
        self._next = t

    def _prefetch_one(self, playout: int) -> bool:
        """Compute one missing block of synthesis parameters ahead of playout, unless an
        edit came just now; True if it did."""
        if time.monotonic() - self._last_edit < EDIT_QUIET_S:
            return False
        ensemble = self._ensemble
        hop = ensemble.synth.hop
        first = (playout + int(PREFETCH_AHEAD_S * SAMPLE_RATE_HZ)) // hop // BLOCK_FRAMES
        last = (playout + int(PREFETCH_HORIZON_S * SAMPLE_RATE_HZ)) // hop // BLOCK_FRAMES
        for line in list(ensemble.lines):
            for block in range(first, last + 1):
                if not line.has_block(block, ensemble.synth):
                    line.block_params(ensemble.synth, block)
                    return True
        return False


@contextlib.contextmanager
def _ordinary_scheduling() -> Iterator[None]:
    """The calling thread in ``SCHED_OTHER`` for the block (threads started in it inherit
    that), then back in the class it had."""
    try:
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    except (AttributeError, OSError):  # not Linux
        yield
        return
    if policy == os.SCHED_OTHER:
        yield
        return
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, param)
