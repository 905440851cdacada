"""Per-key rate limits: a token bucket for each API key (``rate`` requests per second, ``burst`` at once)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

#: buckets kept at most (the least recently used go first; a forgotten bucket comes back full, so bounded memory
#: costs at most one burst per forgotten key)
MAX_BUCKETS = 100_000


class RateLimiter:
    """``take(key)`` returns 0 when the request may go on, else the seconds to wait before the next one may."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = float(rate), max(1, int(burst)), clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, rate: float | None = None) -> float:
        """Take one request from ``key``'s bucket; ``rate`` overrides the limiter's (a key's own rate keeps the
        server's burst in seconds: with rate 20 and burst 40, a key of rate 2 may send 4 at once)."""
        rate = self.rate if rate is None else rate
        if rate <= 0:
            return 0.0
        burst = float(self.burst) if self.rate <= 0 else max(1.0, rate * self.burst / self.rate)
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (burst, now))
            tokens = min(burst, tokens + (now - then) * rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / rate
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
            return wait
