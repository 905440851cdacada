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

    def take(self, key: str) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
            return wait
