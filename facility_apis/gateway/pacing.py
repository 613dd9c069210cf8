"""How fast the worker may call each facility: concurrency, spacing, and throttle pauses."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class FacilityLimit:
    """At most ``concurrency`` calls to a facility at once, starting ``min_interval`` s apart."""

    concurrency: int = 8
    min_interval: float = 0.0


class Gate:
    """Enforces one ``FacilityLimit``. ``slot()`` blocks until a call may start."""

    def __init__(self, limit: FacilityLimit, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit.concurrency)
        self._lock = threading.Lock()
        self._next_start = 0.0
        self._clock, self._sleep = clock, sleep

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._slots:
            if self.limit.min_interval > 0:
                with self._lock:
                    start = max(self._clock(), self._next_start)
                    self._next_start = start + self.limit.min_interval
                delay = start - self._clock()
                if delay > 0:
                    self._sleep(delay)
            yield


class Pauses:
    """Throttle pauses by key (facility and allocation: a facility's limit is per account)."""

    def __init__(self) -> None:
        self._until: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def pause(self, key: Hashable, until: float) -> None:
        with self._lock:
            self._until[key] = max(until, self._until.get(key, 0.0))

    def until(self, key: Hashable, now: float) -> float | None:
        """The wall time the pause on ``key`` ends, or None when calls may go ahead."""
        with self._lock:
            until = self._until.get(key)
            if until is not None and until <= now:
                del self._until[key]
                return None
            return until
