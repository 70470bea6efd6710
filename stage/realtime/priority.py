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
their time). Threads started later inherit the value from the thread that starts them; when
the show ends, ``LoopPriority.restore`` puts those back too (a ``to_thread`` worker outlives
the show in a process that goes on: a benchmark, a test).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

LOOP_NICE = -10
"""The nice value ``--realtime`` gives the engine's threads (0: ordinary; each step down is
~25 % more CPU share against an ordinary thread when the cores are contended)."""


def _thread_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: the calling thread alone
        return [threading.get_native_id()]


@dataclass
class LoopPriority:
    """The nice values the process's threads had, and which were raised; ``restore()`` puts
    them back, and those of the threads started since, which inherited the raise."""

    nice: int
    before: dict[int, int] = field(default_factory=dict)
    """Thread id -> its nice value before, for every thread raised."""
    present: frozenset[int] = frozenset()
    """The threads that ran when the process was raised (any other was started since)."""
    inherited: int | None = None
    """The nice value a thread started since would have had: the raising thread's before
    (``None``: that thread was not raised, so no thread inherited the raise from it)."""

    @property
    def raised(self) -> bool:
        """Whether the OS allowed the raise (it needs CAP_SYS_NICE or a matching rlimit)."""
        return bool(self.before)

    def restore(self) -> None:
        """Give every thread raised that still runs its former nice value back, and every
        thread started since at the raised value the value it would have inherited."""
        for tid in _thread_ids():
            try:
                if tid in self.before:
                    os.setpriority(os.PRIO_PROCESS, tid, self.before[tid])
                elif (tid not in self.present and self.inherited is not None
                      and os.getpriority(os.PRIO_PROCESS, tid) == self.nice):
                    os.setpriority(os.PRIO_PROCESS, tid, self.inherited)
            except ProcessLookupError:  # the thread just ended
                continue
            except OSError as err:  # lowering priority is always allowed; log if not
                log.warning("could not restore thread %d's nice value: %s", tid, err)
        self.before.clear()
        self.inherited = None


def raise_loop_priority(nice: int = LOOP_NICE) -> LoopPriority:
    """Raise every thread of this process (the event loop's and its helpers') to ``nice``;
    where the OS refuses, the show runs at its ordinary priority and says so in the log."""
    if not -20 <= nice <= 19:
        raise ValueError(f"a nice value is -20..19, not {nice}")
    threads = _thread_ids()
    priority = LoopPriority(nice, present=frozenset(threads))
    for tid in threads:
        try:
            before = os.getpriority(os.PRIO_PROCESS, tid)
            if before > nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                priority.before[tid] = before
        except OSError as err:  # no privilege (or the thread just ended)
            log.info("--realtime: thread %d stays at its nice value (%s)", tid, err)
    priority.inherited = priority.before.get(threading.get_native_id())
    if priority.raised:
        log.info("--realtime: the engine's %d threads at nice %d", len(priority.before), nice)
    return priority
