"""Facility accounts shared by every worker on one database: calls in flight, spacing, pauses.

A facility limits calls per account (ATLAS: 600 reads a minute per user) or as a whole (a public
service), so the allowance must hold across every worker process on every machine, not per
process. An account is a facility and an allocation (the credentials the calls are made with).
The allowance is a ``FacilityLimit`` (from the worker's configuration): at most ``concurrency``
calls in flight, starting ``min_interval`` seconds apart, for each account when ``per_account``,
else for all the facility's accounts together (the key ``(facility, WHOLE)``). A throttle (429)
pauses the account it answered for the wait the facility asked.

- Calls in flight are the account's (or facility's) requests under a live lease (``requests.lease_expires``
  not before now): a claim grants only what is free, and a recorded outcome (or an expired lease,
  when a worker died) frees the slot. Nothing else to release, nothing held forever.
- ``facility_accounts`` (one row per key) holds the rest: ``next_start``, the earliest start
  of the account's next call, and ``paused_until``/``pause_detail``/``throttles``.
- **Rates** (``FacilityLimit.rates``: a facility's documented ``rate_limits``, or the configured
  ``read_rate``/``write_rate``): ``account_calls`` holds the start of each call the claims gave
  an account under a rate, and a claim counts those in the window (``Rate.window``, the period and
  a small margin): a call is given the earliest start at which the window holds fewer than the
  rate's calls, if that is at most ``RATE_HORIZON`` ahead; otherwise the account's requests of
  that scope are made due then (as for a pause). So the workers together never start more calls
  than the facility allows, and meet no 429 for it.
These functions run inside the caller's transaction (``Jobs.claim`` and ``Jobs.record``): the
account rows are locked (``FOR UPDATE``, in key order) before their leases are counted, so on
PostgreSQL two claims of one account take turns; SQLite serialises every transaction anyway.
Times are UNIX seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..models import ACCOUNT_CALLS, ACCOUNTS, REQUESTS
from ..pacing import FacilityLimit

#: ``(facility, account)``: the account is an allocation id as text, or ``WHOLE`` for an
#: allowance shared by all of the facility's accounts (``FacilityLimit.per_account`` false).
Key = tuple[str, str]
WHOLE = ""


def account_of(facility: str, allocation_id: int) -> Key:
    """The key of the account an allocation's calls are counted against."""
    return facility, str(allocation_id)


def allowance_of(facility: str, allocation_id: int, limit: FacilityLimit) -> Key:
    """The key whose allowance an allocation's calls take: its own account, or the whole facility."""
    return facility, str(allocation_id) if limit.per_account else WHOLE


#: Statements of every claim, built once (``now``, ``facilities`` and ``keys`` are bound when run):
#: building a statement and its cache key cost more than running it on SQLite.
_IN_FLIGHT = (
    select(REQUESTS.c.facility, REQUESTS.c.allocation_id, func.count())
    .where(REQUESTS.c.lease_expires >= bindparam("now"))
    .group_by(REQUESTS.c.facility, REQUESTS.c.allocation_id)
)
_IN_FLIGHT_OF = _IN_FLIGHT.where(REQUESTS.c.facility.in_(bindparam("facilities", expanding=True)))
_PAUSED = select(ACCOUNTS.c.facility, ACCOUNTS.c.account, ACCOUNTS.c.paused_until).where(ACCOUNTS.c.paused_until > bindparam("now"))
_LOCK = (
    select(ACCOUNTS)
    .where(tuple_(ACCOUNTS.c.facility, ACCOUNTS.c.account).in_(bindparam("keys", expanding=True)))
    .order_by(ACCOUNTS.c.facility, ACCOUNTS.c.account)
    .with_for_update()
)
_ENSURE = {
    dialect: insert(ACCOUNTS).on_conflict_do_nothing(index_elements=["facility", "account"])
    for dialect, insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))
}


def in_flight(connection: Connection, now: float, facilities: Iterable[str] | None = None) -> dict[Key, int]:
    """Requests under a live lease (of ``facilities`` only, when given), counted by account and
    by whole facility (``(facility, WHOLE)``)."""
    if facilities is None:
        rows = connection.execute(_IN_FLIGHT, {"now": now})
    else:
        rows = connection.execute(_IN_FLIGHT_OF, {"now": now, "facilities": sorted(set(facilities))})
    counts: dict[Key, int] = {}
    for facility, allocation_id, count in rows:
        counts[account_of(facility, allocation_id)] = count
        counts[facility, WHOLE] = counts.get((facility, WHOLE), 0) + count
    return counts


def paused(connection: Connection, now: float) -> dict[Key, float]:
    """``{(facility, account): the end of its pause}`` for every account paused at ``now``."""
    return {(facility, account): until for facility, account, until in connection.execute(_PAUSED, {"now": now})}


