"""The pacer of a show whose synthesis runs in a process of its own.

Playout, the show clock, live edits (edit margin, late-edit fallback, xrun covering) work as
in ``AudioPacer``; what changes is where chunks come from. The synthesis process renders
into a shared-memory ring (``ChunkRing``) on the show clock; this side reads the due chunk
out of the ring, tells the process where playout is, and forwards every edit of the show's
ensemble (which stays here as the copy the pose stream and the status read) and every
rewind, in order, over a pipe. A chunk is valid when it was rendered under a generation at
least as new as every rewind at or before its show sample.

If the synthesis process dies, a warm standby takes over from the first chunk it can still
make; the chunks between are covered like xruns, and the restart and the gap are counted,
logged and reported (``synthesis_state``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.ensemble import Ensemble, LiveReport
from stage.clock import ClockSync
from stage.pacer import AudioPacer, ChunkSink, PacerConfig
from stage.synthesis.lateness import CAUSES
from stage.synthesis.process import SynthesisProcess, SynthesisUnavailable
from stage.synthesis.ring import ChunkRing
from stage.synthesis.worker import StartSpec

log = logging.getLogger(__name__)

WATCH_PERIOD_S = 0.02
"""How often the synthesis process is checked for life."""
HUNG_AFTER_S = 2.0
"""A synthesis process that has not looked at the clock for this long is ended (and
replaced)."""
SPARE_POSITIONS = 8
"""Ring positions beyond the largest lookahead."""


def _no_renderer(_start: int, _n: int) -> np.ndarray:
    raise RuntimeError("a process pacer renders in its synthesis process")


class ProcessPacer(AudioPacer):
    """An ``AudioPacer`` whose chunks are rendered by a synthesis process from ``ensemble``
    (the show's copy, edited on the event loop; its edits are replayed there)."""

    def __init__(self, ensemble: Ensemble, sinks: list[ChunkSink] | None = None,
                 config: PacerConfig | None = None, clock: ClockSync | None = None,
                 device: str | None = None, planes: int = 1) -> None:
        super().__init__(_no_renderer, sinks, config, clock)
        self.ensemble = ensemble
        self.device = device
        self.planes = planes
        """Audio rows per ring chunk: 1 (the singers summed) or one per singer slot (the
        played chunks then carry each singer's dry audio as ``AudioChunk.parts``)."""
        self.synthesis = SynthesisProcess()
        self.synthesis_restarts = 0
        """Times the synthesis process died and was replaced."""
        self.synthesis_gap_ms = 0.0
        """Show time covered, over the whole show, because a synthesis process died: from the
        first chunk missing after a death to the first chunk its replacement rendered."""
        self.last_synthesis_gap_ms: float | None = None
        self.last_synthesis_exit: str | None = None
        self.voice_fallbacks = 0
        """Chunk rows a singer's voice failed to render, sung by the built-in voice."""
        self.live_latency_samples = 0
        """The synthesis process's expected held live note latency (``Ensemble
        .live_latency_samples``), read from the ring every chunk."""
        self.live_reports: Callable[[LiveReport], None] | None = None
        """Told the synthesis process's held live note reports (``LiveReport``; its
        ``singer`` is empty: the held note's id names it), on the event loop, every chunk."""
        self.live_reports_lost = 0
        """Reports overwritten in the ring before they were read (never expected)."""
        self._reports_seen = 0
        self.late_causes = dict.fromkeys(CAUSES, 0)
        """Chunks the synthesis process skipped or wrote after their play time, by cause
        (``stage.synthesis.lateness``; over the show, restarts included)."""
        self._rewinds: list[tuple[int, int]] = []  # (start sample, generation), unplayed
        self._floor_generation = 0  # every chunk still to play needs at least this one
        self._ring: ChunkRing | None = None
        self._until: int | None = None
        self._restarting = False  # a process died; its replacement has played nothing yet
        self._restart_generation = 0  # the replacement renders this generation or newer
        self._gap_from: int | None = None  # the first chunk missing since the death
        self._spare: asyncio.Future[None] | None = None
        self._hang: dict[str, int] = {}  # the watchdog's view of the heartbeat

    @property
    def positions(self) -> int:
        """Ring positions: the largest lookahead and some spare."""
        return self.max_ahead_samples // self.config.chunk_samples + SPARE_POSITIONS

    async def run(self, until_sample: int | None = None) -> None:
        """Start the synthesis process, then play as ``AudioPacer.run`` does."""
        self._until = until_sample
        self._ring = ChunkRing.create(self.positions, self.config.chunk_samples, self.planes)
        self._ring.set("lookahead_chunks", self.lookahead_chunks)
        watchdog: asyncio.Task[None] | None = None
        try:
            # the one to run and its standby, warmed up together before the clock starts
            await asyncio.to_thread(self.synthesis.prepare, 2)
            self._start_process(0)
            await asyncio.to_thread(self.synthesis.wait_started)
            n = self.config.chunk_samples
            lead_ns = self.config.lookahead_chunks * n * 1_000_000_000 // SAMPLE_RATE_HZ
            lead_ns = max(lead_ns, int(self.config.startup_s * 1e9))
            self.clock.origin_ns = _now_ns() + lead_ns
            self._ring.set("origin_ns", self.clock.origin_ns)
            watchdog = asyncio.ensure_future(self._run_watchdog())
            await self._run_playout(until_sample)
        finally:
            if watchdog is not None:
                watchdog.cancel()
                await asyncio.gather(watchdog, return_exceptions=True)
            self.ensemble.set_listener(None)
            self._ring.set("stopping", 1)
            await asyncio.to_thread(self.synthesis.close)
            if self._spare is not None:
                await asyncio.gather(self._spare, return_exceptions=True)
            self._ring.close()
            self._ring = None

    def _start_process(self, start_sample: int) -> None:
        """Hand the show's rendering to the standby process from ``start_sample`` on (on the
        event loop: the state it gets and the edits forwarded after it stay in order)."""
        assert self._ring is not None
        self._generation += 1
        self._rewinds.append((start_sample, self._generation))
        self.synthesis.start(StartSpec(
            ring_name=self._ring.name, ring_positions=self.positions,
            chunk_samples=self.config.chunk_samples, device=self.device,
            lines=tuple(self.ensemble.states()), generation=self._generation,
            start_sample=start_sample, until_sample=self._until,
            max_ahead_samples=self.max_ahead_samples, stale_after_s=self.config.stale_after_s,
            realtime_priority=self.config.realtime_priority, planes=self.planes))
        self.ensemble.set_listener(self.synthesis.send_edit)

    async def _run_watchdog(self) -> None:
        """Replace the synthesis process whenever it dies, or hangs (ended first)."""
        while True:
            await asyncio.sleep(WATCH_PERIOD_S)
            if not self.synthesis.alive():
                await self._restart()
                self._hang.clear()
                continue
            self._check_hung()

    def _check_hung(self) -> None:
        """End the synthesis process if its heartbeat stood still for ``HUNG_AFTER_S`` while
        this loop ran on time (a machine-wide stall holds up both: no verdict then)."""
        ring, now, hang = self._ring, _now_ns(), self._hang
        if ring is None or self._restarting:
            return
        beat = ring.get("heartbeat_ns")
        if now - hang.get("tick", now) > 0.2e9 or beat != hang.get("beat"):
            hang.update(beat=beat, since=now)  # it moved, or we were not looking
        hang["tick"] = now
        if beat and now - hang["since"] > HUNG_AFTER_S * 1e9 and hang.get("killed") != beat:
            log.error("synthesis process %s has not looked at the show clock for %.1f s; "
                      "ending it", self.synthesis.pid, (now - hang["since"]) / 1e9)
            hang["killed"] = beat
            self.synthesis.kill()

    async def _restart(self) -> None:
        how = self.synthesis.exit_description()
        self.last_synthesis_exit = how
        if not self._restarting:
            self._restarting, self._gap_from = True, None
            self.synthesis_restarts += 1
            log.error("synthesis process %s at show sample %d; restarting it (restart %d)",
                      how, self._playout, self.synthesis_restarts)
        try:
            await asyncio.to_thread(self.synthesis.prepare)
        except SynthesisUnavailable as err:
            log.error("%s; trying again", err)
            await asyncio.sleep(0.5)
            return
        self._start_process(self.earliest_editable_sample())
        self._restart_generation = self._generation
        if self._spare is None or self._spare.done():  # a new standby for the next time
            if self._spare is not None:
                with contextlib.suppress(Exception):
                    self._spare.result()
            self._spare = asyncio.ensure_future(asyncio.to_thread(self.synthesis.prepare))

    def rewind(self, sample: int, placed: bool = False, asked_ns: int | None = None) -> int:
        """As ``AudioPacer.rewind``: the synthesis process renders again from there."""
        n = self.config.chunk_samples
        floor = self._playout if placed else self.earliest_editable_sample()
        start = max(sample - sample % n, floor)
        self._generation += 1
        self._rewinds.append((start, self._generation))
        self._last_edit_start = start
        self._edit_asked_ns = asked_ns if asked_ns is not None else _now_ns()
        self.synthesis.rewind(start, self._generation)
        return start

    def _rendering(self, t: int) -> bool:
        """Whether no valid chunk for ``t`` is in the ring but the synthesis process is at
        it, or has yet to take in a rewind that covers it."""
        ring = self._ring
        if ring is None or self._restarting:
            return False
        need = self._required_generation(t)
        if any(c.generation >= need for c in ring.read(t)):
            return False
        return ring.get("next_render") <= t or ring.get("generation") < need

    def _required_generation(self, t: int) -> int:
        return max([self._floor_generation] + [g for s, g in self._rewinds if s <= t])

    def _due_chunks(self, t: int) -> tuple[tuple[int, np.ndarray] | None,
                                           tuple[int, np.ndarray] | None]:
        ring = self._ring
        if ring is None:
            return None, None
        need = self._required_generation(t)
        chunks = ring.read(t)
        valid = [c for c in chunks if c.generation >= need]
        ready = max(valid, key=lambda c: c.generation) if valid else None
        standby = next((c for c in chunks if c.generation < need
                        and c.generation == self._played_generation), None)
        if ready is not None:
            if t == self._last_edit_start and self._edit_asked_ns:
                self.edit_turnaround_ms.append((ready.rendered_ns - self._edit_asked_ns) / 1e6)
                self._edit_asked_ns = 0
        if self._restarting:
            self._count_gap(t, ready.generation if ready else None)
        return ((ready.generation, ready.samples) if ready else None,
                (standby.generation, standby.samples) if standby else None)

    def _count_gap(self, t: int, generation: int | None) -> None:
        """After a death: the gap runs from the first chunk missing (the dead process's
        chunks play until then) to the first chunk its replacement rendered."""
        if generation is None:
            if self._gap_from is None:
                self._gap_from = t
            return
        if not self._restart_generation or generation < self._restart_generation:
            return  # the dead process's audio, still playing
        gap_ms = 0.0 if self._gap_from is None else 1000 * (t - self._gap_from) / SAMPLE_RATE_HZ
        self.last_synthesis_gap_ms = gap_ms
        self.synthesis_gap_ms += gap_ms
        self._restarting, self._gap_from, self._restart_generation = False, None, 0
        log.warning("synthesis resumed at show sample %d after a %.0f ms gap", t, gap_ms)

    def _advance(self) -> None:
        super()._advance()
        ring = self._ring
        if ring is None:
            return
        playout = self._playout
        ring.set("played_generation", self._played_generation)
        ring.set("lookahead_chunks", self.lookahead_chunks)
        ring.set("playout_sample", playout)
        if any(s <= playout for s, _ in self._rewinds):
            self._floor_generation = self._required_generation(playout)
            self._rewinds = [(s, g) for s, g in self._rewinds if s > playout]
        self.stale_chunks = ring.get("stale_chunks")
        self.render_errors = ring.get("render_errors")
        self.voice_fallbacks = ring.get("voice_fallbacks")
        self.realtime_scheduling = bool(ring.get("realtime"))
        self.live_latency_samples = ring.get("live_latency_samples")
        if ring.get("live_reports") != self._reports_seen:
            self._read_reports(ring)

    def _read_reports(self, ring: ChunkRing) -> None:
        self._reports_seen, reports, lost = ring.reports_since(self._reports_seen)
        if lost:
            self.live_reports_lost += lost
            log.error("%d held live note reports were lost (read too late)", lost)
        sink = self.live_reports
        for held_id, kind, sample in reports:
            if sink is None:
                break
            try:
                sink(LiveReport("", held_id, "on" if kind == 0 else "off",
                                None if sample < 0 else sample))
            except Exception:  # a broken listener never stops the playout
                log.exception("held live note report %d failed", held_id)

    def _grow_lookahead(self) -> None:
        if not self._restarting:  # a restart's gap says nothing about rendering speed
            super()._grow_lookahead()

    def synthesis_state(self) -> dict[str, object]:
        """Where synthesis runs and how it fares, restarts and gaps included."""
        if self._ring is not None:
            self.late_causes = {cause: self._ring.get(f"late_{cause}") for cause in CAUSES}
        return {"mode": "process", "pid": self.synthesis.pid,
                "late_causes": dict(self.late_causes),
                "realtime": self.realtime_scheduling, "render_errors": self.render_errors,
                "voice_fallbacks": self.voice_fallbacks,
                "stale_chunks": self.stale_chunks, "restarts": self.synthesis_restarts,
                "gap_ms": round(self.synthesis_gap_ms, 1),
                "last_gap_ms": None if self.last_synthesis_gap_ms is None
                else round(self.last_synthesis_gap_ms, 1),
                "last_exit": self.last_synthesis_exit,
                "resuming": self._restarting}


def _now_ns() -> int:
    return time.monotonic_ns()
