"""The audio pacer: the show's master clock, pulling chunks from the singer in real time.

A synthesis thread renders chunks a lookahead ahead of the show clock; the playout task
wakes once per chunk on the show clock and hands the due chunk to every sink. A chunk that is
not ready in time is an xrun: counted, logged once per burst, and covered by a short fade (the
last chunk played backwards and faded out, the next one faded in); the show never stops for
it. After an xrun the pacer renders further ahead.

An edit re-renders chunks that were already rendered. Those superseded chunks are kept: when
the re-render of an edited chunk is not ready in time, the superseded chunk plays instead (it
continues what was playing seamlessly) and the edit lands one chunk later, crossfaded in. That
is a *late edit*, not a dropout: counted apart from xruns, and it makes edits land a little
further ahead from then on.

After a stall (the synthesis thread or the event loop held up), nothing is caught up in a
burst: synthesis never runs more than the maximum lookahead ahead of playout, chunks whose
play time has already passed are not rendered at all (skipped, counted in ``stale_chunks``;
playout covers them as xruns, logged once per burst), and playout hands out late chunks one
loop iteration at a time, so other tasks run in between.

``stage.synthesis.ProcessPacer`` keeps all of this but renders in a process of its own
(``serve --synthesis process``, the default): it overrides where chunks come from
(``_due_chunks``), how synthesis hears of playout (``_advance``) and of an edit (``rewind``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from singer.contracts import DEFAULT_HOP_SAMPLES, SAMPLE_RATE_HZ, AudioChunk
from stage.clock import ClockSync

log = logging.getLogger(__name__)

ChunkRenderer = Callable[[int, int], np.ndarray]
"""``render(start_sample, n_samples) -> float32``: mono ``[n]``, or one row per singer
``[rows, n]`` (played as their sum, the rows kept in ``AudioChunk.parts``); called from the
worker thread."""
ChunkSink = Callable[[AudioChunk], None]
"""Receives every chunk at its play time; must not block (queue it and return)."""

FADE_SAMPLES = 120
GRACE_POLL_S = 0.0002


@dataclass(frozen=True, slots=True)
class PacerConfig:
    """Chunk size (samples), how many chunks synthesis runs ahead of playout, and the
    startup grace."""

    chunk_samples: int = DEFAULT_HOP_SAMPLES
    lookahead_chunks: int = 2
    startup_s: float = 0.2
    """Show sample 0 plays this long after ``run()`` starts: room for the first renders,
    which warm caches and can take longer than the lookahead."""
    edit_margin_s: float = 0.004
    """An edit (a live note, a cue) takes effect at the first chunk due at least this far
    ahead: the time the synthesis thread has to render it again."""
    max_edit_margin_s: float = 0.012
    """When an edited chunk is still late, the margin grows by 1 ms, up to this."""
    edit_margin_relax_s: float = 10.0
    """After this long without a late edited chunk, a grown margin shrinks back by 1 ms (so a
    passing load spike does not cost latency for the rest of the show)."""
    max_lookahead_s: float = 0.1
    """After an xrun the pacer renders one more chunk ahead, up to this far (0: never).
    Rendering further ahead costs no cue latency (edits re-render what is not yet played),
    only the re-render work of an edit. Synthesis never runs further than this (or
    ``lookahead_chunks``, if that is more) ahead of playout, even when playout lags the
    clock (a stalled event loop)."""
    realtime_priority: int | None = None
    """Ask the OS to schedule the synthesis thread ahead of ordinary threads (``SCHED_FIFO``
    at this priority, 1–99), as audio servers do for their audio threads; ``None``: leave it
    an ordinary thread. Where the OS refuses (no privilege), the show runs without it."""
    stale_after_s: float = 0.02
    """A chunk that synthesis reaches this long after its play time is skipped, never
    rendered (after a stall: the time goes to the chunks that can still be on time). A chunk
    less late is still rendered: playout may be as late (a busy event loop) and play it."""
    lookahead_relax_s: float = 30.0
    """After this long without an xrun, a grown lookahead shrinks back by one chunk (every
    edit re-renders the whole lookahead: rendering far ahead for good is work wasted)."""
    playout_grace_s: float = 0.002
    """A due chunk that synthesis is rendering right now is waited for up to this long
    before it is covered (a late edit or an xrun): handing a chunk out a little late moves
    no sample on the show clock, and every sink already absorbs hand-out jitter of this size
    (the event loop's own; the sound card's queue holds chunks, WebRTC sends 20 ms frames)."""


class AudioPacer:
    """Emits one chunk per period on the show clock from a renderer that runs ahead.

    Rendering runs in its own thread, which keeps ``lookahead_chunks`` rendered ahead of
    playout without going through the event loop: a busy loop (signalling, a page being
    served) delays when chunks are handed out, never whether they are ready.
    """

    def __init__(self, render: ChunkRenderer, sinks: list[ChunkSink] | None = None,
                 config: PacerConfig | None = None, clock: ClockSync | None = None) -> None:
        self.config = config or PacerConfig()
        self.clock = clock or ClockSync()
        self.xruns = 0
        self.render_errors = 0
        self.chunks_played = 0
        self._render = render
        self._sinks: list[ChunkSink] = list(sinks or [])
        self._cond = threading.Condition()
        # rendered chunks by show sample, with the generation that rendered them
        self._ready: dict[int, tuple[int, np.ndarray]] = {}
        # chunks an edit superseded, kept to play if their re-render comes late
        self._superseded: dict[int, tuple[int, np.ndarray]] = {}
        self._played_generation = 0  # generation of the last chunk played
        self._on_standby = False  # the last chunk played was a superseded one
        self.late_edits = 0
        """Edited chunks whose re-render came late: the superseded audio played instead."""
        self.stale_chunks = 0
        """Chunks never rendered because their play time had passed when synthesis got to
        them (after a stall); playout covers them as xruns."""
        self._skipping = False  # in a burst of stale chunks (logged once per burst)
        self.late_handouts = 0
        """Chunks handed to the sinks more than ``stale_after_s`` after their time (the event
        loop was held up): played, late, not xruns."""
        self.handout_lag_max_ms = 0.0
        """The latest any chunk was handed out after its time."""
        self.realtime_scheduling = False
        """Whether the synthesis thread got the real-time scheduling it asked for."""
        self._playout = 0  # show sample of the next chunk to play
        self._last: np.ndarray | None = None
        self._in_xrun = False
        self._generation = 0  # bumped by rewind(): chunks of older generations are stale
        self._next_render = 0
        self._stopping = False
        self.lookahead_chunks = self.config.lookahead_chunks
        """Chunks rendered ahead of the show clock now (grows after xruns, shrinks back
        after quiet spells)."""
        self.edit_margin_s = self.config.edit_margin_s
        """How far ahead an edit lands now (grows when edited chunks come late)."""
        self._last_edit_start = -1
        self._edit_asked_ns = 0
        self.edit_turnaround_ms: collections.deque[float] = collections.deque(maxlen=200)
        """How long recent edits took, from being asked to their first chunk rendered."""
        self._margin_changed_at = 0  # show sample of the last margin change
        self._lookahead_changed_at = 0  # show sample of the last lookahead change

    @property
    def max_ahead_samples(self) -> int:
        """How far (start of the chunk rendered minus ``playout_sample``) synthesis may run
        ahead of playout: the largest lookahead, in whole chunks."""
        n = self.config.chunk_samples
        most = int(self.config.max_lookahead_s * SAMPLE_RATE_HZ) // n
        return max(self.config.lookahead_chunks, most) * n

    @property
    def playout_sample(self) -> int:
        """Show sample of the next chunk to be played."""
        return self._playout

    def add_sink(self, sink: ChunkSink) -> None:
        """Start handing chunks to another sink (from the next chunk on)."""
        self._sinks.append(sink)

    def remove_sink(self, sink: ChunkSink) -> None:
        """Stop handing chunks to a sink."""
        if sink in self._sinks:
            self._sinks.remove(sink)

    async def run(self, until_sample: int | None = None) -> None:
        """Play from show sample 0 until ``until_sample`` (or until cancelled)."""
        lead_ns = self.config.lookahead_chunks * self.config.chunk_samples * 1_000_000_000
        lead_ns = max(lead_ns // SAMPLE_RATE_HZ, int(self.config.startup_s * 1e9))
        self.clock.origin_ns = time.monotonic_ns() + lead_ns
        self._stopping = False
        producer = threading.Thread(target=self._run_producer, args=(until_sample,),
                                    name="livesinger-synth", daemon=True)
        producer.start()
        try:
            await self._run_playout(until_sample)
        finally:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            producer.join(timeout=1.0)  # at most one chunk's render away

    def synthesis_state(self) -> dict[str, object]:
        """Where synthesis runs and how it fares (for the show's status)."""
        return {"mode": "thread", "realtime": self.realtime_scheduling,
                "render_errors": self.render_errors, "stale_chunks": self.stale_chunks}

    def earliest_editable_sample(self, margin_s: float | None = None) -> int:
        """The first chunk boundary that can still change: not played, and far enough ahead
        that it can be rendered again before it is due."""
        n = self.config.chunk_samples
        t = self._playout
        margin = self.edit_margin_s if margin_s is None else margin_s
        while self.clock.seconds_until(t) < margin:
            t += n
        return t

    def rewind(self, sample: int, placed: bool = False, asked_ns: int | None = None) -> int:
        """Render again from the chunk holding ``sample`` (clamped to what is still editable).

        Returns the show sample from which audio is rendered again. Chunks already played are
        never touched. ``placed``: ``sample`` was taken from ``earliest_editable_sample()``
        before the edit was applied, so it is kept even if applying took a while, as long as
        that chunk has not been played (if its render then comes late, the superseded chunk
        plays, the edit lands a chunk later, and the edit margin grows). ``asked_ns``: when
        the edit was asked for (``time.monotonic_ns``), for ``edit_turnaround_ms``.
        """
        n = self.config.chunk_samples
        with self._cond:
            floor = self._playout if placed else self.earliest_editable_sample()
            start = max(sample - sample % n, floor)
            if start > self._next_render:
                return start  # nothing rendered or rendering there yet: picked up anyway
            # (start == next render: that chunk may be in the synth thread right now; redo it)
            self._generation += 1
            self._next_render = start
            self._last_edit_start = start
            self._edit_asked_ns = asked_ns if asked_ns is not None else time.monotonic_ns()
            for t in [t for t in self._ready if t >= start]:
                chunk = self._ready.pop(t)
                kept = self._superseded.get(t)
                # keep the chunk that continues what is playing: that is the one to stand in
                if kept is None or kept[0] != self._played_generation \
                        or chunk[0] == self._played_generation:
                    self._superseded[t] = chunk
            self._cond.notify_all()
        return start

    def _run_producer(self, until_sample: int | None) -> None:
        """The synthesis thread: render each chunk once it is within the lookahead of the
        show clock (the clock, not the playout task, so a stalled loop stalls nothing here)."""
        if self.config.realtime_priority is not None:
            self.realtime_scheduling = _schedule_realtime(self.config.realtime_priority)
        n = self.config.chunk_samples
        cap = self.max_ahead_samples
        while True:
            waited = False
            with self._cond:
                while not self._stopping:
                    self._skip_stale_chunks()
                    if until_sample is not None and self._next_render >= until_sample:
                        self._cond.wait()
                    elif self._next_render - self._playout > cap:  # playout lags: wait for it
                        self._cond.wait()
                    else:
                        ahead = self.lookahead_chunks * n
                        wait_s = self.clock.seconds_until(self._next_render - ahead)
                        if wait_s <= 0:
                            break
                        self._cond.wait(timeout=wait_s)
                    waited = True
                if self._stopping:
                    return
                generation, t = self._generation, self._next_render
            if not waited:  # catching up chunk after chunk: let the other threads in between
                time.sleep(0)
            try:
                samples = np.asarray(self._render(t, n), dtype=np.float32)
            except Exception:  # a failing render is a gap covered like an xrun, not an end
                self.render_errors += 1
                log.exception("rendering show samples %d..%d failed", t, t + n)
                samples = None
            with self._cond:
                if generation != self._generation:  # rewound while rendering: superseded
                    if samples is not None and t >= self._playout:
                        self._superseded.setdefault(t, (generation, samples))
                    continue
                if samples is not None:
                    self._ready[t] = (generation, samples)
                    if t == self._last_edit_start and self._edit_asked_ns:
                        self.edit_turnaround_ms.append(
                            (time.monotonic_ns() - self._edit_asked_ns) / 1e6)
                        self._edit_asked_ns = 0
                self._next_render = t + n

    def _skip_stale_chunks(self) -> None:
        """Move the next render past chunks already played or whose play time passed more
        than ``stale_after_s`` ago (called with the lock held): rendering them would only
        delay the chunks that can still be on time."""
        n = self.config.chunk_samples
        t = self._next_render
        if t < self._playout:  # fell behind playout: the chunk it is at goes out uncovered
            t = self._playout + n
        while self.clock.seconds_until(t) < -self.config.stale_after_s:
            t += n
        skipped = (t - self._next_render) // n
        if skipped <= 0:
            return
        self.stale_chunks += skipped
        if not self._skipping:
            log.warning("synthesis fell behind the show clock: skipping %.0f ms of chunks "
                        "whose time has passed, from show sample %d",
                        1000 * (t - self._next_render) / SAMPLE_RATE_HZ, self._next_render)
        self._skipping = True
        self._next_render = t

    def _relax_edit_margin(self) -> None:
        quiet = (self._playout - self._margin_changed_at) / SAMPLE_RATE_HZ
        if quiet >= self.config.edit_margin_relax_s and \
                self.edit_margin_s > self.config.edit_margin_s + 1e-9:
            self.edit_margin_s = max(self.config.edit_margin_s, self.edit_margin_s - 0.001)
            self._margin_changed_at = self._playout

    def _grow_edit_margin(self) -> None:
        self._margin_changed_at = self._playout
        if self.edit_margin_s + 0.001 <= self.config.max_edit_margin_s + 1e-9:
            self.edit_margin_s += 0.001
            log.warning("edits land %.0f ms ahead after an edited chunk came late",
                        1000 * self.edit_margin_s)

    def _relax_lookahead(self) -> None:
        quiet = (self._playout - self._lookahead_changed_at) / SAMPLE_RATE_HZ
        if quiet >= self.config.lookahead_relax_s and \
                self.lookahead_chunks > self.config.lookahead_chunks:
            self.lookahead_chunks -= 1
            self._lookahead_changed_at = self._playout

    def _grow_lookahead(self) -> None:
        self._lookahead_changed_at = self._playout
        n = self.config.chunk_samples
        if (self.lookahead_chunks + 1) * n <= self.config.max_lookahead_s * SAMPLE_RATE_HZ:
            self.lookahead_chunks += 1
            log.warning("rendering %d chunks (%.0f ms) ahead after an xrun",
                        self.lookahead_chunks, 1000 * self.lookahead_chunks * n / SAMPLE_RATE_HZ)

    async def _run_playout(self, until_sample: int | None) -> None:
        while until_sample is None or self._playout < until_sample:
            delay = self.clock.seconds_until(self._playout)
            # a late chunk still yields once: catching up never monopolises the event loop
            await asyncio.sleep(max(delay, 0.0))
            lag_s = -self.clock.seconds_until(self._playout)
            if lag_s > self.config.stale_after_s:
                self.late_handouts += 1
                self.handout_lag_max_ms = max(self.handout_lag_max_ms, 1000 * lag_s)
            grace_ns = time.monotonic_ns() + int(self.config.playout_grace_s * 1e9)
            while self._rendering(self._playout) and time.monotonic_ns() < grace_ns:
                await asyncio.sleep(GRACE_POLL_S)  # on its way: a moment more beats a cover
            chunk = self._take_due_chunk()
            for sink in list(self._sinks):
                try:
                    sink(chunk)
                except Exception:  # a broken sink never stops the show
                    log.exception("audio sink %r failed; removing it", sink)
                    self.remove_sink(sink)
            self.chunks_played += 1
            self._advance()

    def _rendering(self, t: int) -> bool:
        """Whether the chunk at ``t`` is not ready but synthesis is rendering it now."""
        return t not in self._ready and self._next_render == t

    def _advance(self) -> None:
        """Move playout on by a chunk and tell synthesis (it renders against playout)."""
        with self._cond:
            self._playout += self.config.chunk_samples
            self._cond.notify_all()

    def _due_chunks(self, t: int) -> tuple[tuple[int, np.ndarray] | None,
                                           tuple[int, np.ndarray] | None]:
        """The chunk rendered for show sample ``t`` and the one an edit superseded there,
        each as (generation, samples) or ``None``; drops what is older than ``t``."""
        with self._cond:
            ready = self._ready.pop(t, None)
            for old in [k for k in self._ready if k < t]:
                del self._ready[old]
            standby = self._superseded.pop(t, None)
            for old in [k for k in self._superseded if k < t]:
                del self._superseded[old]
        return ready, standby

    def _take_due_chunk(self) -> AudioChunk:
        t = self._playout
        ready, standby = self._due_chunks(t)
        # only audio that continues what was just played can stand in or fade out
        if standby is not None and standby[0] != self._played_generation:
            standby = None
        if ready is not None:
            generation, samples = ready
            if self._in_xrun:
                samples = samples.copy()
                samples[..., :FADE_SAMPLES] *= np.linspace(0.0, 1.0, FADE_SAMPLES)
                self._in_xrun = False
            elif self._on_standby and standby is not None:
                # the edit lands a chunk late: crossfade from the audio it superseded
                samples = samples.copy()
                ramp = np.linspace(0.0, 1.0, FADE_SAMPLES, dtype=np.float32)
                old = _same_rows(standby[1], samples)
                samples[..., :FADE_SAMPLES] = (samples[..., :FADE_SAMPLES] * ramp
                                               + old[..., :FADE_SAMPLES] * (1.0 - ramp))
            self._played_generation = generation
            self._on_standby = False
            self._skipping = False
            self._last = samples
            self._relax_edit_margin()
            self._relax_lookahead()
            return _chunk(t, samples)
        if standby is not None and not self._in_xrun:
            # the edit's re-render is late: play what it superseded, land the edit next chunk
            self.late_edits += 1
            self._on_standby = True
            if t == self._last_edit_start:
                log.info("edited chunk at show sample %d came late; the edit lands a chunk "
                         "later", t)
                self._grow_edit_margin()
            self._last = standby[1]
            return _chunk(t, standby[1])
        n = self.config.chunk_samples
        self.xruns += 1
        if not self._in_xrun:
            since_edit = ("" if self._last_edit_start < 0 else
                          f", {1000 * (t - self._last_edit_start) / SAMPLE_RATE_HZ:.0f} ms "
                          "after the last edit point")
            log.warning("xrun at show sample %d (synthesis late%s); covering with a fade", t,
                        since_edit)
        self._in_xrun = True
        if t == self._last_edit_start:  # the edit came too close: aim further
            self._grow_edit_margin()
        else:
            self._grow_lookahead()
        cover = np.zeros(n, dtype=np.float32)
        if self._last is not None:
            cover = np.zeros((*self._last.shape[:-1], n), dtype=np.float32)
            tail = self._last[..., ::-1][..., :FADE_SAMPLES] \
                * np.linspace(1.0, 0.0, FADE_SAMPLES, dtype=np.float32)
            cover[..., :tail.shape[-1]] = tail
            self._last = np.zeros_like(cover)
        return _chunk(t, cover)


def _chunk(t: int, planes: np.ndarray) -> AudioChunk:
    """A played chunk from what was rendered: mono as it is, or per-singer rows (``[rows,
    n]``) summed, the rows kept as ``parts`` for the program mix (docs/mix.md)."""
    if planes.ndim == 1:
        return AudioChunk(t, planes)
    return AudioChunk(t, planes.sum(axis=0, dtype=np.float32), planes)


def _same_rows(planes: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``planes`` with as many rows as ``like`` (a singer joined between two renders:
    the rows missing are silent; mono stays mono)."""
    if planes.ndim == like.ndim and planes.shape == like.shape:
        return planes
    if like.ndim == 1:
        return planes if planes.ndim == 1 else planes.sum(axis=0, dtype=np.float32)
    rows = planes[None] if planes.ndim == 1 else planes
    out = np.zeros_like(like)
    k = min(len(rows), len(out))
    out[:k] = rows[:k]
    return out


def _schedule_realtime(priority: int) -> bool:
    """Put the calling thread in the ``SCHED_FIFO`` class; False where that is not allowed."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as err:  # not Linux, or no CAP_SYS_NICE / RT budget
        log.info("synthesis thread stays an ordinary thread: real-time scheduling refused "
                 "(%s)", err)
        return False
    log.info("synthesis thread scheduled SCHED_FIFO at priority %d", priority)
    return True
