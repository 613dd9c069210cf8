"""Group commit: writes that threads make at the same moment, made together in one transaction.

A worker's calls finish concurrently, and each outcome is a transaction of its own: on
PostgreSQL a round trip to begin and one to commit, on SQLite a turn of the one writer and a
sync. ``GroupCommit.submit(item)`` queues the item; the first thread to find no write under way
writes every item queued by then with ``write_many`` (one transaction), hands the results back,
and passes the turn to a thread whose item arrived meanwhile. Nothing is written twice, and an
item's result (or error) goes to the thread that submitted it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("done", "error", "item", "lead", "result")

    def __init__(self, item: T):
        self.item = item
        self.done = threading.Event()
        self.lead = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Batches concurrent ``submit(item)`` calls into ``write_many(items) -> results`` (one
    result per item, same order), at most ``limit`` items a batch. When a batch of several fails,
    its items are written again one at a time, so one bad item cannot fail the others; a store
    failure (``retry_alone(exc)`` false) is handed to every thread of the batch instead, each to
    retry as it would a write of its own."""

    def __init__(self, write_many: Callable[[Sequence[T]], Sequence[R]], *, limit: int = 64, retry_alone: Callable[[BaseException], bool] = lambda exc: True):
        self._write_many = write_many
        self._limit = limit
        self._retry_alone = retry_alone
        self._lock = threading.Lock()
        self._pending: list[_Slot[T, R]] = []
        self._writing = False

    def submit(self, item: T) -> R:
        """Write ``item`` (with whatever else is queued) and return its result, or raise its error."""
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._pending.append(slot)
            slot.lead = not self._writing
            self._writing = True
        if not slot.lead:
            slot.done.wait()
        if slot.lead:  # our turn: write what is queued, ours included (unless written already)
            self._write_turn()
            slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _write_turn(self) -> None:
        with self._lock:
            batch, self._pending = self._pending[: self._limit], self._pending[self._limit :]
        try:
            self._write(batch)
        finally:
            with self._lock:
                if self._pending:  # the next turn goes to a thread that is waiting anyway
                    following = self._pending[0]
                    following.lead = True
                    following.done.set()
                else:
                    self._writing = False
            for slot in batch:
                slot.done.set()

    def _write(self, batch: list[_Slot[T, R]]) -> None:
        if not batch:
            return
        try:
            results = self._write_many([slot.item for slot in batch])
        except Exception as exc:  # noqa: BLE001 - handed to the submitting threads, or retried one by one
            if len(batch) == 1 or not self._retry_alone(exc):
                for slot in batch:
                    slot.error = exc
                return
            for slot in batch:
                self._write([slot])
            return
        for slot, result in zip(batch, results, strict=True):
            slot.result = result
