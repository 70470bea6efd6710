"""WebRTC benchmark: N viewers of one engine — one stage page in headless Chromium that
measures, and N - 1 WHEP listeners (real aiortc peers, in a process of their own).

Chromium pages draw with software GL here, so the measuring page is one page; the other
viewers are the load a show's engine carries (each a full WebRTC peer; the show's Opus is
encoded once for all of them). Every viewer count is measured on both of the page's paths
(``path``): ``datachannel`` (10 ms Opus on a data channel, WebCodecs, the page's own
AudioWorklet jitter buffer) and ``rtp`` (the WebRTC audio track, Chromium's NetEq).

- cue -> audio at the browser: a note-on is POSTed to ``/cue`` at wall time T; the page stamps
  (in wall-clock ms) when sound reaches its audio output; latency = that stamp - T.
  Its parts: ``engine_cue_ms`` (cue to the note's first sample on the show clock),
  ``cue_to_playout_ms`` (until the browser's WebRTC playout reaches that sample, from
  ``getSynchronizationSources``; on the data channel: until the worklet's output clock says
  it is heard), ``jitter_buffer_ms`` (NetEq's delay over the last ~2 s, or the worklet's
  buffer), ``jitter_buffer_min_ms`` (NetEq's own floor, ``jitterBufferMinimumDelay``) and
  ``output_latency_ms`` (the AudioContext's ``baseLatency + outputLatency``).
- pose/audio sync (``sync_err_ms_p50``, signed, and ``sync_err_ms_p99``, of its size), end to
  end per cued vowel (``stage/web/vowel-sync.js``): when the drawn mouth crossed half its
  opening (interpolated between the presented frames around it) minus when that moment's
  sound was heard (the sound's onset found in the output, through ``getOutputTimestamp``);
  positive: the sound came first. ``frame_sync_ms_*``: the page's per-frame figure (each
  drawn frame's presentation against its pose's sample through the page's own clock).
- underruns at the page (``underruns``, ``concealed_ms``, ``voice_lost``: data channel only;
  ``voice_dropped``: the frames of those the engine itself skipped, its channel too full),
  and what causes them: ``arrival_gap_ms_max`` (the longest wait between two voice frames at
  the page) and ``send_gap_ms_max`` (between two frames handed to the channels by the engine),
  with ``send_gap_cpu_ms`` (the event loop thread's own CPU time during that longest gap:
  near the gap, work on the loop held the frames; near 0, the thread was not run).
  ``output_glitches`` / ``output_glitch_ms``: the page's audio render thread running late past
  its output buffer (data channel: the worklet's wall clock against its frames).
- ``realtime``: the engine as ``serve --realtime`` (SCHED_FIFO synthesis, its event loop at a
  raised nice value); ``page_query``: the stage page's options (``latency=``, ``buffer=``);
  ``rtp_frame_ms``: the Opus frame on the stage page's RTP track.
- ``browser_idle``: the measuring Chromium ran under ``SCHED_IDLE`` (below the engine, as
  when the renderer has a machine of its own; its software GL otherwise takes CPU time the
  engine needed on time on a small machine); the figures in docs/benchmarks.md are without.
- ``loadavg_1m``: the machine's load when the row was measured (figures on a loaded machine
  are the machine's as much as the engine's).
- CPU per viewer: the engine process's CPU time with N viewers minus with none, per viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import numpy as np

from singer.bench import machine_name
from singer.contracts import SAMPLE_RATE_HZ
from stage.bench.engine import served
from stage.serve import REALTIME_PRIORITY, ServeOptions
from streams.webrtc.viewers import ViewerHub

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium."""


@contextlib.asynccontextmanager
async def chromium_launcher(idle: bool) -> AsyncIterator[str]:
    """The executable for Playwright to start: Debian's Chromium, or (``idle``) a launcher
    that starts it under ``SCHED_IDLE``, which every process and thread it starts inherits
    (a nice value would not hold: Chromium, run as root, sets its threads' nice values)."""
    if not idle:
        yield CHROMIUM
        return
    with tempfile.TemporaryDirectory(prefix="livesinger-bench-") as folder:
        launcher = Path(folder) / "chromium-idle"
        launcher.write_text(f'#!/bin/sh\nexec chrt --idle 0 {CHROMIUM} "$@"\n')
        launcher.chmod(0o755)
        yield str(launcher)


CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
]


