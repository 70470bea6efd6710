"""Why the synthesis process fell behind: each late or skipped chunk blamed on a cause.

The render loop is a row of steps: waiting for the next chunk's time (``wait``), applying
the show's messages and reading the ring (``messages``), prefetching a block (``prefetch``)
and rendering a chunk (``render``). ``StepTimer`` keeps how the last few steps went (wall
time, the thread's own CPU time, the garbage collector's time inside them, and for a wait how
much later than asked it returned); when a chunk is skipped (its time passed) or written
after playout passed it (both are xruns), the step that lost the most time is blamed with
one of ``CAUSES``:

- ``woke_late``: a wait returned well after the time it asked for (the thread was runnable
  but not running: another thread or process had the core, or this process's GIL);
- ``gc``: the garbage collector ran for at least half of the step;
- ``slow_work``: the step itself computed that long (its CPU time is at least half its wall
  time);
- ``off_cpu``: the step took that long without running (preempted, the GIL, a page fault
  that went to disk).

Cheap enough for every step: two clock reads at each end, a callback per collection.
"""

from __future__ import annotations

import collections
import gc
import time
from dataclasses import dataclass

CAUSES = ("woke_late", "gc", "slow_work", "off_cpu")
"""What a late or skipped chunk is blamed on (in the ring as ``late_<cause>``)."""
HISTORY = 3
"""Steps looked at for a late chunk: its render, the messages before it and the wait or
prefetch before those."""


@dataclass(slots=True)
class Step:
    """One step of the render loop as it went (nanoseconds)."""

    kind: str
    wall_ns: int = 0
    cpu_ns: int = 0
    gc_ns: int = 0
    overshoot_ns: int = 0
    """For a wait: how much later than asked it returned (0 for other steps)."""

    @property
    def lost_ns(self) -> int:
        """The time this step cost the chunks after it."""
        return self.overshoot_ns if self.kind == "wait" else self.wall_ns

    def cause(self) -> str:
        """Which of ``CAUSES`` this step's lost time is."""
        if self.gc_ns * 2 >= self.lost_ns > 0:
            return "gc"
        if self.kind == "wait":
            return "woke_late"
        return "slow_work" if self.cpu_ns * 2 >= self.wall_ns else "off_cpu"


class StepTimer:
    """Times the render loop's steps and blames late chunks (one per synthesis process).

    Steps are contiguous: ``mark(kind)`` ends the step that began at the previous mark.
    """

    def __init__(self) -> None:
        self.steps: collections.deque[Step] = collections.deque(maxlen=HISTORY)
        self._gc_ns = 0
        self._gc_from = 0
        self._wall0 = time.perf_counter_ns()
        self._cpu0 = time.thread_time_ns()
        self._gc0 = 0
        gc.callbacks.append(self._on_gc)

    def close(self) -> None:
        """Stop timing the collector."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_from = time.perf_counter_ns()
        elif self._gc_from:
            self._gc_ns += time.perf_counter_ns() - self._gc_from
            self._gc_from = 0

    def mark(self, kind: str, asked_ns: int = 0) -> Step:
        """The step since the last mark was ``kind``; ``asked_ns``: how long a wait asked
        to sleep."""
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        step = Step(kind, wall - self._wall0, cpu - self._cpu0, self._gc_ns - self._gc0,
                    max(0, wall - self._wall0 - asked_ns) if kind == "wait" else 0)
        self._wall0, self._cpu0, self._gc0 = wall, cpu, self._gc_ns
        self.steps.append(step)
        return step

    def blame(self) -> str:
        """The cause of the recent step that lost the most time."""
        if not self.steps:
            return "off_cpu"
        return max(self.steps, key=lambda s: s.lost_ns).cause()
