"""Rows a transaction owes, gathered and then written with one statement per table.

Recording many outcomes in one transaction (``Jobs.record_many``) would cost a statement per
history row, outbox row, HTTP transaction and request updated; gathered here, they are written at
``flush`` with one multi-row statement each (the requests' updates with one ``executemany`` per
set of columns), in the order they were added, so a request's outbox rows keep their order
(photometry before the status that announces it) and their ids say it. Whatever is written
directly in the same transaction must come after a ``flush``.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update

from ...core.outcome import State
from ..models import HISTORY, OUTBOX, REQUESTS, TRANSACTIONS


@functools.cache
def _attempt_recorded(columns: tuple[str, ...]) -> Any:
    """The update of one request row after a facility call: ``columns`` set (bound as ``new_<name>``,
    the row's id as ``row_id``) and ``attempts`` counted. Built once per set of columns."""
    values = {name: bindparam(f"new_{name}", type_=REQUESTS.c[name].type) for name in columns}
    return update(REQUESTS).where(REQUESTS.c.id == bindparam("row_id")).values(attempts=REQUESTS.c.attempts + 1, **values)


class PendingRows:
    """History, outbox and transaction rows waiting for ``flush(connection)``. Times are UNIX
    seconds."""

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.transactions: list[dict[str, Any]] = []
        #: ``(request id, new values)`` of requests whose facility call was recorded.
        self.attempts: list[tuple[int, dict[str, Any]]] = []
        #: ``(request id, new status)`` of every change of status gathered (``flush`` keeps them).
        self.changed: list[tuple[int, str]] = []

    def owe(self, request_id: int, kind: str, body: Any, now: float) -> None:
        """An outbox row (``kind`` ``status`` or ``photometry``), after those already owed;
        ``body`` is a JSON-able dict or an encoded ``json_text.Fragment``."""
        self.outbox.append({"request_id": request_id, "kind": kind, "body": body, "created_at": now, "attempts": 0, "next_attempt_at": now, "dead": False})

    def change_state(self, request_id: int, status: str, new_state: State, new_status: str, detail: str, now: float) -> dict[str, Any]:
        """The row's new values (``state``, ``status``, ``detail``) for a change of state from
        ``status``; a new status also owes its history row and the outbox row that tells
        SkyPortal."""
        if new_status != status:
            self.changed.append((request_id, new_status))
            self.history.append({"request_id": request_id, "at": now, "state": new_state.value, "status": new_status})
            self.owe(request_id, "status", {"new_status": new_status}, now)
        return {"state": new_state.value, "status": new_status, "detail": detail}

    def attempted(self, request_id: int, values: dict[str, Any]) -> None:
        """The request's row after a facility call: ``values`` (plain values, by column name) and
        one more attempt counted."""
        self.attempts.append((request_id, values))

    def flush(self, connection: Connection) -> None:
        """Write every gathered row in ``connection``'s transaction, one statement per table (and
        per set of request columns updated)."""
        for table, rows in ((TRANSACTIONS, self.transactions), (HISTORY, self.history), (OUTBOX, self.outbox)):
            if rows:
                connection.execute(insert(table), rows)
                rows.clear()
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for request_id, values in self.attempts:
            bound = {f"new_{name}": value for name, value in values.items()}
            by_columns.setdefault(tuple(sorted(values)), []).append({"row_id": request_id, **bound})
        self.attempts.clear()
        for columns, rows in by_columns.items():
            connection.execute(_attempt_recorded(columns), rows)
