"""Token buckets per source: how much error handling (and how many replies) one sender gets.

A control surface must stay cheap under a flood of garbage: each source (a UDP address, a
TCP connection) spends a token on every error it causes; while its bucket is empty its
packets are dropped before they are decoded, and no error reply goes out to it. A well-behaved
console never comes near the limit. The table of sources is bounded (least recently seen
forgotten first), so spoofed sources cannot grow it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class TokenBucket:
    """``burst`` tokens, refilled at ``rate_per_s``; ``take()`` spends one if there is one."""

    __slots__ = ("rate_per_s", "burst", "_tokens", "_at", "_now")

    def __init__(self, rate_per_s: float, burst: float,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s, self.burst = rate_per_s, burst
        self._now = now
        self._tokens = burst
        self._at = now()

    def _refill(self) -> None:
        now = self._now()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now

    def ready(self) -> bool:
        """Whether a token is there (nothing is spent)."""
        self._refill()
        return self._tokens >= 1.0

    def take(self) -> bool:
        """Spend a token; ``False`` (and nothing spent) when the bucket is empty."""
        self._refill()
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class SourceLimits:
    """One ``TokenBucket`` per source key, for at most ``max_sources`` sources."""

    def __init__(self, rate_per_s: float, burst: float, max_sources: int = 1024,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s, self.burst, self.max_sources = rate_per_s, burst, max_sources
        self._now = now
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def bucket(self, source: Hashable) -> TokenBucket:
        """The source's bucket (a full one for a source not seen lately)."""
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = TokenBucket(self.rate_per_s, self.burst, self._now)
            while len(self._buckets) > self.max_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
        return bucket

    def ready(self, source: Hashable) -> bool:
        """Whether ``source`` may be heard (its bucket has a token)."""
        bucket = self._buckets.get(source)
        return bucket is None or bucket.ready()

    def take(self, source: Hashable) -> bool:
        """Spend one of ``source``'s tokens (an error it caused); ``False`` when none is left."""
        return self.bucket(source).take()

    def forget(self, source: Hashable) -> None:
        """Drop ``source``'s bucket (a closed connection)."""
        self._buckets.pop(source, None)
