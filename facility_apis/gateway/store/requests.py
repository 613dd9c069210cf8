"""Follow-up requests: accepting, showing and cancelling them, and linking them to SkyPortal's ids.

A request's state changes in one transaction with its history row and the outbox row that owes
the new status to SkyPortal (``change_state``); the worker's side is ``jobs.py``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ...core.interface import Target
from ...core.outcome import State
from ..models import ALLOCATIONS, HISTORY, OUTBOX, REQUESTS, TRANSACTIONS
from ..policy import Schedule, deleted_here_only
from .database import Database
from .errors import Conflict, NotFound
from .pending import PendingRows

#: The columns ``Requests.view`` shows as they are stored.
_SHOWN = ("id", "allocation_id", "facility", "followup_request_id", "obj_id", "ra", "dec", "payload", "requester", "remote_id")


def change_state(connection: Connection, request_id: int, status: str, new_state: State, new_status: str, detail: str, now: float) -> dict[str, Any]:
    """The row's new values (``state``, ``status``, ``detail``) for a change of state from
    ``status``; a new status also writes its history row and the outbox row that owes it to
    SkyPortal, in the caller's transaction."""
    rows = PendingRows()
    values = rows.change_state(request_id, status, new_state, new_status, detail, now)
    rows.flush(connection)
    return values


def carry_out_cancel(connection: Connection, request_id: int, remote_id: str | None, status: str, can_delete: bool, now: float, title: str) -> dict[str, Any]:
    """The row's new values for a cancel carried out now: a ``delete`` call due now when the
    facility holds the request and can delete it; ``deleted`` at once when it never held it; and
    when it holds it but cannot delete (``title``: the facility's name for people), deleted here
    only, with a status saying the facility may still carry it out (``policy.deleted_here_only``)."""
    if remote_id is not None and can_delete:
        return {"operation": "delete", "next_poll_at": now}
    if remote_id is None:
        new_status, detail = "deleted", "cancelled before the facility held it"
    else:
        new_status, detail = deleted_here_only(title), f"cancelled here only: {title} offers no way to withdraw a request"
    values = change_state(connection, request_id, status, State.DELETED, new_status, detail, now)
    values.update(operation=None, next_poll_at=None)
    return values


def answers_for(row: Any) -> bool:
    """Whether the gateway still answers for a request: not finished, and either owing a call,
    not submitted yet, or held by the facility (a facility whose submission is final, such as a
    notification, holds a request with no call owed)."""
    state = State(row.state)
    return not state.terminal and (row.operation is not None or state is State.PENDING or state.active)


def _owned(connection: Connection, request_id: int, owner_id: int | None) -> Any:
    """The request's row, if ``owner_id`` (when given) owns its allocation; else ``NotFound``."""
    query = select(REQUESTS, ALLOCATIONS.c.owner_id).join(ALLOCATIONS, ALLOCATIONS.c.id == REQUESTS.c.allocation_id).where(REQUESTS.c.id == request_id)
    row = connection.execute(query).one_or_none()
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFound(f"no follow-up request {request_id}")
    return row


@dataclass(frozen=True)
class NewRequest:
    """A request to accept (``Requests.add`` and ``add_many``): its allocation, target and
    validated payload; ``owner_id`` the client that must own the allocation (None: anyone);
    SkyPortal's ``followup_request_id``; ``remote_id`` when the facility holds it already;
    ``window_end`` the end of the observing window it asks for (UNIX seconds)."""

    allocation_id: int
    target: Target
    payload: Mapping[str, Any]
    owner_id: int | None = None
    followup_request_id: int | None = None
    requester: str | None = None
    remote_id: str | None = None
    window_end: float | None = None


