"""Supervision of the show's helper tasks: a helper that fails is logged and restarted.

The pacer is the show; prefetch, the pose stream, the mocap feed and the MQTT bridge only
help it. One helper's error must not end the show, so each runs under a ``Supervisor``: an
exception is logged once (with the helper's name and traceback), counted, and the helper is
started again from its factory after a backoff that doubles on each failure in a row, up to a
bound, and starts over once the helper has run well for a while. A helper that returns is
done (a capture source that ended). Cancellation (the show stopping) passes straight
through, so the ``TaskGroup`` that holds the helpers ends cleanly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

HelperFactory = Callable[[], Coroutine[Any, Any, None]]
"""Makes a fresh run of a helper: called again for every restart."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long a failed helper waits before it is started again."""

    first_s: float = 0.1
    """The wait after a first failure."""
    max_s: float = 5.0
    """The wait doubles with each failure in a row, up to this."""
    healthy_s: float = 30.0
    """A run that lasted this long was healthy: the next failure waits ``first_s`` again."""


class Supervisor:
    """Runs named helper coroutines in a ``TaskGroup``, restarting those that fail."""

    def __init__(self, group: asyncio.TaskGroup, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()
        self.restarts: dict[str, int] = {}
        """Restarts so far, by helper name (for status and summaries)."""
        self.last_error: dict[str, str] = {}
        """The last failure of each helper that failed, as ``Type: message``."""
        self.tasks: list[asyncio.Task[None]] = []
        self._group = group

    def start(self, name: str, factory: HelperFactory) -> asyncio.Task[None]:
        """Run ``factory()`` as the helper ``name`` until it returns or is cancelled."""
        if name in self.restarts:
            raise ValueError(f"a helper named {name!r} is already supervised")
        self.restarts[name] = 0
        task = self._group.create_task(self._run_supervised(name, factory),
                                       name=f"helper {name}")
        self.tasks.append(task)
        return task

    def cancel(self) -> None:
        """Stop every helper (each ends at its next await)."""
        for task in self.tasks:
            task.cancel()

    async def _run_supervised(self, name: str, factory: HelperFactory) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff.first_s
        while True:
            started = loop.time()
            try:
                await factory()
            except Exception as err:  # any helper bug: logged, counted, restarted
                if loop.time() - started >= self.backoff.healthy_s:
                    delay = self.backoff.first_s
                self.restarts[name] += 1
                self.last_error[name] = f"{type(err).__name__}: {err}"
                log.error("show helper %r failed (restart %d in %.2f s; the show goes on)",
                          name, self.restarts[name], delay, exc_info=err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff.max_s)
            else:
                log.info("show helper %r ended", name)
                return