def hold_back(connection: Connection, key: Key, until: float, now: float, operations: Iterable[str] | None = None) -> None:
    """Make the account's requests that fall due before ``until`` (and no worker holds) due then
    (those whose next call is one of ``operations`` only, when given).

    Rows another transaction has locked are skipped, never waited for: a concurrent claim holds
    them as its candidates while it waits for the account's row, which the caller may hold (a
    deadlock, were this to wait); that claim finds the pause once it has the row and holds them
    back itself."""
    facility, account = key
    rows = (
        select(REQUESTS.c.id)
        .where(
            REQUESTS.c.allocation_id == int(account),
            REQUESTS.c.facility == facility,
            REQUESTS.c.next_poll_at < until,
            (REQUESTS.c.lease_expires.is_(None)) | (REQUESTS.c.lease_expires < now),
        )
        .with_for_update(skip_locked=True)
    )
    if operations is not None:
        rows = rows.where(REQUESTS.c.operation.in_(sorted(operations)))
    connection.execute(update(REQUESTS).where(REQUESTS.c.id.in_(rows.scalar_subquery())).values(next_poll_at=until))


def window(connection: Connection, key: Key, scope: str, since: float) -> list[float]:
    """The starts of the account's calls of ``scope`` (``read``, ``write``) after ``since``,
    oldest first; the older ones are deleted (the account's row is locked by ``lock``)."""
    where = (ACCOUNT_CALLS.c.facility == key[0], ACCOUNT_CALLS.c.account == key[1], ACCOUNT_CALLS.c.scope == scope)
    connection.execute(delete(ACCOUNT_CALLS).where(*where, ACCOUNT_CALLS.c.started_at <= since))
    return list(connection.scalars(select(ACCOUNT_CALLS.c.started_at).where(*where).order_by(ACCOUNT_CALLS.c.started_at)))


def log_calls(connection: Connection, calls: list[tuple[Key, str, float]]) -> None:
    """Count calls in their accounts' windows: ``(key, scope, start)`` each."""
    if calls:
        rows = [{"facility": f, "account": a, "scope": scope, "started_at": start} for (f, a), scope, start in calls]
        connection.execute(ACCOUNT_CALLS.insert(), rows)


def _ensure(connection: Connection, keys: list[Key], now: float) -> None:
    rows = [{"facility": f, "account": a, "next_start": 0.0, "throttles": 0, "updated_at": now} for f, a in keys]
    connection.execute(_ENSURE[connection.dialect.name], rows)


def lock(connection: Connection, keys: Iterable[Key], now: float) -> dict[Key, Any]:
    """The rows of ``keys``' accounts (created when missing), locked for this transaction."""
    ordered = sorted(set(keys))
    _ensure(connection, ordered, now)
    return {(row.facility, row.account): row for row in connection.execute(_LOCK, {"keys": ordered})}


def set_next_start(connection: Connection, key: Key, next_start: float, now: float) -> None:
    """Record the earliest start of the account's next call (its row is locked by ``lock``)."""
    where = (ACCOUNTS.c.facility == key[0], ACCOUNTS.c.account == key[1])
    connection.execute(update(ACCOUNTS).where(*where).values(next_start=next_start, updated_at=now))


def pause(connection: Connection, key: Key, until: float, detail: str, now: float) -> None:
    """Pause the account until ``until`` (a later pause already set stands), count the throttle
    and keep the facility's ``detail`` (already redacted: it is the request's detail too)."""
    _ensure(connection, [key], now)
    where = (ACCOUNTS.c.facility == key[0], ACCOUNTS.c.account == key[1])
    later = case((ACCOUNTS.c.paused_until > until, ACCOUNTS.c.paused_until), else_=until)
    connection.execute(
        update(ACCOUNTS).where(*where).values(paused_until=later, pause_detail=detail[:500], throttles=ACCOUNTS.c.throttles + 1, updated_at=now)
    )


def view(connection: Connection, now: float) -> list[dict[str, Any]]:
    """Every account the workers have called: ``facility``, ``account`` (an allocation id as
    text, or ``""`` for an allowance the facility's accounts share), ``in_flight``,
    ``paused_seconds`` (left of its pause; None when not paused), ``pause_detail`` of the latest
    throttle and ``throttles`` counted so far."""
    calls = in_flight(connection, now)
    rows = connection.execute(select(ACCOUNTS).order_by(ACCOUNTS.c.facility, ACCOUNTS.c.account)).all()
    return [
        {
            "facility": row.facility,
            "account": row.account,
            "in_flight": calls.get((row.facility, row.account), 0),
            "paused_seconds": round(row.paused_until - now, 3) if row.paused_until is not None and row.paused_until > now else None,
            "pause_detail": row.pause_detail,
            "throttles": row.throttles,
        }
        for row in rows
    ]
