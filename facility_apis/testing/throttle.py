"""A rate throttle that behaves like Django REST framework's ``SimpleRateThrottle``."""

from __future__ import annotations

import math
import threading
import time


def throttled_detail(wait: int) -> str:
    """DRF's 429 text, singular for one second: ``Expected available in 1 second.``"""
    return f"Request was throttled. Expected available in {wait} {'second' if wait == 1 else 'seconds'}."


class RateThrottle:
    """At most ``rate`` requests per ``period`` seconds per key, over a sliding window.

    As in DRF, only allowed requests are counted, and the wait suggested to a throttled caller is
    the time until the oldest counted request leaves the window, spread over the requests that
    will then be available, rounded up to whole seconds.
    """

    def __init__(self, rate: int, period: float = 60.0) -> None:
        self.rate = rate
        self.period = period
        self._lock = threading.Lock()
        self._history: dict[str, list[float]] = {}

    def hit(self, key: str, now: float | None = None) -> int | None:
        """Count a request for ``key``; ``None`` if allowed, else the wait in whole seconds."""
        now = time.monotonic() if now is None else now
        with self._lock:
            history = [moment for moment in self._history.get(key, []) if moment > now - self.period]
            self._history[key] = history
            if len(history) < self.rate:
                history.insert(0, now)
                return None
            remaining = self.period - (now - history[-1]) if history else self.period
            available = self.rate - len(history) + 1
            return max(1, math.ceil(remaining / max(available, 1)))
