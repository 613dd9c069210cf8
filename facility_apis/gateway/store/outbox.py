"""The outbox: messages owed to SkyPortal, written in the transaction of the change that owes them
and leased to a deliverer (``gateway/outbox.py``) one request at a time, in ``id`` order."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, Text, bindparam, cast, func, insert, or_, select, update

from ...core.answers import one_line
from ...core.outcome import State
from ..models import HISTORY, OUTBOX, REQUESTS
from .database import Database

#: The request's columns that address a delivery: SkyPortal's request id, the source, the allocation.
_ADDRESS = ("followup_request_id", "obj_id", "allocation_id")


@dataclass(frozen=True)
class Delivery:
    """A leased outbox row, with what is needed to address it: ``kind`` is ``status`` (``body``
    is ``{"new_status": ...}``) or ``photometry`` (``body`` is the ``PUT /api/photometry`` body);
    ``body`` is the row's JSON text as stored, so an upload is sent as it is, never decoded;
    ``followup_request_id`` is SkyPortal's id of the request, None until it is known."""

    id: int
    request_id: int
    kind: str
    body: str
    attempts: int
    followup_request_id: int | None
    obj_id: str
    allocation_id: int
    #: A ``status`` message after which SkyPortal refused an upload for good (since the request's
    #: previous status): ``Outbox.status_to_send`` says what to send instead of ``body``'s.
    refused_before: bool = False


def owe(connection: Connection, request_id: int, kind: str, body: dict[str, Any], now: float) -> None:
    """Write one outbox row in the caller's transaction; rows are inserted one by one so that their
    ids keep the messages' order."""
    connection.execute(insert(OUTBOX).values(request_id=request_id, kind=kind, body=body, created_at=now, attempts=0, next_attempt_at=now, dead=False))


def _refused_before() -> Any:
    """Per outbox row: a dead photometry upload of its request lies between the request's previous
    status row and it. Exact once the row is claimed: a request's messages go one at a time, in
    order, so every earlier one is delivered or dead by then."""
    upload, status = OUTBOX.alias("upload"), OUTBOX.alias("earlier_status")
    previous = (
        select(func.max(status.c.id))
        .where(status.c.request_id == OUTBOX.c.request_id, status.c.kind == "status", status.c.id < OUTBOX.c.id)
        .scalar_subquery()
    )
    refused = select(upload.c.id).where(
        upload.c.request_id == OUTBOX.c.request_id,
        upload.c.kind == "photometry",
        upload.c.dead.is_(True),
        upload.c.id < OUTBOX.c.id,
        upload.c.id > func.coalesce(previous, 0),
    )
    return (OUTBOX.c.kind == "status") & refused.exists()


# Statements of every claim and every delivery, built once with their values bound when run:
# building a statement and its cache key (two table aliases for ``_refused_before``) cost more
# than running it on SQLite, and left reference cycles for the collector on each claim.
_FIRST_PENDING = (
    select(func.min(OUTBOX.c.id)).where(OUTBOX.c.delivered_at.is_(None), OUTBOX.c.dead.is_(False)).group_by(OUTBOX.c.request_id).scalar_subquery()
)
_DUE = (
    select(OUTBOX.c.id)
    .where(
        OUTBOX.c.id.in_(_FIRST_PENDING),
        OUTBOX.c.next_attempt_at <= bindparam("now"),
        or_(OUTBOX.c.lease_expires.is_(None), OUTBOX.c.lease_expires < bindparam("now")),
    )
    .order_by(OUTBOX.c.id)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(skip_locked=True)
)
_IDS = bindparam("ids", expanding=True)
_LEASE = update(OUTBOX).where(OUTBOX.c.id.in_(_IDS)).values(lease_owner=bindparam("owner"), lease_expires=bindparam("expires"))
_ADDRESSED = (
    select(OUTBOX.c.id, OUTBOX.c.request_id, OUTBOX.c.kind, cast(OUTBOX.c.body, Text), OUTBOX.c.attempts)
    .add_columns(*(REQUESTS.c[name] for name in _ADDRESS), _refused_before())
    .join(REQUESTS, OUTBOX.c.request_id == REQUESTS.c.id)
    .where(OUTBOX.c.id.in_(_IDS))
    .order_by(OUTBOX.c.id)
)
_DELIVERED = (
    update(OUTBOX)
    .where(OUTBOX.c.id.in_(_IDS))
    .values(delivered_at=bindparam("at"), attempts=OUTBOX.c.attempts + 1, lease_owner=None, lease_expires=None, last_error=None)
)


