"""The show clock's link to wall time: show samples <-> ``time.monotonic_ns()``."""

from __future__ import annotations

import time

from singer.contracts import SAMPLE_RATE_HZ


class ClockSync:
    """Maps monotonic wall time to show samples; the audio pacer owns and re-anchors it.

    Show sample ``s`` plays at ``origin_ns + s / 48 kHz``; nothing else in the engine keeps
    its own notion of "now".
    """

    def __init__(self, origin_ns: int | None = None) -> None:
        self.origin_ns = time.monotonic_ns() if origin_ns is None else origin_ns

    def sample_at(self, monotonic_ns: int) -> int:
        """Show sample playing at a ``time.monotonic_ns()`` instant."""
        return (monotonic_ns - self.origin_ns) * SAMPLE_RATE_HZ // 1_000_000_000

    def now_sample(self) -> int:
        """Show sample playing now."""
        return self.sample_at(time.monotonic_ns())

    def ns_of(self, sample: int) -> int:
        """``time.monotonic_ns()`` instant at which a show sample plays."""
        return self.origin_ns + sample * 1_000_000_000 // SAMPLE_RATE_HZ

    def seconds_until(self, sample: int) -> float:
        """Seconds from now until ``sample`` plays (negative when it is past)."""
        return (self.ns_of(sample) - time.monotonic_ns()) / 1e9
