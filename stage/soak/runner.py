"""``livesinger soak``: a real show under everything at once, for N minutes, as one JSON object.

A ``serve`` runs in this process (OSC, MQTT through a mosquitto started here on a free
loopback port, the web server with WHEP listeners, mocap as VMC from a capture process of its
own looping an image folder (``stage.soak.mocap``), recording into a temp folder) while the
soak:

- sends cues on a schedule over HTTP, each carrying an id (an ``expr tension`` value), and
  songs (load / play / stop); each acknowledged cue is checked against the order in which the
  show applied it (a tap on the Director's ``handle``);
- plays live notes over OSC UDP;
- lets WHEP listeners join and leave every few seconds, one in three without a goodbye (its
  peer closed, no ``DELETE``);
- injects faults, timing each one's recovery: a voice that raises mid-phrase (30 % of the
  run), the synthesis process killed (40 %), the broker stopped and started (60 %), the mocap
  source process killed and started again (75 %);
- floods every surface with malformed input from a process of its own (``stage.soak.flood``).

The show runs as ``serve --realtime`` runs it (SCHED_FIFO synthesis), the deployment a show
machine should use, unless ``realtime=False`` (``--no-realtime``): ``serve``'s defaults.

Progress goes to stderr once a minute (and at warm-up). File descriptors and threads are
counted after warm-up and again at the end, once the churn is over and the listeners are
gone; the RSS of the show's process and of its synthesis process is sampled every second
(a sample a minute is kept) and reported per process. Everything the soak keeps grows by at
most a byte per cue, so a run of hours keeps its own bookkeeping small.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp

from singer.bench import machine_name
from stage.serve import REALTIME_PRIORITY, ServeOptions, serve
from stage.soak.parts import (
    CUE_ID_SCALE,
    Broker,
    CueTap,
    MocapSource,
    RssTrack,
    cpu_s,
    fds,
    free_port,
    images,
    loadavg,
    progress,
    rss_kb,
    sched_report,
    thread_sched,
    threads,
    unchanged,
    wait_for,
)
from stage.synthesis.worker import FAULT_HOOKS_ENV
from streams.vmc import osc_message

CUE_PERIOD_S = 0.25
LISTENER_PERIOD_S = 3.0
NOTE_PERIOD_S = 0.2
PROGRESS_PERIOD_S = 60.0
"""A progress line a minute on stderr (and one at warm-up)."""
SAMPLE_PERIOD_S = 1.0
"""How often RSS, fds and threads are looked at."""
RSS_SERIES_MAX = 240
"""Minute samples of RSS kept for the report (the first ones of longer runs are thinned)."""
LOADS = ("cues", "notes", "listeners", "flood", "faults")
"""What the soak runs beside the show (``--loads``: a subset, to find what makes a figure)."""
VOICE_FAULT_RENDERS = 20
"""Renders in a row in which the voice raises (20 chunks: 100 ms at 5 ms chunks)."""
KEEP_ERRORS = 5
"""Refusal messages kept for the report (counted beyond that)."""
WARMUP_FRACTION = 0.2
TRACE_FRAMES = 8
"""Frames kept per allocation with ``--trace-memory`` (enough to see which object owns it)."""
TRACE_TOP = 15
"""Allocation sites printed with ``--trace-memory``."""
DRAIN_TIMEOUT_S = 45.0
"""How long the end waits for the show to drop the listeners killed without a goodbye: a
peer that never closed is dropped when ICE consent expires (aioice: 6 checks 5 s apart,
30 s), later on a loaded machine."""
KILL_STOP_S = 20.0
"""No listener is killed this close to the end (the drain then waits for fewer)."""
FD_ALLOWANCE = 8
"""File descriptors the end may hold over the start: sockets the kernel is still closing
(TIME_WAIT is not an fd, but an aiortc peer's last UDP sockets close a moment after it)."""
THREAD_ALLOWANCE = 2
"""Threads the end may hold over the start: the default executor grows lazily (up to
``min(32, cpus + 4)`` workers) and keeps its idle workers."""


class Soak:
    """One soak run: the show, its load, its faults, and the counts of all of them."""

    def __init__(self, minutes: float, mocap: bool = True, flood_scale: float = 1.0,
                 trace_memory: bool = False, loads: tuple[str, ...] = LOADS,
                 realtime: bool = True) -> None:
        unknown = set(loads) - set(LOADS)
        if unknown:
            raise ValueError(f"unknown soak loads {sorted(unknown)}; known: {', '.join(LOADS)}")
        self.seconds = minutes * 60.0
        self.trace_memory = trace_memory
        self.minutes = minutes
        self.mocap = mocap
        self.flood_scale = flood_scale
        self.realtime = realtime
        """Run the show as ``serve --realtime`` (SCHED_FIFO synthesis), as a venue deploys it."""
        self.loads = tuple(load for load in LOADS if load in loads)
        self.cues_sent = self.cues_acked = self.songs_sent = self.songs_acked = 0
        self.notes_sent = 0
        self.cue_refused: list[str] = []
        self.cues_refused = 0
        self.listeners_joined = self.listeners_left = self.listeners_killed = 0
        self.listener_frames = 0
        self.listeners_refused: list[str] = []
        self.listeners_refused_count = 0
        self.faults: list[dict[str, object]] = []
        self.rss = {"serve": RssTrack(), "synthesis": RssTrack()}
        self.rss_series: collections.deque[dict[str, float]] = collections.deque(
            maxlen=RSS_SERIES_MAX)
        self.mocap_source: MocapSource | None = None
        self.sched_warm: dict[str, int] = {}
        """The synthesis render thread's ``thread_sched`` at warm-up."""
        self.stop = asyncio.Event()

    async def run(self) -> dict[str, object]:
        """Run the soak; returns the report."""
        hooks = os.environ.get(FAULT_HOOKS_ENV)
        os.environ[FAULT_HOOKS_ENV] = "1"  # the synthesis processes take injected faults
        try:
            with tempfile.TemporaryDirectory(prefix="livesinger-soak-") as tmp:
                return await self._run(Path(tmp))
        finally:
            if hooks is None:
                os.environ.pop(FAULT_HOOKS_ENV, None)
            else:
                os.environ[FAULT_HOOKS_ENV] = hooks

    async def _run(self, tmp: Path) -> dict[str, object]:
        if shutil.which("mosquitto") is None:
            raise RuntimeError("the soak needs mosquitto (apt-get install mosquitto)")
        broker = Broker(tmp)
        await broker.start()
        handles: dict[str, object] = {}
        ready = asyncio.Event()
        ports: dict[str, object] = {}

        def on_ready(p: dict[str, object]) -> None:
            ports.update(p)
            ready.set()

        vmc_port = free_port()
        opts = ServeOptions(osc_port=0, http_port=0, headless=True, mqtt=f"mqtt://127.0.0.1:"
                            f"{broker.port}", record=tmp / "recording",
                            mocap=f"vmc:127.0.0.1:{vmc_port}" if self.mocap else None,
                            realtime_priority=REALTIME_PRIORITY if self.realtime else None)
        (tmp / "recording").mkdir()
        progress(f"starting the show (mosquitto on port {broker.port}, "
                 f"{'serve --realtime' if self.realtime else 'default scheduling'})")
        engine = asyncio.ensure_future(serve(opts, on_ready, handles))
        try:
            waiter = asyncio.ensure_future(ready.wait())
            await asyncio.wait([waiter, engine], timeout=120,
                               return_when=asyncio.FIRST_COMPLETED)
            if engine.done():
                engine.result()  # its error, if it failed to start
            if not ready.is_set():
                raise RuntimeError("the show did not start within 120 s")
            if self.mocap:
                self.mocap_source = MocapSource(images(tmp / "frames"), vmc_port)
                await self.mocap_source.start()
            return await self._soak(broker, handles, ports)
        finally:
            if self.mocap_source is not None:
                await self.mocap_source.kill()
            engine.cancel()
            await asyncio.gather(engine, return_exceptions=True)
            await broker.stop()

    async def _soak(self, broker: Broker, handles: dict[str, Any],
                    ports: dict[str, object]) -> dict[str, object]:
        pacer, director, hub = handles["pacer"], handles["director"], handles["hub"]
        tap = CueTap(director)
        base = f"http://127.0.0.1:{ports['http']}"
        xruns_start, late_start = pacer.xruns, pacer.late_edits
        flood = None
        if "flood" in self.loads:
            flood = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "stage.soak.flood", "127.0.0.1", str(ports["osc"]),
                str(ports["http"]), "--mqtt-port", str(broker.port), "--seconds",
                str(self.seconds + 30), "--rate-scale", str(self.flood_scale),
                stdout=asyncio.subprocess.PIPE)
            assert flood.stdout is not None
            await flood.stdout.readline()
        start = time.monotonic()
        cpu_start = cpu_s()
        warm = min(30.0, self.seconds * WARMUP_FRACTION)
        marks: dict[str, float] = {}
        flooded: dict[str, Any] = {"sent": {}, "errors": {}}
        try:
            async with aiohttp.ClientSession() as http:
                loops = [self._run_progress(start, pacer, tap, marks, warm)]
                if "cues" in self.loads:
                    loops.append(self._run_cues(http, base))
                if "notes" in self.loads:
                    loops.append(self._run_notes(int(str(ports["osc"]))))
                if "listeners" in self.loads:
                    loops.append(self._run_listeners(http, base + "/whep"))
                if "faults" in self.loads:
                    loops.append(self._run_faults(broker, pacer, handles, start))
                tasks = [asyncio.ensure_future(loop) for loop in loops]
                await asyncio.sleep(self.seconds)
                self.stop.set()
                results = await asyncio.gather(*tasks, return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
            elapsed = time.monotonic() - start
            cpu = (cpu_s() - cpu_start) / elapsed
            render_thread = sched_report(self.sched_warm, thread_sched(pacer.synthesis.pid))
            if flood is not None:
                flood.send_signal(signal.SIGINT)
                out, _ = await asyncio.wait_for(flood.communicate(), 30)
                flooded = json.loads(out.decode().strip().splitlines()[-1])
        except BaseException:
            if flood is not None and flood.returncode is None:  # no flood left behind
                flood.kill()
                await flood.wait()
            raise
        drain_s = await wait_for(lambda: not hub.viewers, DRAIN_TIMEOUT_S)  # killed peers
        await asyncio.sleep(1.0)
        self._sample_rss(pacer, time.monotonic())
        if self.trace_memory and tracemalloc.is_tracing():
            gc.collect()  # dead peers and clients sit in reference cycles until a full pass
            _print_growth(tracemalloc.take_snapshot())
            tracemalloc.stop()
        sent = dict(flooded["sent"])
        xruns_after_warmup = pacer.xruns - int(marks.get("xruns", pacer.xruns))
        xruns_in_faults = sum(int(str(f.get("xruns", 0))) for f in self.faults)
        rss = {name: track.report() for name, track in self.rss.items()}
        mocap = handles.get("mocap")
        return {
            "minutes": self.minutes, "seconds": round(elapsed, 1), "loads": list(self.loads),
            "realtime": {"asked": self.realtime, "granted": pacer.realtime_scheduling},
            "xruns": pacer.xruns - xruns_start,
            "xruns_after_warmup": xruns_after_warmup,
            "xruns_in_faults": xruns_in_faults,
            "xruns_outside_faults": xruns_after_warmup - xruns_in_faults,
            "late_edits": pacer.late_edits - late_start,
            "late_handouts": pacer.late_handouts - int(marks.get("handouts", 0)),
            "handout_lag_ms_max": round(pacer.handout_lag_max_ms, 1),
            "cues_sent": self.cues_sent, "cues_acknowledged": self.cues_acked,
            "cues_applied": tap.applied,
            "cues_lost": self.cues_sent - tap.distinct(self.cues_sent),
            "cues_reordered": tap.reordered, "cues_refused": self.cues_refused,
            "cue_refusals": self.cue_refused,
            "songs_sent": self.songs_sent, "songs_acknowledged": self.songs_acked,
            "notes_sent": self.notes_sent,
            "listeners": {"joined": self.listeners_joined, "left": self.listeners_left,
                          "killed": self.listeners_killed, "frames": self.listener_frames,
                          "refused": self.listeners_refused_count,
                          "refusals": self.listeners_refused,
                          "left_at_end": len(hub.viewers), "drain_s": drain_s},
            "mocap": None if mocap is None else {
                "frames": mocap.receiver.frames, "bad_packets": mocap.receiver.bad_packets},
            "malformed_sent": {**sent, "total": sum(sent.values())},
            "malformed_refused_connections": flooded["errors"],
            "rss": rss,
            "rss_warm_kb": rss["serve"]["warm_kb"], "rss_end_kb": rss["serve"]["end_kb"],
            "rss_growth_pct": max(float(str(r["growth_pct"])) for r in rss.values()),
            "rss_series": list(self.rss_series),
            "fds_start": int(marks.get("fds", fds())), "fds_end": fds(),
            "threads_start": int(marks.get("threads", threads())), "threads_end": threads(),
            "fd_allowance": FD_ALLOWANCE, "thread_allowance": THREAD_ALLOWANCE,
            "engine_cpu": round(cpu, 3), "synthesis": pacer.synthesis_state(),
            "synthesis_thread": render_thread,
            "helper_restarts": {k: v for k, v in handles["helpers"].restarts.items() if v},
            "collector": handles["collector"].stats() if handles.get("collector") else None,
            "faults": self.faults, "machine": machine_name(), "cpus": os.cpu_count(),
            "loadavg": loadavg(),
        }

    def _sample_rss(self, pacer: Any, now: float) -> None:
        self.rss["serve"].sample(os.getpid(), now)
        restarting = bool(pacer.synthesis_state()["resuming"])
        self.rss["synthesis"].sample(pacer.synthesis.pid, now, settled=not restarting)

    async def _run_cues(self, http: aiohttp.ClientSession, base: str) -> None:
        """An id-carrying cue every ``CUE_PERIOD_S``, on a fixed schedule (a slow reply does
        not slow the rate); a song step every 24 of them."""
        songs: list[dict[str, object]] = [{"command": "song.load", "args": {"song": "twinkle"}},
                 {"command": "song.play", "args": {"beat": 0}},
                 {"command": "song.stop", "args": {}}]
        first = time.monotonic()
        while not self.stop.is_set():
            cue_id = self.cues_sent
            body: dict[str, object] = {"command": "expr", "args": {"name": "tension",
                                                "value": cue_id * CUE_ID_SCALE}}
            self.cues_sent += 1
            if await self._post(http, base, body):
                self.cues_acked += 1
            if cue_id % 24 == 0 and "cues" in self.loads:
                self.songs_sent += 1
                if await self._post(http, base, songs[(cue_id // 24) % len(songs)]):
                    self.songs_acked += 1
            await asyncio.sleep(max(0.0, first + self.cues_sent * CUE_PERIOD_S
                                    - time.monotonic()))

    async def _post(self, http: aiohttp.ClientSession, base: str,
                    body: dict[str, object]) -> bool:
        async with http.post(base + "/cue", json=body) as reply:
            if reply.status == 200:
                return True
            self.cues_refused += 1
            if len(self.cue_refused) < KEEP_ERRORS:
                self.cue_refused.append(f"{body['command']}: {reply.status} "
                                        f"{await reply.text()}")
            return False

    async def _run_notes(self, osc_port: int) -> None:
        """Live notes over OSC UDP: on, then off, a fifth apart, round and round."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            n = 0
            while not self.stop.is_set():
                pitch = 60 + (n * 7) % 12
                sock.sendto(osc_message("/livesinger/note/on", "ifs", pitch, 0.7, "la"),
                            ("127.0.0.1", osc_port))
                await asyncio.sleep(NOTE_PERIOD_S)
                sock.sendto(osc_message("/livesinger/note/off", "i", pitch),
                            ("127.0.0.1", osc_port))
                self.notes_sent += 2
                n += 1

    async def _run_listeners(self, http: aiohttp.ClientSession, url: str) -> None:
        """WHEP listeners joining and leaving; one in three (the first) without a goodbye."""
        from streams.webrtc.whep_client import WhepError, WhepListener

        live: list[WhepListener] = []
        n = 0
        try:
            while not self.stop.is_set():
                listener = WhepListener(url)
                try:
                    await listener.start(http)
                except WhepError as err:  # counted: a viewer the show turned away
                    self.listeners_refused_count += 1
                    if len(self.listeners_refused) < KEEP_ERRORS:
                        self.listeners_refused.append(str(err))
                    await _kill_listener(listener)
                else:
                    live.append(listener)
                    self.listeners_joined += 1
                await asyncio.sleep(LISTENER_PERIOD_S)
                if len(live) >= 2:
                    gone = live.pop(0)
                    self.listener_frames += gone.frames
                    n += 1
                    if n % 3 == 1 and time.monotonic() < self._killable_until:
                        await _kill_listener(gone)
                        self.listeners_killed += 1
                    else:
                        await gone.stop(http)
                        self.listeners_left += 1
        finally:
            for listener in live:
                self.listener_frames += listener.frames
                await listener.stop(http)
                self.listeners_left += 1

    _killable_until = float("inf")

    async def _run_faults(self, broker: Broker, pacer: Any, handles: dict[str, Any],
                          start: float) -> None:
        """A voice raising at 30 %, the synthesis process killed at 40 %, the broker
        restarted at 60 %, the mocap source killed and restarted at 75 % of the run."""
        self._killable_until = start + self.seconds - KILL_STOP_S
        for at, fault in ((0.3, self._fault_voice), (0.4, self._fault_synthesis),
                          (0.6, self._fault_broker), (0.75, self._fault_mocap)):
            await self._sleep_until(start + at * self.seconds)
            if self.stop.is_set():
                return
            await fault(broker, pacer, handles)

    async def _fault_voice(self, _broker: Broker, pacer: Any, handles: dict[str, Any]) -> None:
        """Every singer's voice raises for ``VOICE_FAULT_RENDERS`` renders: each line must
        sing on in the built-in voice in the same chunk (no chunk lost, no render error)."""
        singers = [line.name for line in list(handles["director"].ensemble.lines)]
        errors, xruns = pacer.render_errors, pacer.xruns
        carried = pacer.synthesis_state()["voice_fallbacks"]
        want = carried + VOICE_FAULT_RENDERS * len(singers)
        for singer in singers:
            pacer.synthesis.inject_voice_fault(singer, VOICE_FAULT_RENDERS)
        progress(f"fault: the voice of {', '.join(singers)} raises for "
                  f"{VOICE_FAULT_RENDERS} renders")
        seconds = await wait_for(lambda: pacer.synthesis_state()["voice_fallbacks"] >= want,
                                  30)
        now = pacer.synthesis_state()["voice_fallbacks"]
        self.faults.append({"fault": "voice_raised", "recovered": seconds is not None
                            and pacer.render_errors == errors, "recovery_s": seconds,
                            "rows_carried_on": now - carried,
                            "chunks_lost": pacer.render_errors - errors,
                            "xruns": pacer.xruns - xruns})

    async def _fault_synthesis(self, _broker: Broker, pacer: Any,
                               _handles: dict[str, Any]) -> None:
        pid = pacer.synthesis.pid
        restarts, xruns = pacer.synthesis_restarts, pacer.xruns
        os.kill(pid, signal.SIGKILL)
        progress(f"fault: synthesis process {pid} killed")
        seconds = await wait_for(
            lambda: pacer.synthesis_restarts > restarts and pacer.synthesis.alive()
            and not pacer.synthesis_state()["resuming"], 60)
        self.faults.append({"fault": "synthesis_killed", "recovered": seconds is not None,
                            "recovery_s": seconds, "xruns": pacer.xruns - xruns,
                            "gap_ms": pacer.synthesis_state()["last_gap_ms"]})

    async def _fault_broker(self, broker: Broker, pacer: Any,
                            handles: dict[str, Any]) -> None:
        mqtt = handles["mqtt"]
        xruns = pacer.xruns
        await broker.stop()
        progress("fault: broker killed")
        await wait_for(lambda: not mqtt.connected, 10)
        await asyncio.sleep(1.0)
        await broker.start()
        seconds = await wait_for(lambda: bool(mqtt.connected), 60)
        self.faults.append({"fault": "broker_restarted", "recovered": seconds is not None,
                            "recovery_s": seconds, "outages": mqtt.outages,
                            "xruns": pacer.xruns - xruns})

    async def _fault_mocap(self, _broker: Broker, pacer: Any,
                           handles: dict[str, Any]) -> None:
        """Kill the capture process; once no pose arrives, start it again: recovery is
        from the restart until poses arrive at the show again."""
        source, feed = self.mocap_source, handles.get("mocap")
        if source is None or feed is None:
            return
        xruns = pacer.xruns
        await source.kill()
        progress("fault: mocap source killed")
        # the show goes on without poses (the avatar eases to idle): once the last packets
        # in flight are taken in, no pose arrives for a second
        silent = await wait_for(unchanged(lambda: feed.receiver.frames, 1.0), 10) is not None
        frames = feed.receiver.frames
        began = time.monotonic()
        ready_s = await source.start()
        seconds = await wait_for(lambda: feed.receiver.frames > frames, 60)
        self.faults.append({"fault": "mocap_restarted", "recovered": seconds is not None
                            and silent, "recovery_s": None if seconds is None
                            else round(time.monotonic() - began, 3),
                            "source_start_s": ready_s, "xruns": pacer.xruns - xruns})

    async def _sleep_until(self, when: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), max(0.0, when - time.monotonic()))

    async def _run_progress(self, start: float, pacer: Any, tap: CueTap,
                            marks: dict[str, float], warm_s: float) -> None:
        """Sample RSS every second, mark the counts at warm-up, print a line a minute."""
        printed = start
        minute = 0
        while not self.stop.is_set():
            await self._sleep_until(time.monotonic() + SAMPLE_PERIOD_S)
            now = time.monotonic()
            elapsed = now - start
            self._sample_rss(pacer, now)
            warmed = "fds" not in marks and elapsed >= warm_s
            if warmed:
                marks.update(fds=fds(), threads=threads(), xruns=pacer.xruns,
                             handouts=pacer.late_handouts)
                self.sched_warm = thread_sched(pacer.synthesis.pid)
                for track in self.rss.values():
                    track.rebase()
                if self.trace_memory:  # from here on: what is still held at the end grew
                    tracemalloc.start(TRACE_FRAMES)
            if elapsed >= 60 * (minute + 1):
                minute += 1
                self.rss_series.append({"s": round(elapsed), "serve_kb": rss_kb(),
                                        "synthesis_kb": rss_kb(pacer.synthesis.pid or 0)})
            if warmed or now - printed >= PROGRESS_PERIOD_S:
                printed = now
                progress(f"{elapsed:6.1f} s: {self.cues_sent} cues sent, {tap.applied} "
                          f"applied, {self.listeners_joined} listeners joined, xruns "
                          f"{pacer.xruns}, rss serve {rss_kb() // 1024} MiB, synthesis "
                          f"{rss_kb(pacer.synthesis.pid or 0) // 1024} MiB, fds {fds()}, "
                          f"threads {threads()}, load {loadavg()}")


def _print_growth(snapshot: tracemalloc.Snapshot) -> None:
    """Print to stderr the allocations made after warm-up and still held, biggest first."""
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    progress(f"trace-memory: {total / 2**20:.2f} MiB allocated after warm-up still held")
    for stat in snapshot.statistics("traceback")[:TRACE_TOP]:
        progress(f"trace-memory: {stat.size / 1024:9.1f} KiB in {stat.count} blocks")
        for line in stat.traceback.format(limit=TRACE_FRAMES, most_recent_first=True):
            print(f"soak:     {line}", file=sys.stderr)
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in _WATCHED_TYPES:
            counts[name] = counts.get(name, 0) + 1
    progress(f"trace-memory: live objects at the end: {counts}")
    sys.stderr.flush()


_WATCHED_TYPES = frozenset({"RTCPeerConnection", "RTCRtpSender", "RTCDtlsTransport",
                            "RTCIceTransport", "Viewer", "Client", "Message", "RtpPacket"})
"""Types counted at the end with ``--trace-memory`` (after a full collection): WHEP peers and
MQTT clients of the past must be gone once their listeners left."""


async def _kill_listener(listener: Any) -> None:
    """End a WHEP listener without a goodbye: no ``DELETE``, its peer just closes."""
    pull = listener._pull
    if pull is not None:
        pull.cancel()
        await asyncio.gather(pull, return_exceptions=True)
    await listener._pc.close()


def soak(minutes: float, mocap: bool = True, flood_scale: float = 1.0,
         trace_memory: bool = False, loads: tuple[str, ...] = LOADS,
         realtime: bool = True) -> dict[str, object]:
    """Run a soak of ``minutes``; the report (see the module's docstring).

    ``trace_memory`` traces allocations from warm-up on and prints to stderr, at the end, the
    biggest of those still held (what grew). ``loads``: what runs beside the show (``LOADS``).
    ``realtime``: the show as ``serve --realtime`` runs it (False: ``serve``'s defaults).
    """
    return asyncio.run(Soak(minutes, mocap, flood_scale, trace_memory, loads, realtime).run())