def _round(value: object) -> float | None:
    return None if value is None else round(float(value), 2)  # type: ignore[arg-type]


def _median(values: list) -> float | None:  # type: ignore[type-arg]
    values = [v for v in values if v is not None]
    return round(float(np.median(values)), 2) if values else None


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _engine_cpu(seconds: float) -> float:
    """Cores' worth of CPU this process used over ``seconds``."""
    start_cpu, start = _cpu_s(), time.monotonic()
    await asyncio.sleep(seconds)
    return (_cpu_s() - start_cpu) / (time.monotonic() - start)


PATHS = ("datachannel", "rtp")
BUFFER_PEAK_WINDOW_S = 10.0
"""The page's voice buffer holds the peak jitter of this long (``voice-worklet.js``)."""
CLOCK_READY = {"rtp": "window.livesinger && window.livesinger.rtpMinusShow !== null",
               "datachannel": "window.livesinger && window.livesinger.bufferMs !== null"}


VIEWER_COUNTS = (1, 4, 16, 24)
"""The viewer counts measured by default (issue 11's rows)."""


async def bench_webrtc(viewer_counts: tuple[int, ...] = VIEWER_COUNTS, cues: int = 8,
                       cpu_window_s: float = 3.0,
                       on_row: Callable[[dict[str, object]], None] | None = None,
                       paths: tuple[str, ...] = PATHS, realtime: bool = False,
                       page_query: str = "", rtp_frame_ms: int = 10,
                       browser_idle: bool = False) -> list[dict[str, object]]:
    """One result per path and viewer count (each also handed to ``on_row`` as soon as
    measured). ``realtime``: the engine as ``serve --realtime``; ``page_query``: extra stage
    page options (``latency=interactive&buffer=peak``: the page as before issue 11's tuning);
    ``rtp_frame_ms``: 10 or 20, the Opus frame of the stage page's RTP track;
    ``browser_idle``: the measuring Chromium under ``SCHED_IDLE`` (``chromium_launcher``)."""
    for path in paths:
        if path not in PATHS:
            raise ValueError(f"a stage path is one of {PATHS}, not {path!r}")
    if rtp_frame_ms not in (10, 20):
        raise ValueError(f"the stage page's RTP frame is 10 or 20 ms, not {rtp_frame_ms}")
    from playwright.async_api import async_playwright

    opts = ServeOptions(osc_port=None, http_port=0, headless=True, chunk_ms=5.0,
                        realtime_priority=REALTIME_PRIORITY if realtime else None)
    results: list[dict[str, object]] = []
    async with served(opts) as show:
        hub = show.handles.get("hub")
        if isinstance(hub, ViewerHub):
            hub.stage_rtp_frame_samples = rtp_frame_ms * SAMPLE_RATE_HZ // 1000
        extra = {"realtime": realtime, "page_query": page_query, "rtp_frame_ms": rtp_frame_ms,
                 "browser_idle": browser_idle}
        base = f"http://127.0.0.1:{show.ports['http']}"
        idle_cpu = await _engine_cpu(cpu_window_s)
        async with async_playwright() as pw, aiohttp.ClientSession() as http, \
                chromium_launcher(browser_idle) as chromium:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for path in paths:
                page = await browser.new_page(viewport={"width": 480, "height": 360})
                query = f"&{page_query}" if page_query else ""
                await page.goto(base + f"/?overlay=0&audio={path}{query}")
                await page.wait_for_function(CLOCK_READY[path], timeout=60_000)
                if path == "datachannel":  # the buffer forgets the page's start-up stalls
                    await asyncio.sleep(BUFFER_PEAK_WINDOW_S)
                for count in viewer_counts:
                    listeners = await _start_listeners(base + "/whep", count - 1)
                    try:
                        row = await _measure(page, http, base, show.handles, count, cues,
                                             cpu_window_s, idle_cpu)
                    finally:
                        await _stop_listeners(listeners)
                    row.update(extra)
                    results.append(row)
                    if on_row is not None:
                        on_row(row)
                await page.close()
            await browser.close()
    return results


async def _start_listeners(url: str, count: int) -> asyncio.subprocess.Process | None:
    """``count`` WHEP listeners in a process of their own, once all are connected."""
    if count <= 0:
        return None
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.webrtc.whep_client", url, "--count", str(count),
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30 + count)
    if b"listening" not in line:
        raise RuntimeError(f"WHEP listeners did not start: {line!r}")
    return proc


