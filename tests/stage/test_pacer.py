"""The audio pacer keeps real time, covers late chunks, and never stops the show."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from stage.pacer import FADE_SAMPLES, AudioPacer, PacerConfig
from streams.recorder import AudioRecorder

CHUNK = 480


def ramp_renderer(start: int, n: int) -> np.ndarray:
    """A test signal whose every sample tells its own show time."""
    t = np.arange(start, start + n) / SAMPLE_RATE_HZ
    return (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


async def test_pacer_plays_in_real_time_in_order_without_xruns() -> None:
    arrivals: list[tuple[int, int]] = []
    chunks: list[AudioChunk] = []

    def sink(chunk: AudioChunk) -> None:
        arrivals.append((chunk.t, time.monotonic_ns()))
        chunks.append(chunk)

    pacer = AudioPacer(ramp_renderer, [sink], PacerConfig(CHUNK, 2))
    seconds = 1.0
    await pacer.run(until_sample=int(seconds * SAMPLE_RATE_HZ))
    assert pacer.xruns == 0
    assert [c.t for c in chunks] == list(range(0, int(seconds * SAMPLE_RATE_HZ), CHUNK))
    audio = np.concatenate([c.samples for c in chunks])
    np.testing.assert_allclose(audio, ramp_renderer(0, len(audio)), atol=1e-7)
    # each chunk is handed over at its own show time (within scheduler jitter)
    lateness_ms = [(ns - pacer.clock.ns_of(t)) / 1e6 for t, ns in arrivals]
    assert np.median(lateness_ms) < 2.0
    assert min(lateness_ms) >= -0.5  # never early
    assert (arrivals[-1][1] - arrivals[0][1]) / 1e9 == pytest.approx(
        seconds - CHUNK / SAMPLE_RATE_HZ, abs=0.02)


async def test_late_chunks_are_counted_and_covered_by_a_fade() -> None:
    late_at = {20 * CHUNK, 21 * CHUNK, 50 * CHUNK}

    def slow_renderer(start: int, n: int) -> np.ndarray:
        if start in late_at:
            time.sleep(0.04)  # synthesis hiccup: 4 chunks late
        return np.full(n, 0.25, dtype=np.float32)

    chunks: list[AudioChunk] = []
    pacer = AudioPacer(slow_renderer, [chunks.append], PacerConfig(CHUNK, 2))
    await pacer.run(until_sample=100 * CHUNK)
    assert pacer.xruns >= 2
    assert [c.t for c in chunks] == list(range(0, 100 * CHUNK, CHUNK))  # the clock went on
    audio = np.concatenate([c.samples for c in chunks])
    assert np.abs(np.diff(audio)).max() <= 0.25 / FADE_SAMPLES * 1.01  # no click, only fades
    assert audio[-CHUNK:].min() == 0.25  # recovered


async def test_a_failing_sink_is_dropped_and_the_show_goes_on() -> None:
    good: list[AudioChunk] = []

    def broken(_chunk: AudioChunk) -> None:
        raise RuntimeError("viewer went away")

    pacer = AudioPacer(ramp_renderer, [broken, good.append], PacerConfig(CHUNK, 2))
    await pacer.run(until_sample=20 * CHUNK)
    assert len(good) == 20 and pacer.xruns == 0


async def test_recorder_writes_show_time_aligned_wav(tmp_path: Path) -> None:
    recorder = AudioRecorder(tmp_path / "audio.wav")
    pacer = AudioPacer(ramp_renderer, [recorder], PacerConfig(CHUNK, 2))
    task = asyncio.ensure_future(pacer.run())
    await asyncio.sleep(0.3)
    task.cancel()  # like SIGINT: stop mid-show
    await asyncio.gather(task, return_exceptions=True)
    recorder.close()
    audio, sr = sf.read(tmp_path / "audio.wav", dtype="float32")
    assert sr == SAMPLE_RATE_HZ
    assert len(audio) == pacer.chunks_played * CHUNK > 0
    np.testing.assert_allclose(audio, ramp_renderer(0, len(audio)), atol=1e-7)


async def test_rewind_rerenders_only_unplayed_chunks_and_lands_within_a_chunk() -> None:
    level = {"value": 0.1}
    chunks: list[AudioChunk] = []

    def renderer(start: int, n: int) -> np.ndarray:
        return np.full(n, level["value"], dtype=np.float32)

    pacer = AudioPacer(renderer, [chunks.append], PacerConfig(240, 4))
    task = asyncio.ensure_future(pacer.run(until_sample=120 * 240))
    await asyncio.sleep(pacer.config.startup_s + 0.1)
    asked_ns = time.monotonic_ns()
    level["value"] = 0.5  # the "live edit"
    start = pacer.rewind(0)  # everything not yet played
    await task
    assert pacer.xruns == 0
    assert [c.t for c in chunks] == list(range(0, 120 * 240, 240))
    changed = next(c.t for c in chunks if c.samples[0] == np.float32(0.5))
    assert changed == start
    assert all(c.samples[0] == np.float32(0.1) for c in chunks if c.t < start)
    latency_ms = (pacer.clock.ns_of(changed) - asked_ns) / 1e6
    assert 0 <= latency_ms <= 5 + 4 + 1  # one 5 ms chunk + the 4 ms render margin + jitter


async def test_xruns_make_the_pacer_render_further_ahead_up_to_its_limit() -> None:
    slow = {"until": 30 * 240}

    def renderer(start: int, n: int) -> np.ndarray:
        if start < slow["until"]:
            time.sleep(0.008)  # slower than the 5 ms chunk: the first chunks are late
        return np.full(n, 0.1, dtype=np.float32)

    pacer = AudioPacer(renderer, None, PacerConfig(240, 1, max_lookahead_s=0.03))
    await pacer.run(until_sample=200 * 240)
    assert pacer.xruns > 0
    assert pacer.lookahead_chunks == 6  # 30 ms of 5 ms chunks, and no further


async def test_a_grown_edit_margin_shrinks_back_after_a_quiet_spell() -> None:
    late = {"edit": None}

    def renderer(start: int, n: int) -> np.ndarray:
        if start == late["edit"]:
            time.sleep(0.012)  # the edited chunk comes too late: the margin must grow
        return np.full(n, 0.1, dtype=np.float32)

    config = PacerConfig(240, 2, edit_margin_relax_s=0.2)
    pacer = AudioPacer(renderer, None, config)
    task = asyncio.ensure_future(pacer.run(until_sample=int(1.2 * SAMPLE_RATE_HZ)))
    await asyncio.sleep(config.startup_s + 0.1)
    late["edit"] = pacer.earliest_editable_sample()
    pacer.rewind(late["edit"], placed=True)
    await asyncio.sleep(0.05)
    grown = pacer.edit_margin_s
    await task
    assert grown > config.edit_margin_s  # the late edit widened the margin ...
    assert pacer.edit_margin_s == pytest.approx(config.edit_margin_s)  # ... and it came back


async def test_a_late_edit_plays_the_audio_it_superseded_and_lands_a_chunk_later() -> None:
    level = {"value": 0.1, "slow_at": -1}
    chunks: list[AudioChunk] = []
    rendered: set[int] = set()
    superseded_played = threading.Event()

    def renderer(start: int, n: int) -> np.ndarray:
        if start == level["slow_at"]:
            # the edited chunk's re-render misses its slot: it is ready only once the chunk
            # it replaces has been played (an event, not a sleep: a loaded machine that runs
            # the playout late cannot make it come in time)
            superseded_played.wait(2.0)
        rendered.add(start)
        return np.full(n, level["value"], dtype=np.float32)

    def sink(chunk: AudioChunk) -> None:
        chunks.append(chunk)
        if chunk.t == level["slow_at"]:
            superseded_played.set()

    pacer = AudioPacer(renderer, [sink], PacerConfig(240, 4))
    task = asyncio.ensure_future(pacer.run(until_sample=120 * 240))
    await asyncio.sleep(pacer.config.startup_s + 0.1)
    at = pacer.earliest_editable_sample()
    while at not in rendered:  # the edit supersedes a chunk already rendered
        await asyncio.sleep(0.001)
        at = pacer.earliest_editable_sample()
    level.update(value=0.5, slow_at=at)
    start = pacer.rewind(at, placed=True)
    await task
    assert pacer.xruns == 0 and pacer.late_edits >= 1
    assert [c.t for c in chunks] == list(range(0, 120 * 240, 240))  # nothing dropped
    audio = np.concatenate([c.samples for c in chunks])
    changed = next(c.t for c in chunks if c.samples[-1] == np.float32(0.5))
    assert changed > start  # the edit landed late ...
    assert changed - start <= 4 * 240  # ... by the render's delay, not more
    assert np.all(audio[:changed] == np.float32(0.1))  # the old audio went on meanwhile
    assert np.all(audio[changed + FADE_SAMPLES:] == np.float32(0.5))
    assert np.abs(np.diff(audio)).max() <= 0.4 / FADE_SAMPLES * 1.05  # crossfaded, no click
    assert pacer.edit_margin_s > pacer.config.edit_margin_s  # and edits now aim further ahead


async def test_a_grown_lookahead_shrinks_back_after_a_quiet_spell() -> None:
    def renderer(start: int, n: int) -> np.ndarray:
        if start < 30 * 240:
            time.sleep(0.008)  # a slow start: the lookahead must grow
        return np.full(n, 0.1, dtype=np.float32)

    seen: list[int] = []
    config = PacerConfig(240, 1, max_lookahead_s=0.03, lookahead_relax_s=0.2)
    pacer = AudioPacer(renderer, [lambda _c: seen.append(pacer.lookahead_chunks)], config)
    await pacer.run(until_sample=400 * 240)
    assert max(seen) == 6  # grew while chunks came late ...
    assert seen[-1] == 1  # ... and came back once they no longer did
    after_peak = seen[seen.index(6):]
    assert all(b <= a for a, b in zip(after_peak, after_peak[1:], strict=False))


async def test_the_synthesis_thread_asks_for_real_time_scheduling() -> None:
    import os

    policies: set[int] = set()

    def renderer(start: int, n: int) -> np.ndarray:
        policies.add(os.sched_getscheduler(0))  # the thread that renders
        return ramp_renderer(start, n)

    granted: list[bool] = []

    def ask_the_os() -> None:  # from a throwaway thread, which then ends
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            granted.append(True)
        except OSError:
            granted.append(False)

    probe = threading.Thread(target=ask_the_os)
    probe.start()
    probe.join()
    allowed = granted[0]
    chunks: list[AudioChunk] = []
    pacer = AudioPacer(renderer, [chunks.append], PacerConfig(CHUNK, 2, realtime_priority=10))
    await pacer.run(until_sample=20 * CHUNK)
    assert len(chunks) == 20  # granted or refused (no privilege), the show runs
    assert pacer.realtime_scheduling == allowed  # asked for, wherever the OS allows it
    assert policies == {os.SCHED_FIFO if allowed else os.SCHED_OTHER}
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # only that thread, not the loop's


class StallProbe:
    """A sine renderer that notes, for every chunk it is asked for, how far ahead of playout
    it is and whether its play time had already passed; ``stall_at`` blocks it once, and
    with ``freeze_loop`` the event loop too (a whole-process stall: a swap-in, a long
    collection, a machine busy elsewhere)."""

    def __init__(self, stall_at: int, stall_s: float, freeze_loop: bool) -> None:
        self.pacer: AudioPacer | None = None
        self.loop = asyncio.get_running_loop()
        self.stall_at, self.stall_s, self.freeze_loop = stall_at, stall_s, freeze_loop
        self.ahead: list[int] = []  # chunk start minus playout, at each render
        self.rendered_late: list[int] = []  # chunks asked for when already stale

    def __call__(self, start: int, n: int) -> np.ndarray:
        assert self.pacer is not None
        self.ahead.append(start - self.pacer.playout_sample)
        if self.pacer.clock.seconds_until(start) < -self.pacer.config.stale_after_s:
            self.rendered_late.append(start)
        if start == self.stall_at:
            if self.freeze_loop:
                self.loop.call_soon_threadsafe(time.sleep, self.stall_s)
            time.sleep(self.stall_s)
        return ramp_renderer(start, n)


def lock_in_phase(audio: np.ndarray, start: int, hz: float = 220.0) -> float:
    """Measured phase (rad) of the ``hz`` sine in ``audio``, whose first sample is show
    sample ``start``, relative to a sine of show time."""
    t = np.arange(start, start + len(audio)) / SAMPLE_RATE_HZ
    return float(np.angle(np.sum(audio * np.exp(-2j * np.pi * hz * t))) + np.pi / 2)


@pytest.mark.parametrize("freeze_loop", [False, True], ids=["synthesis-stall", "process-stall"])
async def test_after_a_stall_the_pacer_skips_stale_chunks_and_never_runs_far_ahead(
        freeze_loop: bool) -> None:
    n = 240
    probe = StallProbe(stall_at=60 * n, stall_s=0.3, freeze_loop=freeze_loop)
    chunks: list[AudioChunk] = []
    ticks = {"n": 0}
    handed: list[tuple[int, int, int]] = []  # (chunk, loop iterations so far, ns handed)

    def sink(chunk: AudioChunk) -> None:
        handed.append((chunk.t, ticks["n"], time.monotonic_ns()))
        chunks.append(chunk)

    async def ticker() -> None:  # counts event-loop iterations
        while True:
            ticks["n"] += 1
            await asyncio.sleep(0)

    pacer = AudioPacer(probe, [sink], PacerConfig(n, 4, max_lookahead_s=0.05))
    probe.pacer = pacer
    counting = asyncio.ensure_future(ticker())
    try:
        await pacer.run(until_sample=200 * n)
    finally:
        counting.cancel()
    stall_chunks = int(0.3 * SAMPLE_RATE_HZ) // n
    # never more than the largest lookahead (50 ms: 10 chunks) ahead of playout ...
    assert max(probe.ahead) <= pacer.max_ahead_samples == 10 * n
    # ... and the chunks whose time had passed were skipped, not rendered (a chunk picked in
    # time can still start late on a loaded machine; catching up rendered some fifty here)
    assert len(set(probe.rendered_late) - {probe.stall_at}) <= 3, probe.rendered_late
    # (all but those rendered ahead before it, and those less than stale_after_s late)
    tolerated = 4 + int(pacer.config.stale_after_s * SAMPLE_RATE_HZ) // n
    assert pacer.stale_chunks >= stall_chunks - tolerated - 2
    assert pacer.xruns >= pacer.stale_chunks - 1  # each skipped chunk played as a gap
    # late chunks were handed out one loop iteration at a time, not in one tight loop
    late = [(t, tick) for t, tick, ns in handed if ns - pacer.clock.ns_of(t) > 5_000_000]
    assert len(late) >= (stall_chunks // 2 if freeze_loop else 0)
    assert all(b[1] > a[1] for a, b in zip(late, late[1:], strict=False))
    # the clock went on: every chunk, in order; the sine resumed at the right show sample
    assert [c.t for c in chunks] == list(range(0, 200 * n, n))
    resumed = max(i for i, c in enumerate(chunks) if not c.samples.any()) + 1
    assert resumed * n < probe.stall_at + 2 * stall_chunks * n  # recovered soon after
    audio = np.concatenate([c.samples for c in chunks[resumed:]])
    start = chunks[resumed].t
    np.testing.assert_allclose(audio[FADE_SAMPLES:], ramp_renderer(start, len(audio))[
        FADE_SAMPLES:], atol=1e-7)
    assert abs(lock_in_phase(audio[FADE_SAMPLES:], start + FADE_SAMPLES)) < 0.01


async def test_a_chunk_still_rendering_when_due_is_waited_for_within_the_grace() -> None:
    slow_at = 40 * 240
    pacer_ref: list[AudioPacer] = []

    def renderer(start: int, n: int) -> np.ndarray:
        if start == slow_at:  # finish 5 ms after this chunk is due
            clock = pacer_ref[0].clock
            time.sleep(max(0.0, clock.seconds_until(start)) + 0.005)
        return np.full(n, 0.2 if start == slow_at else 0.1, dtype=np.float32)

    chunks: list[AudioChunk] = []
    pacer = AudioPacer(renderer, [chunks.append],
                       PacerConfig(240, 4, playout_grace_s=0.05, max_lookahead_s=0.0))
    pacer_ref.append(pacer)
    await pacer.run(until_sample=80 * 240)
    assert pacer.xruns == 0 and pacer.late_edits == 0
    assert [c.t for c in chunks] == list(range(0, 80 * 240, 240))
    assert chunks[40].samples[0] == np.float32(0.2)  # its own audio, not a cover