class Outbox:
    """Leasing owed messages to a deliverer and recording how their delivery went. Times are UNIX
    seconds; ``now`` defaults to the clock."""

    def __init__(self, database: Database):
        self._database = database

    def claim(self, owner: str, limit: int, lease: float, now: float | None = None) -> list[Delivery]:
        """Lease to ``owner``, for ``lease`` seconds, the oldest undelivered row of up to ``limit``
        requests whose turn it is (``FOR UPDATE SKIP LOCKED``, so deliverers share the outbox)."""
        now = time.time() if now is None else now
        with self._database.connection() as connection:
            ids = list(connection.scalars(_DUE, {"now": now, "limit": limit}))
            if not ids:
                return []
            connection.execute(_LEASE, {"ids": ids, "owner": owner, "expires": now + lease})
            rows = connection.execute(_ADDRESSED, {"ids": ids}).all()
        return [Delivery(*row) for row in rows]

    def delivered(self, deliveries: Sequence[Delivery], now: float | None = None) -> None:
        """Mark messages SkyPortal acknowledged, in one statement."""
        if not deliveries:
            return
        with self._database.connection() as connection:
            connection.execute(_DELIVERED, {"ids": [delivery.id for delivery in deliveries], "at": time.time() if now is None else now})

    def retry(self, delivery: Delivery, error: str, at: float, *, dead: bool = False) -> None:
        """Delivery failed: try again at ``at``, or (``dead``) never, keeping ``error`` (its first
        1,000 characters)."""
        with self._database.connection() as connection:
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == delivery.id)
                .values(next_attempt_at=at, attempts=OUTBOX.c.attempts + 1, dead=dead, last_error=error[:1000], lease_owner=None, lease_expires=None)
            )

    def status_to_send(self, delivery: Delivery, now: float | None = None) -> str:
        """The status a ``status`` message brings SkyPortal: its own, unless photometry owed with
        it (since the request's previous status message) was refused for good (the claim says so
        in ``delivery.refused_before``: without it, nothing is read). Points SkyPortal
        did not store are never announced: the message then says how many were stored and why
        the rest were not, and the request records that status (with its history row) while it
        still stands at the one announced."""
        announced = json.loads(delivery.body)["new_status"]
        if not delivery.refused_before:
            return announced
        now = time.time() if now is None else now
        earlier = (OUTBOX.c.request_id == delivery.request_id, OUTBOX.c.id < delivery.id)
        with self._database.connection() as connection:
            previous = connection.scalar(select(func.max(OUTBOX.c.id)).where(*earlier, OUTBOX.c.kind == "status"))
            uploads = connection.execute(
                select(OUTBOX.c.body, OUTBOX.c.dead, OUTBOX.c.delivered_at, OUTBOX.c.last_error)
                .where(OUTBOX.c.request_id == delivery.request_id, OUTBOX.c.kind == "photometry", OUTBOX.c.id < delivery.id, OUTBOX.c.id > (previous or 0))
                .order_by(OUTBOX.c.id)
            ).all()
            refused = [upload for upload in uploads if upload.dead]
            if not refused:
                return announced
            total = sum(len(upload.body.get("mjd", [])) for upload in uploads)
            stored = sum(len(upload.body.get("mjd", [])) for upload in uploads if upload.delivered_at is not None)
            detail = one_line(f"{stored} of {total} points stored in SkyPortal; it refused the rest: {refused[0].last_error or 'no reason given'}", 480)
            status = f"failed: {detail}"
            row = connection.execute(select(REQUESTS.c.status).where(REQUESTS.c.id == delivery.request_id).with_for_update()).one()
            if row.status == announced:
                connection.execute(insert(HISTORY).values(request_id=delivery.request_id, at=now, state=State.FAILED.value, status=status))
                connection.execute(
                    update(REQUESTS).where(REQUESTS.c.id == delivery.request_id).values(state=State.FAILED.value, status=status, detail=detail, updated_at=now)
                )
            return status

    def requeue_dead(self, now: float | None = None) -> int:
        """Try every dead message again (after the cause, e.g. a missing ACL, was fixed); return
        how many."""
        with self._database.connection() as connection:
            result = connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.dead.is_(True), OUTBOX.c.delivered_at.is_(None))
                .values(dead=False, next_attempt_at=time.time() if now is None else now)
            )
            return result.rowcount