async def _stop_listeners(proc: asyncio.subprocess.Process | None) -> None:
    if proc is None:
        return
    proc.send_signal(signal.SIGINT)  # they leave with DELETE, as a player would
    try:
        await asyncio.wait_for(proc.wait(), timeout=15)
    except TimeoutError:
        proc.kill()
        await proc.wait()


PAGE_COUNTERS_KEYS = ("underruns", "concealed_ms", "skipped_ms", "voice_lost",
                      "output_glitches", "output_glitch_ms")
PAGE_COUNTERS = ("({underruns: window.livesinger.underruns, "
                 "output_glitches: window.livesinger.outputGlitches, "
                 "skipped_ms: window.livesinger.skippedMs, "
                 "output_glitch_ms: window.livesinger.outputGlitchMs, "
                 "concealed_ms: window.livesinger.concealedMs, "
                 "voice_lost: window.livesinger.voiceLost, "
                 "vowels: window.livesinger.vowelSyncMs.length, "
                 "arrivals: window.livesinger.trace.arrivals.length})")


def _voice_dropped(hub: object) -> int:
    """Voice frames the engine skipped (a channel with too much waiting), all viewers."""
    viewers = getattr(hub, "viewers", {})
    return sum(int(getattr(v, "voice_dropped", 0)) for v in viewers.values())


class _SendGaps:
    """The longest wait between two voice frames the engine handed to the channels."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.last_cpu = 0.0
        self.max_s = 0.0
        self.max_cpu_s = 0.0

    def __call__(self, _frame: object) -> None:
        now, cpu = time.monotonic(), time.thread_time()  # (called on the event loop thread)
        if self.last is not None and now - self.last > self.max_s:
            self.max_s, self.max_cpu_s = now - self.last, cpu - self.last_cpu
        self.last, self.last_cpu = now, cpu

    def take_ms(self) -> float:
        """The longest gap since the last call, ms."""
        value, self.max_s = self.max_s, 0.0
        return round(1000 * value, 1)

    def take_cpu_ms(self) -> float:
        """The event loop thread's CPU time during that gap, ms."""
        value, self.max_cpu_s = self.max_cpu_s, 0.0
        return round(1000 * value, 1)


async def _measure(page, http: aiohttp.ClientSession, base: str,  # type: ignore[no-untyped-def]
                   handles: dict[str, object], count: int, cues: int, cpu_window_s: float,
                   idle_cpu: float) -> dict[str, object]:
    """Cues heard by the page, its sync error, and the engine's CPU with ``count`` viewers."""
    hub = handles.get("hub")
    gaps = _SendGaps()
    unsubscribe = None
    if hub is not None:  # the encoder of the page's path (subscribing starts no other)
        encoder = (hub.voice_encoder if hub.voice_encoder.subscribers  # type: ignore[attr-defined]
                   else hub.rtp_encoder)  # type: ignore[attr-defined]
        unsubscribe = encoder.subscribe(gaps)
    try:
        return await _measure_with(page, http, base, handles, count, cues, cpu_window_s,
                                   idle_cpu, gaps)
    finally:
        if unsubscribe is not None:
            unsubscribe()


