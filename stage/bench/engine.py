"""The show served in the benchmark's own process, for ``bench webrtc`` (and its Janus path)
to measure: its ports to reach it by and its parts to read counters from."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from stage.serve import ServeOptions, serve

READY_TIMEOUT_S = 60.0
"""How long the show may take to start (its show clock running)."""


@dataclass(frozen=True, slots=True)
class BenchShow:
    """A show that ``served`` started."""

    ports: dict[str, object]
    """What it listens on (``serve``'s ready ports: ``http``, ``osc``)."""
    handles: dict[str, object]
    """Its parts (``serve``'s handles: ``pacer``, ``hub``, ``director``, ``publishers``...)."""


@contextlib.asynccontextmanager
async def served(opts: ServeOptions, ready_timeout_s: float = READY_TIMEOUT_S
                 ) -> AsyncIterator[BenchShow]:
    """``serve(opts)`` in this process: entered once its show clock runs, cancelled (and its
    end awaited) when the block ends."""
    ready = asyncio.Event()
    show = BenchShow({}, {})

    def on_ready(ports: dict[str, object]) -> None:
        show.ports.update(ports)
        ready.set()

    engine = asyncio.ensure_future(serve(opts, on_ready, show.handles))
    try:
        await asyncio.wait_for(ready.wait(), ready_timeout_s)
        yield show
    finally:
        engine.cancel()
        await asyncio.gather(engine, return_exceptions=True)
