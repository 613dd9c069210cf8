"""Keeping the gateway's loops alive: backoff after a store failure, logs that do not flood,
heartbeats, and a supervisor that restarts a loop that crashed (or ends the process).

A database can go away for a moment (a dropped connection, a failover) or for longer (a full
disk). Every store call a loop makes is retried after a wait that doubles from ``base`` to
``cap`` and resets on success; the first failure is logged with its traceback, repeats at most
once per ``quiet`` seconds as one line with a count, and the recovery once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from logging import Logger
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ..core.answers import one_line
from ..core.redact import get_logger

log = get_logger(__name__)

T = TypeVar("T")


def store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be used just now (connection lost or refused,
    disk full, lock timeout), as opposed to a statement that will never succeed."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class Backoff:
    """Consecutive failures of one kind of call (``what``, e.g. ``"claiming due requests"``).

    ``failure(exc)`` logs and returns the seconds to wait before the next try; ``success()``
    resets the count. Thread-safe: the calls of a worker's pool share one.
    """

    def __init__(self, what: str, *, base: float = 0.05, cap: float = 30.0, quiet: float = 60.0, logger: Logger = log):
        self.what, self.base, self.cap, self.quiet = what, base, cap, quiet
        self._log = logger
        self._lock = threading.Lock()
        self._failures = 0
        self._unlogged = 0
        self._logged_at = -float("inf")

    @property
    def failures(self) -> int:
        """Consecutive failures so far (0 after a success)."""
        return self._failures

    def failure(self, exc: BaseException) -> float:
        with self._lock:
            self._failures += 1
            failures, now = self._failures, time.monotonic()
            due = failures == 1 or now - self._logged_at >= self.quiet
            if due:
                self._logged_at, repeated, self._unlogged = now, self._unlogged, 0
            else:
                self._unlogged += 1
        wait = min(self.cap, self.base * 2 ** (failures - 1))
        if failures == 1:
            self._log.error("%s failed; retrying in %.2g s", self.what, wait, exc_info=exc)
        elif due:
            self._log.error("%s still failing (%d times in a row, %d not logged); retrying in %.2g s: %s", self.what, failures, repeated, wait, _line(exc))
        return wait

    def success(self) -> None:
        if not self._failures:
            return
        with self._lock:
            failures, self._failures, self._unlogged = self._failures, 0, 0
        if failures:
            self._log.warning("%s works again after %d failure(s)", self.what, failures)


def _line(exc: BaseException) -> str:
    return one_line(f"{type(exc).__name__}: {exc}", 300)


class GaveUp(Exception):
    """A store call was retried until the loop stopped or its deadline passed."""


def keep_trying(call: Callable[[], T], backoff: Backoff, stop: threading.Event, deadline: float | None = None) -> T:
    """``call()``, retried after each store failure (``store_unavailable``) with ``backoff``'s
    waits, until it returns; ``GaveUp`` once ``stop`` is set or ``deadline`` (``time.time()``)
    passes. Any other exception propagates at once."""
    while True:
        try:
            result = call()
        except Exception as exc:
            if not store_unavailable(exc):
                raise
            wait = backoff.failure(exc)
            if deadline is not None:
                wait = min(wait, deadline - time.time())
            if wait <= 0 or stop.wait(wait):
                raise GaveUp(f"{backoff.what}: gave up after {backoff.failures} failure(s): {_line(exc)}") from exc
        else:
            backoff.success()
            return result


class Loop(Protocol):
    """What the supervisor runs: the worker and the outbox deliverer."""

    #: ``time.monotonic()`` of the loop's latest round.
    last_beat: float

    def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class _Supervised:
    name: str
    loop: Loop
    thread: threading.Thread | None = None
    restarts: int = 0
    crashes: list[float] = field(default_factory=list)
    last_error: str | None = None
    dead: bool = False


class Supervisor:
    """Runs loops in daemon threads. A loop whose ``run()`` raises (or returns before ``stop()``)
    is restarted after ``restart_wait`` seconds (doubling); one that crashes ``max_crashes``
    times within ``window`` seconds is left dead and ``on_fatal(reason)`` is called, so that the
    process exits non-zero and its own supervisor (systemd, Kubernetes) starts it afresh.

    ``health()`` tells, per loop, whether it runs, how long ago its latest round began, how often
    it was restarted and its last crash; a loop is ``stalled`` when its round is older than
    ``stale_after`` seconds.
    """

    def __init__(
        self,
        on_fatal: Callable[[str], None],
        *,
        restart_wait: float = 1.0,
        max_crashes: int = 5,
        window: float = 600.0,
        stale_after: float = 600.0,
    ):
        self.on_fatal = on_fatal
        self.restart_wait, self.max_crashes, self.window, self.stale_after = restart_wait, max_crashes, window, stale_after
        self._loops: list[_Supervised] = []
        self._stopping = threading.Event()

    def start(self, name: str, loop: Loop) -> None:
        entry = _Supervised(name, loop)
        entry.thread = threading.Thread(target=self._run, args=(entry,), name=f"gateway-{name}", daemon=True)
        self._loops.append(entry)
        entry.thread.start()

    def _run(self, entry: _Supervised) -> None:
        while not self._stopping.is_set():
            try:
                entry.loop.run()
                if self._stopping.is_set():
                    return
                raise RuntimeError("the loop returned without being stopped")
            except Exception as exc:
                now = time.monotonic()
                entry.crashes = [at for at in entry.crashes if now - at < self.window] + [now]
                entry.last_error = _line(exc)
                if len(entry.crashes) >= self.max_crashes:
                    entry.dead = True
                    reason = f"the {entry.name} loop crashed {len(entry.crashes)} times within {self.window:g} s; last: {entry.last_error}"
                    log.critical("%s; stopping the process", reason, exc_info=exc)
                    self.on_fatal(reason)
                    return
                wait = self.restart_wait * 2 ** (len(entry.crashes) - 1)
                log.error("the %s loop crashed; restarting it in %g s", entry.name, wait, exc_info=exc)
                if self._stopping.wait(wait):
                    return
                entry.restarts += 1

    def health(self) -> dict[str, Any]:
        """``{name: {"alive", "stalled", "seconds_since_beat", "restarts", "last_error"}}``."""
        now = time.monotonic()
        report = {}
        for entry in self._loops:
            age = round(now - entry.loop.last_beat, 3)
            alive = entry.thread is not None and entry.thread.is_alive() and not entry.dead
            report[entry.name] = {
                "alive": alive,
                "stalled": alive and age > self.stale_after,
                "seconds_since_beat": age,
                "restarts": entry.restarts,
                "last_error": entry.last_error,
            }
        return report

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every loop and wait for its thread (in-flight calls finish first)."""
        self._stopping.set()
        for entry in self._loops:
            entry.loop.stop()
        for entry in self._loops:
            if entry.thread is not None:
                entry.thread.join(timeout)
