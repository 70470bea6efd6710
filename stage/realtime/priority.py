"""The show's process raised above ordinary processes (``serve --realtime``).

The event loop hands every voice frame to the viewers (WebRTC data channels, RTP senders)
and answers cues. On a machine it shares with a browser drawing in software (whose GPU
thread Chromium itself runs at nice −8), the loop's thread is sometimes not run for tens of
milliseconds, and each such wait is a gap in the frames every viewer receives (``bench
webrtc``'s ``send_gap_ms_max``), which the stage page's jitter buffer must then cover.
``--realtime`` already gives synthesis ``SCHED_FIFO``; the engine's process gets a negative
nice value instead — a larger share of the CPU when the cores are contended, never a thread
that can starve the machine (it stays under the fair scheduler, below the ``SCHED_FIFO``
synthesis).

Every thread of the process is raised, not the loop's alone: the loop also waits for the GIL,
and a helper thread (the pose stream's, a ``to_thread`` worker) left at an ordinary priority
would hold it while descheduled (measured: gaps with the loop's thread using a tenth of
their time). Threads started later inherit the value from the thread that starts them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

LOOP_NICE = -10
"""The nice value ``--realtime`` gives the engine's threads (0: ordinary; each step down is
~25 % more CPU share against an ordinary thread when the cores are contended)."""


def _thread_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: the calling thread alone
        import threading

        return [threading.get_native_id()]


@dataclass
class LoopPriority:
    """The nice values the process's threads had, and which were raised; ``restore()`` puts
    them back."""

    nice: int
    before: dict[int, int] = field(default_factory=dict)
    """Thread id -> its nice value before, for every thread raised."""

    @property
    def raised(self) -> bool:
        """Whether the OS allowed the raise (it needs CAP_SYS_NICE or a matching rlimit)."""
        return bool(self.before)

    def restore(self) -> None:
        """Give every thread raised that still runs its former nice value back."""
        for tid, nice in self.before.items():
            if Path(f"/proc/self/task/{tid}").exists():
                try:
                    os.setpriority(os.PRIO_PROCESS, tid, nice)
                except OSError as err:  # lowering priority is always allowed; log if not
                    log.warning("could not restore thread %d's nice value: %s", tid, err)
        self.before.clear()


def raise_loop_priority(nice: int = LOOP_NICE) -> LoopPriority:
    """Raise every thread of this process (the event loop's and its helpers') to ``nice``;
    where the OS refuses, the show runs at its ordinary priority and says so in the log."""
    if not -20 <= nice <= 19:
        raise ValueError(f"a nice value is -20..19, not {nice}")
    priority = LoopPriority(nice)
    for tid in _thread_ids():
        try:
            before = os.getpriority(os.PRIO_PROCESS, tid)
            if before > nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                priority.before[tid] = before
        except OSError as err:  # no privilege (or the thread just ended)
            log.info("--realtime: thread %d stays at its nice value (%s)", tid, err)
    if priority.raised:
        log.info("--realtime: the engine's %d threads at nice %d", len(priority.before), nice)
    return priority
