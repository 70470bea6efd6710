"""WebRTC benchmark through Janus (``bench webrtc --janus``): the engine publishes the show
once into a local Janus (``streams.janus.local``); one stage page in headless Chromium watches
through Janus and measures, N - 1 aiortc subscribers (``streams.janus.subscriber``, in a
process of their own) are the load.

Per viewer count: the engine's CPU (flat is the goal: it sends to Janus once, whatever the
audience), Janus's own CPU and its cost per viewer, the subscribers' process CPU, and the
page's figures as ``bench webrtc`` measures them (cue -> audible through Janus, its parts,
pose/audio sync; ``stage.bench.web``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from stage.bench.engine import served
from stage.bench.web import CHROMIUM_ARGS, _engine_cpu, _measure, chromium_launcher
from stage.serve import ServeOptions
from streams.janus.local import LocalJanus

ROOM = 5150
CLOCK_READY = ("window.livesinger && window.livesinger.rtpMinusShow !== null"
               " && window.livesinger.playoutLog.length > 20")


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_webrtc_janus(viewer_counts: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64),
                             cues: int = 8, cpu_window_s: float = 3.0,
                             on_row: Callable[[dict[str, object]], None] | None = None,
                             browser_idle: bool = False) -> list[dict[str, object]]:
    """One result per viewer count (each also handed to ``on_row`` as soon as measured). A
    count whose subscribers cannot all connect ends the run with a row saying so.
    ``browser_idle``: the page's Chromium under ``SCHED_IDLE`` (``bench webrtc``'s)."""
    from playwright.async_api import async_playwright

    janus = LocalJanus()
    await asyncio.to_thread(janus.start)
    assert janus.process is not None
    janus_pid = janus.process.pid
    opts = ServeOptions(osc_port=None, http_port=0, headless=True, chunk_ms=5.0,
                        publish=(f"janus:{janus.url}?room={ROOM}",), audible_label="off")
    results: list[dict[str, object]] = []
    async with contextlib.AsyncExitStack() as stack:  # the show ends first, then Janus
        stack.push_async_callback(asyncio.to_thread, janus.stop)
        show = await stack.enter_async_context(served(opts))
        handles = show.handles
        publisher = handles["publishers"][0]  # type: ignore[index]
        while publisher.state != "live":
            await asyncio.sleep(0.1)
        base = f"http://127.0.0.1:{show.ports['http']}"
        start_janus = process_cpu_s(janus_pid)
        idle_cpu = await _engine_cpu(cpu_window_s)  # publishing, nobody watching
        janus_idle = (process_cpu_s(janus_pid) - start_janus) / cpu_window_s
        async with async_playwright() as pw, aiohttp.ClientSession() as http, \
                chromium_launcher(browser_idle) as chromium:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 480, "height": 360})
            await page.goto(f"{base}/?overlay=0&janus={janus.url}&room={ROOM}")
            await page.wait_for_function(CLOCK_READY, timeout=60_000)
            for count in viewer_counts:
                try:
                    subscribers = await _start_subscribers(janus.url, count - 1)
                except (RuntimeError, TimeoutError) as err:
                    row: dict[str, object] = {"bench": "webrtc", "path": "janus",
                                              "viewers": count, "error": str(err)}
                    results.append(row)
                    if on_row is not None:
                        on_row(row)
                    break
                try:
                    janus_before, t0 = process_cpu_s(janus_pid), time.monotonic()
                    subs_before = process_cpu_s(subscribers.pid) if subscribers else 0.0
                    row = await _measure(page, http, base, handles, count, cues,
                                         cpu_window_s, idle_cpu)
                    elapsed = time.monotonic() - t0
                    janus_cpu = (process_cpu_s(janus_pid) - janus_before) / elapsed
                    subs_cpu = ((process_cpu_s(subscribers.pid) - subs_before) / elapsed
                                if subscribers else 0.0)
                finally:
                    await _stop_subscribers(subscribers)
                row.pop("whep_listeners", None)
                row.update({
                    "path": f"janus/{row['path']}", "subscribers": count - 1,
                    "viewers_connected": count, "publisher_state": publisher.state,
                    "janus_cpu": round(janus_cpu, 3), "janus_cpu_idle": round(janus_idle, 3),
                    "janus_cpu_per_viewer": round(max(0.0, janus_cpu - janus_idle) / count, 4),
                    "subscribers_cpu": round(subs_cpu, 3), "browser_idle": browser_idle,
                    "loadavg_1m": round(os.getloadavg()[0], 2)})
                results.append(row)
                if on_row is not None:
                    on_row(row)
            await page.close()
            await browser.close()
    return results


async def _start_subscribers(url: str, count: int) -> asyncio.subprocess.Process | None:
    """``count`` aiortc subscribers in a process of their own, once all are watching."""
    if count <= 0:
        return None
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.janus.subscriber", url, str(ROOM), "--count", str(count),
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30 + 2 * count)
    except TimeoutError:
        await _stop_subscribers(proc)
        raise TimeoutError(f"{count} Janus subscribers did not all start in time") from None
    if b"listening" not in line:
        await _stop_subscribers(proc)
        raise RuntimeError(f"Janus subscribers did not start: {line!r}")
    return proc


async def _stop_subscribers(proc: asyncio.subprocess.Process | None) -> None:
    if proc is None or proc.returncode is not None:
        return
    proc.send_signal(signal.SIGINT)  # they leave Janus cleanly
    try:
        await asyncio.wait_for(proc.wait(), timeout=30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
