"""Per-source rate limit: a token bucket counted in events.

Each source has a bucket of ``burst`` events that refills at ``rate_per_s``; a
request costs one token per event in it. A request the bucket cannot pay for is
refused whole (429) with the seconds until it could be paid, and costs nothing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``rate`` per second."""

    rate: float
    capacity: float
    tokens: float
    updated: float

    def take(self, cost: float, now: float) -> float:
        """Take ``cost`` tokens and return 0, or return the seconds until they exist."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if cost <= self.tokens:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class RateLimiter:
    """One :class:`TokenBucket` per source name, created on first use."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._default = (rate_per_s, burst)
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def take(
        self, source: str, cost: int, rate_per_s: float | None = None, burst: int | None = None
    ) -> int:
        """0 if ``source`` may send ``cost`` events now, else whole seconds to wait (>= 1)."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(source)
            if bucket is None:
                rate = rate_per_s or self._default[0]
                capacity = float(burst or self._default[1])
                bucket = self._buckets[source] = TokenBucket(rate, capacity, capacity, now)
            wait = bucket.take(cost, now)
        return 0 if wait == 0 else max(1, math.ceil(wait))
