"""``livesinger soak``: a real show under everything at once, for N minutes, as one JSON object.

A ``serve`` runs in this process (OSC, MQTT through a mosquitto started here on a free
loopback port, the web server with WHEP listeners, mocap from a generated image folder,
recording into a temp folder) while the soak:

- sends cues on a schedule over HTTP, each carrying an id (an ``expr tension`` value), and
  songs (load / play / stop); each acknowledged cue is checked against the order in which the
  show applied it (a tap on the Director's ``handle``);
- plays live notes over OSC UDP;
- lets WHEP listeners join and leave every few seconds, one in three without a goodbye (its
  peer closed, no ``DELETE``);
- kills the synthesis process once and stops and starts the broker once, timing recovery;
- floods every surface with malformed input from a process of its own (``stage.soak_flood``).

Progress goes to stderr every few seconds. File descriptors and threads are counted after
warm-up and again at the end, once the churn is over and the listeners are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from singer.bench import machine_name
from stage.serve import ServeOptions, serve
from streams.cue import Cue
from streams.vmc import osc_message

CUE_PERIOD_S = 0.25
LISTENER_PERIOD_S = 3.0
NOTE_PERIOD_S = 0.2
PROGRESS_PERIOD_S = 5.0
WARMUP_FRACTION = 0.2
TRACE_FRAMES = 8
"""Frames kept per allocation with ``--trace-memory`` (enough to see which object owns it)."""
TRACE_TOP = 15
"""Allocation sites printed with ``--trace-memory``."""
DRAIN_TIMEOUT_S = 20.0
FD_ALLOWANCE = 8
"""File descriptors the end may hold over the start: sockets the kernel is still closing
(TIME_WAIT is not an fd, but an aiortc peer's last UDP sockets close a moment after it)."""
THREAD_ALLOWANCE = 2
"""Threads the end may hold over the start: the default executor grows lazily (up to
``min(32, cpus + 4)`` workers) and keeps its idle workers."""
CUE_ID_SCALE = 1e-6
"""Cue id ``n`` travels as ``expr tension`` value ``n * CUE_ID_SCALE`` (tension is 0 .. 1)."""


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _threads() -> int:
    return threading.active_count()


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _progress(text: str) -> None:
    print(f"soak: {text}", file=sys.stderr, flush=True)


class Broker:
    """A mosquitto on a free loopback port that the soak can stop and start."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                               "persistence false\n")
        self.log = folder / "mosquitto.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start mosquitto and wait until it accepts connections."""
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                "mosquitto", "-c", str(self.config), stdout=log, stderr=log)
        for _ in range(500):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            return
        raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}")

    async def stop(self) -> None:
        """Kill mosquitto (no goodbye to its clients)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


class CueTap:
    """Records the ids of the id-carrying cues in the order the show applied them."""

    def __init__(self, director: Any) -> None:
        self.applied: list[int] = []
        inner: Callable[[Cue], Awaitable[object]] = director.handle

        async def handle(cue: Cue) -> object:
            reply = await inner(cue)
            if cue.kind == "expr" and cue.args.get("name") == "tension" and cue.source == "http":
                value = cue.args["value"]
                assert isinstance(value, float)
                self.applied.append(round(value / CUE_ID_SCALE))
            return reply

        director.handle = handle  # the provenance wrapper calls the instance's handle


async def _wait_for(check: Callable[[], bool], timeout_s: float) -> float | None:
    """Seconds until ``check()`` holds, or ``None`` after ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return round(time.monotonic() - start, 3)
        await asyncio.sleep(0.02)
    return None


