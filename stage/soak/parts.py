"""The soak's parts: its broker, the cue tap, RSS tracks, the mocap source and small probes.

``stage.soak.runner`` runs the show and its load with these; each is a thing the soak measures with
or a process it starts and kills (docs/benchmarks.md#soak-livesinger-soak).
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from streams.cue import Cue

SETTLE_S = 10.0
"""A replacement synthesis process's RSS is its baseline this long after it took over."""
CUE_ID_SCALE = 1e-6
"""Cue id ``n`` travels as ``expr tension`` value ``n * CUE_ID_SCALE`` (tension is 0 .. 1)."""


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def threads() -> int:
    return threading.active_count()


def rss_kb(pid: int | str = "self") -> int:
    """Resident memory of process ``pid`` in KiB (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def progress(text: str) -> None:
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

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

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
    """Checks the id-carrying cues in the order the show applied them: counts applied,
    distinct and reordered ones (an id below the last one) in a byte per id."""

    def __init__(self, director: Any) -> None:
        self.applied = 0
        self.reordered = 0
        self._seen = bytearray()
        self._last = -1
        inner: Callable[[Cue], Awaitable[object]] = director.handle

        async def handle(cue: Cue) -> object:
            reply = await inner(cue)
            if cue.kind == "expr" and cue.args.get("name") == "tension" and cue.source == "http":
                value = cue.args["value"]
                assert isinstance(value, float)
                self._applied(round(value / CUE_ID_SCALE))
            return reply

        director.handle = handle  # the provenance wrapper calls the instance's handle

    def _applied(self, cue_id: int) -> None:
        self.applied += 1
        if cue_id < self._last:
            self.reordered += 1
        self._last = cue_id
        if cue_id >= len(self._seen):
            self._seen.extend(bytes(cue_id + 1 - len(self._seen)))
        self._seen[cue_id] = 1

    def distinct(self, below: int) -> int:
        """Distinct ids applied among ``0 .. below - 1``."""
        return self._seen.count(1, 0, below)


class RssTrack:
    """RSS of one process kind, sampled; a process that is replaced (the synthesis process
    after a kill) closes its segment, and the replacement's baseline is taken once it settled.
    Growth is the worst segment's, end against baseline."""

    def __init__(self) -> None:
        self.segments: list[dict[str, object]] = []
        self._pid: int | None = None
        self._since = 0.0
        self._base_kb = 0
        self._last_kb = 0

    def sample(self, pid: int | None, now: float, settled: bool = True) -> None:
        """Look at ``pid``'s RSS now (``settled``: its baseline may be taken)."""
        kb = rss_kb(pid) if pid is not None else 0
        if pid != self._pid:
            self._close()
            self._pid, self._since, self._base_kb, self._last_kb = pid, now, 0, 0
        if not kb:
            return
        if not self._base_kb and settled and now - self._since >= SETTLE_S * (
                len(self.segments) > 0):
            self._base_kb = kb
        self._last_kb = kb

    def rebase(self) -> None:
        """Take the baseline again at the next sample (after warm-up)."""
        self._base_kb = 0

    def _segment(self) -> dict[str, object] | None:
        if self._pid is None or not self._base_kb or not self._last_kb:
            return None
        return {"pid": self._pid, "warm_kb": self._base_kb, "end_kb": self._last_kb,
                "growth_pct": _pct(self._last_kb, self._base_kb)}

    def _close(self) -> None:
        segment = self._segment()
        if segment is not None:
            self.segments.append(segment)

    def report(self) -> dict[str, object]:
        """Every process's segment, the running one's last; ``growth_pct``: the worst."""
        segments = [*self.segments, *filter(None, [self._segment()])]
        worst = max((float(str(seg["growth_pct"])) for seg in segments), default=0.0)
        last = segments[-1] if segments else {}
        return {"warm_kb": last.get("warm_kb"), "end_kb": last.get("end_kb"),
                "growth_pct": worst, "segments": segments}


def _pct(end: float, start: float) -> float:
    return round(100 * (end - start) / start, 2) if start else 0.0


class MocapSource:
    """The capture process (``stage.soak.mocap``) sending VMC to the show; killable."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        """Start the capture; returns seconds until it said it is capturing."""
        began = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "stage.soak.mocap", str(self.folder), str(self.port),
            stdout=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        if not line:
            raise RuntimeError(f"the mocap source exited ({await self.proc.wait()})")
        return round(time.monotonic() - began, 3)

    async def kill(self) -> None:
        """Kill the capture without a goodbye."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.returncode is None:
                proc.kill()
            await proc.communicate()


async def wait_for(check: Callable[[], bool], timeout_s: float) -> float | None:
    """Seconds until ``check()`` holds, or ``None`` after ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return round(time.monotonic() - start, 3)
        await asyncio.sleep(0.02)
    return None


def unchanged(value: Callable[[], int], hold_s: float) -> Callable[[], bool]:
    """A check for ``wait_for``: true once ``value()`` has not changed for ``hold_s``."""
    seen = [value(), time.monotonic()]

    def check() -> bool:
        now = value()
        if now != seen[0]:
            seen[:] = [now, time.monotonic()]
        return time.monotonic() - float(seen[1]) >= hold_s

    return check


def images(folder: Path, count: int = 60) -> Path:
    """A folder of small generated frames for the mocap source (no person in them)."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        frame = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"frame{i:04d}.png"), frame)
    return folder


def loadavg() -> float:
    """The machine's one-minute load average."""
    return round(os.getloadavg()[0], 2)


def thread_sched(pid: int | None) -> dict[str, int]:
    """How the kernel has run thread ``pid`` (a process's main thread: the synthesis
    process's render loop) so far: on-CPU and run-queue wait time (ns), involuntary context
    switches, and its process's minor and major page faults; empty if it is gone."""
    if not pid:
        return {}
    task = Path(f"/proc/{pid}/task/{pid}")
    try:
        run_ns, wait_ns, _slices = (int(v) for v in (task / "schedstat").read_text().split())
        status = (task / "status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return {}
    switches = next((int(line.split()[1]) for line in status.splitlines()
                     if line.startswith("nonvoluntary_ctxt_switches:")), 0)
    fields = stat[stat.rindex(")") + 2:].split()  # after the command's name: field 3 on
    return {"pid": pid, "run_ns": run_ns, "wait_ns": wait_ns, "switches": switches,
            "minor_faults": int(fields[7]), "major_faults": int(fields[9])}


def sched_report(start: dict[str, int], end: dict[str, int]) -> dict[str, object]:
    """``thread_sched`` from ``start`` to ``end`` (from the thread's start if ``end`` is a
    later process: a replacement synthesis process)."""
    if not end:
        return {}
    since = start if start.get("pid") == end["pid"] else dict.fromkeys(end, 0)
    return {"pid": end["pid"], "since": "warm-up" if since is start else "its start",
            "run_s": round((end["run_ns"] - since["run_ns"]) / 1e9, 2),
            "run_queue_wait_s": round((end["wait_ns"] - since["wait_ns"]) / 1e9, 3),
            "involuntary_switches": end["switches"] - since["switches"],
            "minor_faults": end["minor_faults"] - since["minor_faults"],
            "major_faults": end["major_faults"] - since["major_faults"]}