async def _measure_with(page, http: aiohttp.ClientSession,  # type: ignore[no-untyped-def]
                        base: str, handles: dict[str, object], count: int, cues: int,
                        cpu_window_s: float, idle_cpu: float,
                        gaps: _SendGaps) -> dict[str, object]:
    pacer = handles["pacer"]
    hub = handles.get("hub")
    await asyncio.sleep(1.0)  # let the new peers settle
    gaps.take_ms()
    dropped_before = _voice_dropped(hub)
    xruns_before = pacer.xruns  # type: ignore[attr-defined]
    page_before = await page.evaluate(PAGE_COUNTERS)
    gaps.take_ms()
    gaps.take_cpu_ms()
    late_before = pacer.late_edits  # type: ignore[attr-defined]
    cpu = await _engine_cpu(cpu_window_s)
    latencies, playout, engine_ms = [], [], []
    for i in range(cues):
        pitch = 60 + (i * 5) % 12
        sent_ms = time.time() * 1000
        async with http.post(base + "/cue", json={
                "command": "note.on", "args": {"pitch": pitch, "syllable": "a"}}) as reply:
            at = int((await reply.json())["data"]["at_sample"])
        engine_ms.append(handles["director"].last_cue_latency_ms)  # type: ignore[attr-defined]
        await asyncio.sleep(0.45)
        async with http.post(base + "/cue", json={
                "command": "note.off", "args": {"pitch": pitch}}):
            pass
        await asyncio.sleep(0.35)
        live = await page.evaluate(
            "({o: window.livesinger.onsetsEpochMs, p: window.livesinger.playoutLog})")
        after = [t for t in live["o"] if t >= sent_ms - 5]
        if after:
            latencies.append(after[0] - sent_ms)
        reached = [(ms, s) for ms, s in live["p"] if s >= at]
        if reached:
            ms, s = reached[0]
            playout.append(ms - (s - at) * 1000 / SAMPLE_RATE_HZ - sent_ms)
    buffers = await page.evaluate(
        "({j: window.livesinger.latencyMs, o: window.livesinger.outputLatencyMs,"
        " m: window.livesinger.jitterBufferMinimumMs, t: window.livesinger.bufferTargetMs,"
        " path: window.livesinger.path, h: window.livesinger.latencyHint})")
    await asyncio.sleep(0.5)  # the page measures each vowel once its frames are shown
    page_after = await page.evaluate(PAGE_COUNTERS)
    sync = await page.evaluate("window.livesinger.syncErrorsMs.slice(-400)")
    abs_sync = np.abs(np.array(sync)) if sync else np.array([np.nan])
    vowels = int(page_after["vowels"]) - int(page_before["vowels"])
    vowel_sync = np.array(await page.evaluate(
        f"window.livesinger.vowelSyncMs.slice(-{max(vowels, 1)})") if vowels > 0 else [np.nan])
    arrivals = int(page_after["arrivals"]) - int(page_before["arrivals"])
    arrival_gap = await page.evaluate(
        "((n) => { const a = window.livesinger.trace.arrivals.slice(-n); let g = 0;"
        " for (let i = 1; i < a.length; i++) g = Math.max(g, a[i][0] - a[i - 1][0]);"
        " return a.length > 1 ? g : null; })", max(arrivals, 0))
    return {
        "bench": "webrtc", "path": buffers["path"], "viewers": count,
        "whep_listeners": count - 1,
        "viewers_connected": len(getattr(hub, "viewers", {})) if hub else None,
        "cue_to_audio_ms": _median(latencies),
        "cue_to_audio_ms_max": round(float(np.max(latencies)), 2) if latencies else None,
        "cues_heard": len(latencies), "cues": cues,
        "engine_cue_ms": _median(engine_ms),
        "cue_to_playout_ms": _median(playout),
        "jitter_buffer_ms": _round(buffers["j"]),
        "jitter_buffer_min_ms": _round(buffers["m"]),
        "buffer_target_ms": _round(buffers["t"]),
        **{key: round(float(page_after[key]) - float(page_before[key]), 2)
           for key in PAGE_COUNTERS_KEYS},
        "output_latency_ms": _round(buffers["o"]),
        "latency_hint": buffers["h"],
        "sync_err_ms_p50": _round(np.nanmedian(vowel_sync) if vowels > 0 else None),
        "sync_err_ms_p99": _round(np.nanpercentile(np.abs(vowel_sync), 99)
                                  if vowels > 0 else None),
        "sync_vowels": vowels,
        "frame_sync_ms_p50": round(float(np.nanpercentile(abs_sync, 50)), 3),
        "frame_sync_ms_p99": round(float(np.nanpercentile(abs_sync, 99)), 3),
        "arrival_gap_ms_max": _round(arrival_gap),
        "send_gap_cpu_ms": gaps.take_cpu_ms(),
        "send_gap_ms_max": gaps.take_ms(),
        "voice_dropped": _voice_dropped(hub) - dropped_before,
        "cpu_per_viewer": round(max(0.0, cpu - idle_cpu) / count, 4),
        "engine_cpu": round(cpu, 3), "engine_cpu_idle": round(idle_cpu, 3),
        "xruns": pacer.xruns - xruns_before,  # type: ignore[attr-defined]
        "late_edits": pacer.late_edits - late_before,  # type: ignore[attr-defined]
        "lookahead_ms": round(1000 * pacer.lookahead_chunks  # type: ignore[attr-defined]
                              * pacer.config.chunk_samples  # type: ignore[attr-defined]
                              / SAMPLE_RATE_HZ, 1),
        "machine": machine_name(), "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
