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
  of the account's next call, ``paused_until``/``pause_detail``/``throttles``, and ``ramp``.
- **Rates** (``FacilityLimit.rates``: a facility's documented ``rate_limits``, or the configured
  ``read_rate``/``write_rate``): ``account_calls`` holds the start of each call the claims gave
  an account under a rate, and a claim counts those in the window (``Rate.window``, the period and
  a small margin): a call is given the earliest start at which the window holds fewer than the
  rate's calls, if that is at most ``RATE_HORIZON`` ahead; otherwise the account's requests of
  that scope are made due then (as for a pause). So the workers together never start more calls
  than the facility allows, and meet no 429 for it.
- **Ramp after a pause.** A facility that throttles counts its calls over a window (DRF, behind
  ATLAS: 600 reads in any 60 s); when the pause it asked for ends, the window has freed only the
  calls older than it, often a handful. So the account does not resume at its full allowance: a
  throttle sets ``ramp`` to 1 (one call in flight: a probe), each call it then makes that is not
  throttled adds one (the allowance doubles with each round of answers, as TCP's slow start), and
  the ramp ends (null) once it reaches the allowance's ``concurrency``. A throttle during the ramp
  starts it again from 1. Without it, every pause's end sent the whole allowance at once to find
  out, and most came back 429 (measured with ``bench/gateway_throttled.py``).

These functions run inside the caller's transaction (``Jobs.claim`` and ``Jobs.record``): the
account rows are locked (``FOR UPDATE``, in key order) before their leases are counted, so on
PostgreSQL two claims of one account take turns; SQLite serialises every transaction anyway.
Times are UNIX seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, case, delete, func, select, tuple_, update
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


def in_flight(connection: Connection, now: float, facilities: Iterable[str] | None = None) -> dict[Key, int]:
    """Requests under a live lease (of ``facilities`` only, when given), counted by account and
    by whole facility (``(facility, WHOLE)``)."""
    query = (
        select(REQUESTS.c.facility, REQUESTS.c.allocation_id, func.count())
        .where(REQUESTS.c.lease_expires >= now)
        .group_by(REQUESTS.c.facility, REQUESTS.c.allocation_id)
    )
    if facilities is not None:
        query = query.where(REQUESTS.c.facility.in_(sorted(set(facilities))))
    counts: dict[Key, int] = {}
    for facility, allocation_id, count in connection.execute(query):
        counts[account_of(facility, allocation_id)] = count
        counts[facility, WHOLE] = counts.get((facility, WHOLE), 0) + count
    return counts


def restraints(connection: Connection, now: float) -> tuple[dict[Key, float], dict[Key, int]]:
    """``({key: the end of its pause}, {key: its ramp})``: every account paused at ``now``, and
    every account ramping up after a pause (at most that many calls in flight)."""
    query = select(ACCOUNTS.c.facility, ACCOUNTS.c.account, ACCOUNTS.c.paused_until, ACCOUNTS.c.ramp).where(
        (ACCOUNTS.c.paused_until > now) | ACCOUNTS.c.ramp.is_not(None)
    )
    pauses: dict[Key, float] = {}
    ramps: dict[Key, int] = {}
    for facility, account, until, ramp in connection.execute(query):
        if until is not None and until > now:
            pauses[facility, account] = until
        if ramp is not None:
            ramps[facility, account] = ramp
    return pauses, ramps


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
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(insert(ACCOUNTS).on_conflict_do_nothing(index_elements=["facility", "account"]), rows)


def lock(connection: Connection, keys: Iterable[Key], now: float) -> dict[Key, Any]:
    """The rows of ``keys``' accounts (created when missing), locked for this transaction."""
    ordered = sorted(set(keys))
    _ensure(connection, ordered, now)
    query = (
        select(ACCOUNTS)
        .where(tuple_(ACCOUNTS.c.facility, ACCOUNTS.c.account).in_(ordered))
        .order_by(ACCOUNTS.c.facility, ACCOUNTS.c.account)
        .with_for_update()
    )
    return {(row.facility, row.account): row for row in connection.execute(query)}


def set_next_start(connection: Connection, key: Key, next_start: float, now: float) -> None:
    """Record the earliest start of the account's next call (its row is locked by ``lock``)."""
    where = (ACCOUNTS.c.facility == key[0], ACCOUNTS.c.account == key[1])
    connection.execute(update(ACCOUNTS).where(*where).values(next_start=next_start, updated_at=now))


def pause(connection: Connection, key: Key, until: float, detail: str, now: float) -> None:
    """Pause the account until ``until`` (a later pause already set stands), count the throttle,
    keep the facility's ``detail`` (already redacted: it is the request's detail too) and make it
    resume with one call in flight (``ramp`` 1)."""
    _ensure(connection, [key], now)
    where = (ACCOUNTS.c.facility == key[0], ACCOUNTS.c.account == key[1])
    later = case((ACCOUNTS.c.paused_until > until, ACCOUNTS.c.paused_until), else_=until)
    connection.execute(
        update(ACCOUNTS)
        .where(*where)
        .values(paused_until=later, pause_detail=detail[:500], throttles=ACCOUNTS.c.throttles + 1, ramp=1, updated_at=now)
    )


def ramp_up(connection: Connection, answered: dict[Key, int], now: float) -> None:
    """Widen each ramping account's ramp by the calls of it ``answered`` without a throttle. An
    account not ramping is not touched (nor locked)."""
    for (facility, account), count in sorted(answered.items()):
        where = (ACCOUNTS.c.facility == facility, ACCOUNTS.c.account == account, ACCOUNTS.c.ramp.is_not(None))
        connection.execute(update(ACCOUNTS).where(*where).values(ramp=ACCOUNTS.c.ramp + count, updated_at=now))


def end_ramp(connection: Connection, key: Key, now: float) -> None:
    """The account's ramp has reached its allowance: it is no longer held below it."""
    where = (ACCOUNTS.c.facility == key[0], ACCOUNTS.c.account == key[1])
    connection.execute(update(ACCOUNTS).where(*where).values(ramp=None, updated_at=now))


def view(connection: Connection, now: float) -> list[dict[str, Any]]:
    """Every account the workers have called: ``facility``, ``account`` (an allocation id as
    text, or ``""`` for an allowance the facility's accounts share), ``in_flight``,
    ``paused_seconds`` (left of its pause; None when not paused), ``ramp`` (the calls it may
    have in flight while it resumes after a pause; None: its whole allowance), ``pause_detail``
    of the latest throttle and ``throttles`` counted so far."""
    calls = in_flight(connection, now)
    rows = connection.execute(select(ACCOUNTS).order_by(ACCOUNTS.c.facility, ACCOUNTS.c.account)).all()
    return [
        {
            "facility": row.facility,
            "account": row.account,
            "in_flight": calls.get((row.facility, row.account), 0),
            "paused_seconds": round(row.paused_until - now, 3) if row.paused_until is not None and row.paused_until > now else None,
            "ramp": row.ramp,
            "pause_detail": row.pause_detail,
            "throttles": row.throttles,
        }
        for row in rows
    ]
