"""Handshake rate limiting per client address: a token bucket each (pure)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Tuple

__all__ = ["HandshakeLimiter"]


class HandshakeLimiter:
    """Allow ``per_minute`` new sessions per address, with bursts up to that many.

    At most ``max_addresses`` buckets are kept; the least recently seen goes
    first, so a flood of forged addresses cannot grow memory.
    """

    def __init__(
        self, per_minute: int, max_addresses: int = 10_000, clock: Callable[[], float] = time.monotonic
    ):
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self.max_addresses = max_addresses
        self.clock = clock
        self._buckets: "OrderedDict[str, Tuple[float, float]]" = OrderedDict()

    def allow(self, address: str) -> bool:
        now = self.clock()
        tokens, last = self._buckets.pop(address, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.refill)
        allowed = tokens >= 1.0
        self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        return allowed
