"""How fast the machine running the tests was, said at the end of the run: real-time tests on a
shared machine fail when it is slow, and the log should say so with a measured figure."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


def python_loop_s() -> float:
    """Seconds one core takes for a fixed pure-Python loop (``sum(range(3e7))``): about 0.5 s
    on the machine docs/benchmarks.md was measured on, quiet."""
    start = time.perf_counter()
    sum(range(30_000_000))
    return time.perf_counter() - start


def _cpu_ticks() -> tuple[int, int]:
    """(all ticks, stolen ticks) of the machine's CPUs so far (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


@dataclass
class MachineReport:
    """The machine at the start of the run and at its end: a line for the test summary."""

    loop_start_s: float
    ticks_start: tuple[int, int]
    wall_start_s: float

    @classmethod
    def begin(cls) -> MachineReport:
        """Measure the machine now (about half a second of one core)."""
        return cls(python_loop_s(), _cpu_ticks(), time.monotonic())

    def line(self) -> str:
        """Speed at start and end, the share of CPU time the hypervisor stole, the load."""
        loop_end = python_loop_s()
        total, stolen = _cpu_ticks()
        total -= self.ticks_start[0]
        stolen -= self.ticks_start[1]
        steal = 100.0 * stolen / total if total else 0.0
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        return (f"machine: {os.cpu_count()} CPUs; sum(range(3e7)) took "
                f"{self.loop_start_s:.2f} s at the start, {loop_end:.2f} s at the end "
                f"(~0.5 s where docs/benchmarks.md was measured); {steal:.1f} % stolen by the "
                f"hypervisor over {time.monotonic() - self.wall_start_s:.0f} s; "
                f"load average {load}")