def _images(folder: Path, count: int = 60) -> Path:
    """A folder of small generated frames for the mocap source (no person in them)."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        frame = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"frame{i:04d}.png"), frame)
    return folder


class Soak:
    """One soak run: the show, its load, its faults, and the counts of all of them."""

    def __init__(self, minutes: float, mocap: bool = True, flood_scale: float = 1.0,
                 trace_memory: bool = False) -> None:
        self.seconds = minutes * 60.0
        self.trace_memory = trace_memory
        self.minutes = minutes
        self.mocap = mocap
        self.flood_scale = flood_scale
        self.cues_sent = self.cues_acked = self.songs_sent = self.songs_acked = 0
        self.notes_sent = 0
        self.cue_refused: list[str] = []
        self.listeners_joined = self.listeners_left = self.listeners_killed = 0
        self.listener_frames = 0
        self.listeners_refused: list[str] = []
        self.faults: list[dict[str, object]] = []
        self.stop = asyncio.Event()

    async def run(self) -> dict[str, object]:
        """Run the soak; returns the report."""
        with tempfile.TemporaryDirectory(prefix="livesinger-soak-") as tmp:
            return await self._run(Path(tmp))

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

        opts = ServeOptions(osc_port=0, http_port=0, headless=True, mqtt=f"mqtt://127.0.0.1:"
                            f"{broker.port}", record=tmp / "recording",
                            mocap=str(_images(tmp / "frames")) if self.mocap else None)
        (tmp / "recording").mkdir()
        _progress(f"starting the show (mosquitto on port {broker.port})")
        engine = asyncio.ensure_future(serve(opts, on_ready, handles))
        try:
            waiter = asyncio.ensure_future(ready.wait())
            await asyncio.wait([waiter, engine], timeout=120,
                               return_when=asyncio.FIRST_COMPLETED)
            if engine.done():
                engine.result()  # its error, if it failed to start
            if not ready.is_set():
                raise RuntimeError("the show did not start within 120 s")
            return await self._soak(broker, handles, ports)
        finally:
            engine.cancel()
            await asyncio.gather(engine, return_exceptions=True)
            await broker.stop()

    async def _soak(self, broker: Broker, handles: dict[str, Any],
                    ports: dict[str, object]) -> dict[str, object]:
        pacer, director, hub = handles["pacer"], handles["director"], handles["hub"]
        tap = CueTap(director)
        base = f"http://127.0.0.1:{ports['http']}"
        xruns_start, late_start = pacer.xruns, pacer.late_edits
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "stage.soak_flood", "127.0.0.1", str(ports["osc"]),
            str(ports["http"]), "--mqtt-port", str(broker.port), "--seconds",
            str(self.seconds + 30), "--rate-scale", str(self.flood_scale),
            stdout=asyncio.subprocess.PIPE)
        assert flood.stdout is not None
        await flood.stdout.readline()
        start = time.monotonic()
        cpu_start = _cpu_s()
        warm = min(30.0, self.seconds * WARMUP_FRACTION)
        marks: dict[str, float] = {}
        try:
            async with aiohttp.ClientSession() as http:
                loops = [
                    self._run_cues(http, base),
                    self._run_notes(int(str(ports["osc"]))),
                    self._run_listeners(http, base + "/whep"),
                    self._run_faults(broker, pacer, handles, start),
                    self._run_progress(start, pacer, tap, marks, warm),
                ]
                tasks = [asyncio.ensure_future(loop) for loop in loops]
                await asyncio.sleep(self.seconds)
                self.stop.set()
                results = await asyncio.gather(*tasks, return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
            elapsed = time.monotonic() - start
            cpu = (_cpu_s() - cpu_start) / elapsed
            flood.send_signal(signal.SIGINT)
            out, _ = await asyncio.wait_for(flood.communicate(), 30)
            flooded = json.loads(out.decode().strip().splitlines()[-1])
        except BaseException:
            if flood.returncode is None:  # the soak failed: no flood left behind
                flood.kill()
                await flood.wait()
            raise
        drain_s = await _wait_for(lambda: not hub.viewers, DRAIN_TIMEOUT_S)  # killed peers
        await asyncio.sleep(1.0)
        if self.trace_memory and tracemalloc.is_tracing():
            gc.collect()  # dead peers and clients sit in reference cycles until a full pass
            _print_growth(tracemalloc.take_snapshot())
            tracemalloc.stop()
        acked = list(range(self.cues_acked))
        applied = [i for i in tap.applied if i < self.cues_sent]
        reordered = sum(1 for a, b in zip(applied, applied[1:], strict=False) if b < a)
        sent = dict(flooded["sent"])
        rss_warm = marks.get("rss_warm_kb", float(_rss_kb()))
        return {
            "minutes": self.minutes, "seconds": round(elapsed, 1),
            "xruns": pacer.xruns - xruns_start,
            "xruns_after_warmup": pacer.xruns - int(marks.get("xruns", pacer.xruns)),
            "xruns_in_faults": sum(int(str(f.get("xruns", 0))) for f in self.faults),
            "late_edits": pacer.late_edits - late_start,
            "cues_sent": self.cues_sent, "cues_acknowledged": len(acked),
            "cues_applied": len(applied), "cues_lost": self.cues_sent - len(set(applied)),
            "cues_reordered": reordered, "cues_refused": self.cue_refused[:5],
            "songs_sent": self.songs_sent, "songs_acknowledged": self.songs_acked,
            "notes_sent": self.notes_sent,
            "listeners": {"joined": self.listeners_joined, "left": self.listeners_left,
                          "killed": self.listeners_killed, "frames": self.listener_frames,
                          "refused": len(self.listeners_refused),
                          "refusals": self.listeners_refused[:3],
                          "left_at_end": len(hub.viewers), "drain_s": drain_s},
            "malformed_sent": {**sent, "total": sum(sent.values())},
            "malformed_refused_connections": flooded["errors"],
            "rss_warm_kb": int(rss_warm), "rss_end_kb": _rss_kb(),
            "rss_growth_pct": round(100 * (_rss_kb() - rss_warm) / rss_warm, 2),
            "fds_start": int(marks.get("fds", _fds())), "fds_end": _fds(),
            "threads_start": int(marks.get("threads", _threads())), "threads_end": _threads(),
            "fd_allowance": FD_ALLOWANCE, "thread_allowance": THREAD_ALLOWANCE,
            "engine_cpu": round(cpu, 3), "synthesis": pacer.synthesis_state(),
            "helper_restarts": {k: v for k, v in handles["helpers"].restarts.items() if v},
            "faults": self.faults, "machine": machine_name(), "cpus": os.cpu_count(),
        }

    async def _run_cues(self, http: aiohttp.ClientSession, base: str) -> None:
        """An id-carrying cue every ``CUE_PERIOD_S``; a song step every 24 of them."""
        songs: list[dict[str, object]] = [{"command": "song.load", "args": {"song": "twinkle"}},
                 {"command": "song.play", "args": {"beat": 0}},
                 {"command": "song.stop", "args": {}}]
        while not self.stop.is_set():
            cue_id = self.cues_sent
            body: dict[str, object] = {"command": "expr", "args": {"name": "tension",
                                                "value": cue_id * CUE_ID_SCALE}}
            self.cues_sent += 1
            if await self._post(http, base, body):
                self.cues_acked += 1
            if cue_id % 24 == 0:
                self.songs_sent += 1
                if await self._post(http, base, songs[(cue_id // 24) % len(songs)]):
                    self.songs_acked += 1
            await asyncio.sleep(CUE_PERIOD_S)

    async def _post(self, http: aiohttp.ClientSession, base: str,
                    body: dict[str, object]) -> bool:
        async with http.post(base + "/cue", json=body) as reply:
            if reply.status == 200:
                return True
            self.cue_refused.append(f"{body['command']}: {reply.status} {await reply.text()}")
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
        from streams.whep_client import WhepError, WhepListener

        live: list[WhepListener] = []
        n = 0
        try:
            while not self.stop.is_set():
                listener = WhepListener(url)
                try:
                    await listener.start(http)
                except WhepError as err:  # counted: a viewer the show turned away
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
        """The synthesis process killed at 40 %, the broker restarted at 60 % of the run."""
        self._killable_until = start + self.seconds - DRAIN_TIMEOUT_S
        await self._sleep_until(start + 0.4 * self.seconds)
        if self.stop.is_set():
            return
        pid = pacer.synthesis.pid
        restarts, xruns = pacer.synthesis_restarts, pacer.xruns
        os.kill(pid, signal.SIGKILL)
        _progress(f"fault: synthesis process {pid} killed")
        seconds = await _wait_for(
            lambda: pacer.synthesis_restarts > restarts and pacer.synthesis.alive()
            and not pacer.synthesis_state()["resuming"], 60)
        self.faults.append({"fault": "synthesis_killed", "recovered": seconds is not None,
                            "recovery_s": seconds, "xruns": pacer.xruns - xruns,
                            "gap_ms": pacer.synthesis_state()["last_gap_ms"]})
        await self._sleep_until(start + 0.6 * self.seconds)
        if self.stop.is_set():
            return
        mqtt = handles["mqtt"]
        await broker.stop()
        _progress("fault: broker killed")
        await _wait_for(lambda: not mqtt.connected, 10)
        await asyncio.sleep(1.0)
        await broker.start()
        seconds = await _wait_for(lambda: bool(mqtt.connected), 60)
        self.faults.append({"fault": "broker_restarted", "recovered": seconds is not None,
                            "recovery_s": seconds, "outages": mqtt.outages})

    async def _sleep_until(self, when: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), max(0.0, when - time.monotonic()))

    async def _run_progress(self, start: float, pacer: Any, tap: CueTap,
                            marks: dict[str, float], warm_s: float) -> None:
        while not self.stop.is_set():
            await self._sleep_until(time.monotonic() + PROGRESS_PERIOD_S)
            elapsed = time.monotonic() - start
            if "fds" not in marks and elapsed >= warm_s:
                marks.update(fds=_fds(), threads=_threads(), rss_warm_kb=_rss_kb(),
                             xruns=pacer.xruns)
                if self.trace_memory:  # from here on: what is still held at the end grew
                    tracemalloc.start(TRACE_FRAMES)
            _progress(f"{elapsed:6.1f} s: {self.cues_sent} cues sent, {len(tap.applied)} "
                      f"applied, {self.listeners_joined} listeners joined, xruns "
                      f"{pacer.xruns}, rss {_rss_kb() // 1024} MiB, fds {_fds()}")


def _print_growth(snapshot: tracemalloc.Snapshot) -> None:
    """Print to stderr the allocations made after warm-up and still held, biggest first."""
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    _progress(f"trace-memory: {total / 2**20:.2f} MiB allocated after warm-up still held")
    for stat in snapshot.statistics("traceback")[:TRACE_TOP]:
        _progress(f"trace-memory: {stat.size / 1024:9.1f} KiB in {stat.count} blocks")
        for line in stat.traceback.format(limit=TRACE_FRAMES, most_recent_first=True):
            print(f"soak:     {line}", file=sys.stderr)
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in _WATCHED_TYPES:
            counts[name] = counts.get(name, 0) + 1
    _progress(f"trace-memory: live objects at the end: {counts}")
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
         trace_memory: bool = False) -> dict[str, object]:
    """Run a soak of ``minutes``; the report (see the module's docstring).

    ``trace_memory`` traces allocations from warm-up on and prints to stderr, at the end, the
    biggest of those still held (what grew).
    """
    return asyncio.run(Soak(minutes, mocap, flood_scale, trace_memory).run())