class Requests:
    """The request records. ``owner_id`` (a client id) restricts a call to that client's
    allocations: another client's request is ``NotFound``, as a missing one is. Times are UNIX
    seconds; ``now`` defaults to the clock."""

    def __init__(self, database: Database, schedule: Schedule):
        self._database = database
        self._schedule = schedule

    def add(
        self,
        allocation_id: int,
        target: Target,
        payload: Mapping[str, Any],
        *,
        owner_id: int | None = None,
        followup_request_id: int | None = None,
        requester: str | None = None,
        remote_id: str | None = None,
        window_end: float | None = None,
        now: float | None = None,
    ) -> int:
        """Accept a request (payload already validated) and return its id. It is due for
        submission at once or, with ``remote_id`` (already submitted), for its first poll; it is
        given up the schedule's horizon after now or after ``window_end`` (the end of the
        observing window it asks for, epoch seconds), whichever is later. ``NotFound`` for an
        allocation ``owner_id`` lacks."""
        request = NewRequest(allocation_id, target, payload, owner_id, followup_request_id, requester, remote_id, window_end)
        return self.add_many([request], now)[0]

    def add_many(self, requests: Sequence[NewRequest], now: float | None = None) -> list[int]:
        """Accept each of ``requests`` as ``add`` does, all in one transaction (a group commit:
        one commit for the requests the API receives at once); their ids, in the same order.
        ``NotFound`` when an allocation is missing or not its ``owner_id``'s: then none is stored."""
        now = time.time() if now is None else now
        wanted = sorted({request.allocation_id for request in requests})
        with self._database.connection(for_client=True) as connection:
            query = select(ALLOCATIONS.c.id, ALLOCATIONS.c.facility, ALLOCATIONS.c.owner_id).where(ALLOCATIONS.c.id.in_(wanted))
            allocations = {row.id: row for row in connection.execute(query)}
            rows = []
            for request in requests:
                allocation = allocations.get(request.allocation_id)
                if allocation is None or (request.owner_id is not None and allocation.owner_id != request.owner_id):
                    raise NotFound(f"no allocation {request.allocation_id}")
                rows.append(self._row(request, allocation.facility, now))
            inserted = connection.execute(insert(REQUESTS).returning(REQUESTS.c.id, sort_by_parameter_order=True), rows)
            ids = [row.id for row in inserted]
            history = [{"request_id": i, "at": now, "state": row["state"], "status": row["status"]} for i, row in zip(ids, rows, strict=True)]
            connection.execute(insert(HISTORY), history)
        return ids

    def _row(self, request: NewRequest, facility: str, now: float) -> dict[str, Any]:
        """The ``requests`` row of a request accepted ``now``."""
        submitted = request.remote_id is not None
        target = request.target
        return {
            "allocation_id": request.allocation_id,
            "facility": facility,
            "followup_request_id": request.followup_request_id,
            "obj_id": target.id,
            "ra": target.ra,
            "dec": target.dec,
            "payload": dict(request.payload),
            "requester": request.requester,
            "remote_id": request.remote_id,
            "state": (State.SUBMITTED if submitted else State.PENDING).value,
            "status": "submitted" if submitted else "pending submission",
            "detail": "",
            "operation": "get" if submitted else "submit",
            "next_poll_at": now,
            "attempts": 0,
            "failures": 0,
            "give_up_at": max(now, request.window_end or now) + self._schedule.horizon,
            "cancel_requested": False,
            "created_at": now,
            "updated_at": now,
        }

    def view(self, request_id: int, owner_id: int | None = None) -> dict[str, Any]:
        """A request as the API shows it: its stored fields, ``state``, ``status``, ``detail``,
        ``next_operation``, ``next_poll_at``, ``give_up_at``, ``attempts``, ``created_at``, and the lists
        ``frames`` (the data files the facility listed: ``name``, ``url``, ``filter``, ``mjd``),
        ``history``, ``transactions`` (redacted) and ``deliveries`` (its outbox rows)."""
        with self._database.connection() as connection:
            row = _owned(connection, request_id, owner_id)
            history = connection.execute(select(HISTORY).where(HISTORY.c.request_id == request_id).order_by(HISTORY.c.id)).all()
            transactions = connection.execute(select(TRANSACTIONS).where(TRANSACTIONS.c.request_id == request_id).order_by(TRANSACTIONS.c.id)).all()
            outbox = connection.execute(select(OUTBOX).where(OUTBOX.c.request_id == request_id).order_by(OUTBOX.c.id)).all()
        return {
            **{name: getattr(row, name) for name in _SHOWN},
            "state": row.state,
            "status": row.status,
            "detail": row.detail,
            "next_operation": row.operation,
            "next_poll_at": row.next_poll_at,
            "give_up_at": row.give_up_at,
            "attempts": row.attempts,
            "created_at": row.created_at,
            "frames": list(row.frames or []),
            "history": [{"at": h.at, "state": h.state, "status": h.status} for h in history],
            "transactions": [{"at": t.at, "operation": t.operation, **t.record} for t in transactions],
            "deliveries": [
                {"kind": o.kind, "delivered_at": o.delivered_at, "attempts": o.attempts, "dead": o.dead, "last_error": o.last_error} for o in outbox
            ],
        }

    def facility_of(self, request_id: int, owner_id: int | None = None) -> str:
        """The facility a request is on (``NotFound`` as for ``view``)."""
        with self._database.connection() as connection:
            return _owned(connection, request_id, owner_id).facility

    def newest(self, owner_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The newest ``limit`` requests, newest first, one summary each: ``id``, ``facility``,
        ``obj_id``, ``state``, ``status``, ``updated_at``."""
        columns = (REQUESTS.c.id, REQUESTS.c.facility, REQUESTS.c.obj_id, REQUESTS.c.state, REQUESTS.c.status, REQUESTS.c.updated_at)
        query = select(*columns).order_by(REQUESTS.c.id.desc()).limit(limit)
        if owner_id is not None:
            query = query.join(ALLOCATIONS, ALLOCATIONS.c.id == REQUESTS.c.allocation_id).where(ALLOCATIONS.c.owner_id == owner_id)
        with self._database.connection() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def cancel(self, request_id: int, owner_id: int | None = None, *, can_delete: bool, title: str = "the facility", now: float | None = None) -> str:
        """Ask for a request to be cancelled (SkyPortal's delete); return its state afterwards.

        Finished requests included, as in SkyPortal's direct mode: a facility holding the request
        removes it (ATLAS deletes a finished task after fetching its results once more), also a
        held request nobody polls (a facility without ``get``, such as the Liverpool Telescope). A
        call in flight, or the lookup of an interrupted submission, lands first and the cancel
        follows it. Then: not held by the facility: ``deleted`` at once. Held by a facility that
        cannot delete (``title``: its name for people): deleted here only, at once, and the status
        says the facility may still carry it out. Held by one that can: a ``delete`` call is due
        now. Already deleted or already cancelling: ``Conflict``.
        """
        now = time.time() if now is None else now
        with self._database.connection() as connection:
            row = _owned(connection, request_id, owner_id)
            if State(row.state) is State.DELETED or row.cancel_requested:
                raise Conflict(f"follow-up request {request_id} is already {row.status!r}")
            values: dict[str, Any] = {"cancel_requested": True, "updated_at": now}
            in_flight = row.lease_owner is not None and (row.lease_expires or 0.0) >= now
            looking_up = row.operation == "find" or (row.operation == "submit" and row.submitting_since is not None)
            if not in_flight and not looking_up:
                values.update(carry_out_cancel(connection, request_id, row.remote_id, row.status, can_delete, now, title))
            connection.execute(update(REQUESTS).where(REQUESTS.c.id == request_id).values(**values))
            return values.get("state", row.state)

    def change(
        self,
        request_id: int,
        payload: Mapping[str, Any],
        owner_id: int | None = None,
        *,
        can_update: bool,
        window_end: float | None = None,
        now: float | None = None,
    ) -> str:
        """Replace a request's payload (already validated); return its state.

        Not submitted yet: the submission carries the new payload. Held by the facility: an
        ``update`` call is due now, or, when a call is in flight, as soon as it lands (the
        worker sees the payload changed). Either way the request is given the schedule's horizon
        again from now or from the new payload's ``window_end``, whichever is later (never less
        than it had). A facility without ``update`` cannot change a request it holds, and a finished,
        cancelling or abandoned request cannot change: ``Conflict``.
        """
        now = time.time() if now is None else now
        with self._database.connection() as connection:
            row = _owned(connection, request_id, owner_id)
            if row.cancel_requested or not answers_for(row):
                raise Conflict(f"follow-up request {request_id} is already {row.status!r}: it can no longer change")
            held = row.remote_id is not None
            if held and not can_update:
                raise Conflict(f"follow-up request {request_id} is held by {row.facility}, which cannot change it: cancel it and submit a new one")
            values: dict[str, Any] = {"payload": dict(payload), "updated_at": now}
            values["give_up_at"] = max(row.give_up_at, max(now, window_end or now) + self._schedule.horizon)
            if held and (row.lease_owner is None or (row.lease_expires or 0.0) < now):
                values.update(operation="update", next_poll_at=now, failures=0)
            connection.execute(update(REQUESTS).where(REQUESTS.c.id == request_id).values(**values))
            return row.state

    def poke(self, request_id: int, now: float | None = None) -> bool:
        """Make a followed request due now (a facility callback said it changed); False when it
        is not being followed."""
        now = time.time() if now is None else now
        earlier = func.least if self._database.dialect == "postgresql" else func.min
        with self._database.connection() as connection:
            result = connection.execute(
                update(REQUESTS).where(REQUESTS.c.id == request_id, REQUESTS.c.operation == "get").values(next_poll_at=earlier(REQUESTS.c.next_poll_at, now))
            )
            return result.rowcount == 1

    # -- SkyPortal's ids, for requests forwarded by GENERIC (whose body carries none) ---------

    def link(self, request_id: int, followup_request_id: int) -> bool:
        """Link a request to SkyPortal's id unless another request holds that id; False if so."""
        taken = select(REQUESTS.c.id).where(REQUESTS.c.followup_request_id == followup_request_id).exists()
        with self._database.connection() as connection:
            result = connection.execute(update(REQUESTS).where(REQUESTS.c.id == request_id, ~taken).values(followup_request_id=followup_request_id))
            return result.rowcount == 1

    def followup_request_id(self, request_id: int) -> int | None:
        """SkyPortal's id of a request, None while unknown."""
        with self._database.connection() as connection:
            return connection.scalar(select(REQUESTS.c.followup_request_id).where(REQUESTS.c.id == request_id))

    def unlinked(self, obj_id: str, allocation_id: int) -> list[tuple[int, dict[str, Any]]]:
        """``(id, payload)`` of the requests on this source and allocation with no SkyPortal id,
        oldest first."""
        query = (
            select(REQUESTS.c.id, REQUESTS.c.payload)
            .where(REQUESTS.c.obj_id == obj_id, REQUESTS.c.allocation_id == allocation_id, REQUESTS.c.followup_request_id.is_(None))
            .order_by(REQUESTS.c.id)
        )
        with self._database.connection() as connection:
            return [(row.id, row.payload) for row in connection.execute(query)]

    def linked_followup_ids(self, candidates: Sequence[int]) -> set[int]:
        """Which of these SkyPortal request ids already belong to a gateway request."""
        query = select(REQUESTS.c.followup_request_id).where(REQUESTS.c.followup_request_id.in_(list(candidates)))
        with self._database.connection() as connection:
            return set(connection.scalars(query))
