"""The job queue: due requests leased to workers, and each facility call's outcome recorded.

Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers share one queue; SQLite
serialises them (see ``database.py``). A claim holds a request for ``lease`` seconds; an expired
lease makes it claimable again, and a result that arrives after its lease was lost is dropped.
Claims stay within each facility account's allowance, and a recorded throttle pauses the
account, for every worker at once (``accounts.py``).
"""

from __future__ import annotations

import bisect
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, func, or_, select, update

from ...core.interface import Allocation, FollowupRequest, Target
from ...core.json_text import Fragment
from ...core.outcome import Outcome, State
from ...core.redact import get_logger
from ..crypto import SealError
from ..models import ALLOCATIONS, REQUESTS
from ..pacing import RATE_HORIZON, SCOPES, FacilityLimit
from ..policy import Schedule, next_step
from . import accounts
from .allocations import ALLOCATION_FIELDS, Allocations
from .database import Database
from .pending import PendingRows
from .requests import carry_out_cancel, change_state

log = get_logger(__name__)


@dataclass(frozen=True)
class Job:
    """A claimed request: what a worker needs to make one facility call. ``operation`` is
    ``submit``, ``get``, ``update``, ``delete`` or ``find`` (looking up an interrupted
    submission); ``lease_owner`` is the claiming worker's name."""

    request_id: int
    facility: str
    operation: str
    request: FollowupRequest
    lease_owner: str
    #: A worker stopped between sending this submission and recording its answer.
    interrupted: bool = False
    #: UNIX time before which the call must not start (the account's ``min_interval`` spacing).
    not_before: float = 0.0


def _default_limit(_facility: str) -> FacilityLimit:
    return FacilityLimit()


# Statements run on every claim and every recorded outcome, built once with their values bound
# when run: building a statement and its cache key cost more than running it on SQLite.
_IDS = bindparam("ids", expanding=True)


@functools.cache
def _due(of_facilities: bool, skip_allocations: bool, skip_facilities: bool) -> Any:
    """Due requests without a live lease, the longest overdue first: ``now`` and ``limit`` bound,
    and ``facilities``, ``skip_allocations``, ``skip_facilities`` where the query has them."""
    now = bindparam("now")
    due = (
        select(REQUESTS.c.id, REQUESTS.c.facility, REQUESTS.c.allocation_id, REQUESTS.c.operation)
        .where(REQUESTS.c.next_poll_at <= now, or_(REQUESTS.c.lease_expires.is_(None), REQUESTS.c.lease_expires < now))
        .order_by(REQUESTS.c.next_poll_at)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)
    )
    if of_facilities:
        due = due.where(REQUESTS.c.facility.in_(bindparam("facilities", expanding=True)))
    if skip_allocations:
        due = due.where(REQUESTS.c.allocation_id.not_in(bindparam("skip_allocations", expanding=True)))
    if skip_facilities:
        due = due.where(REQUESTS.c.facility.not_in(bindparam("skip_facilities", expanding=True)))
    return due


_LEASE = update(REQUESTS).where(REQUESTS.c.id.in_(_IDS)).values(lease_owner=bindparam("owner"), lease_expires=bindparam("expires"))
_CLAIMED = (
    select(REQUESTS, ALLOCATIONS.c.sealed_altdata.label("sealed_altdata"), *(ALLOCATIONS.c[name].label(f"allocation_{name}") for name in ALLOCATION_FIELDS))
    .join(ALLOCATIONS, ALLOCATIONS.c.id == REQUESTS.c.allocation_id)
    .where(REQUESTS.c.id.in_(_IDS))
    .order_by(REQUESTS.c.next_poll_at)
)
_RECORDED = select(REQUESTS).where(REQUESTS.c.id.in_(_IDS)).order_by(REQUESTS.c.id).with_for_update()


def _leased(connection: Connection, job: Job) -> Any:
    """The job's row, locked, if its lease is still the job's; else None."""
    row = connection.execute(select(REQUESTS).where(REQUESTS.c.id == job.request_id).with_for_update()).one_or_none()
    return row if row is not None and row.lease_owner == job.lease_owner else None


@dataclass(frozen=True)
class Recording:
    """One outcome to record (see ``Jobs.record``): ``can_poll``/``can_delete``/``can_update``
    say whether the job's facility implements ``get``/``delete``/``update``; ``title`` is its name
    for people."""

    job: Job
    outcome: Outcome
    can_poll: bool
    can_delete: bool = False
    can_update: bool = False
    title: str = "the facility"


class Jobs:
    """Claiming due requests and recording what their facility calls returned. Times are UNIX
    seconds; ``now`` defaults to the clock."""

    def __init__(self, database: Database, allocations: Allocations, schedule: Schedule):
        self._database = database
        self._allocations = allocations
        self._schedule = schedule

    def claim(
        self,
        owner: str,
        limit: int,
        lease: float,
        now: float | None = None,
        facilities: Sequence[str] | None = None,
        limits: Callable[[str], FacilityLimit] | None = None,
    ) -> list[Job]:
        """Lease up to ``limit`` due requests (of ``facilities`` only, when given) to ``owner`` for
        ``lease`` seconds, the longest overdue first, within each facility's (or facility
        account's) allowance (``limits(facility)``, default ``FacilityLimit()``), shared with
        every other worker on the database (see ``accounts.py``): due requests beyond the free
        slots stay due for a later claim; those of a paused account are made due at the
        pause's end; with a ``min_interval`` or a rate, each job's ``not_before`` is its start
        time, at most ``lease / 4`` ahead (later starts are left for a later claim) and, under a
        rate, at most ``RATE_HORIZON`` (the account's requests of that scope are then made due
        when the window has room).

        A request whose allocation's credentials do not open (altered at rest: a wrong key is
        refused at start-up) is not claimed: it waits, its status unchanged and the reason in its
        ``detail``, for a backoff that doubles up to the schedule's cap, until the allocation is
        stored again; it stalls no one else."""
        clock = now is None
        now = time.time() if now is None else now
        limit_of = limits or _default_limit
        jobs: list[Job] = []
        with self._database.connection() as connection:
            calls = accounts.in_flight(connection, now)
            pauses = accounts.paused(connection, now)
            for key, until in pauses.items():
                accounts.hold_back(connection, key, until, now)
            # Accounts (or whole facilities) with no free slot: their requests stay due.
            full = []
            for (facility, account), count in calls.items():
                allowance = limit_of(facility)
                if (account != accounts.WHOLE) == allowance.per_account and count >= allowance.concurrency:
                    full.append((facility, account))
            skip_allocations = sorted({int(a) for f, a in [*full, *pauses] if a != accounts.WHOLE})
            skip_facilities = sorted({f for f, a in full if a == accounts.WHOLE})
            bound: dict[str, Any] = {"now": now, "limit": limit}
            if facilities is not None:
                bound["facilities"] = list(facilities)
            if skip_allocations:
                bound["skip_allocations"] = skip_allocations
            if skip_facilities:
                bound["skip_facilities"] = skip_facilities
            due = _due(facilities is not None, bool(skip_allocations), bool(skip_facilities))
            candidates = connection.execute(due, bound).all()
            if not candidates:
                return []
            keys = {(c.facility, c.allocation_id, accounts.account_of(c.facility, c.allocation_id)) for c in candidates}
            allowances = {accounts.allowance_of(f, a, limit_of(f)) for f, a, _ in keys}
            rows = accounts.lock(connection, allowances | {key for _, _, key in keys}, now)
            # No call starts before its account's row was ours: on PostgreSQL the lock may have
            # waited for another worker's claim, whose calls' starts lie past ``now`` by then.
            locked_at = max(now, time.time()) if clock else now
            if self._database.dialect != "sqlite":
                # Another worker may have claimed or paused since the reads above: count again,
                # now that the accounts are locked. (SQLite ran this whole transaction alone.)
                calls = accounts.in_flight(connection, now, {f for f, _, _ in keys})
            ids: list[int] = []
            starts: dict[int, float] = {}
            next_starts: dict[accounts.Key, float] = {}
            windows: dict[tuple[accounts.Key, str], list[float]] = {}
            rated: list[tuple[accounts.Key, str, float]] = []
            held_back: set[tuple[accounts.Key, str]] = set()
            for candidate in candidates:
                allowance = limit_of(candidate.facility)
                account = accounts.account_of(candidate.facility, candidate.allocation_id)
                key = accounts.allowance_of(candidate.facility, candidate.allocation_id, allowance)
                paused_until = rows[account].paused_until
                if paused_until is not None and paused_until > now:
                    if account not in pauses:
                        pauses[account] = paused_until
                        accounts.hold_back(connection, account, paused_until, now)
                    continue
                if calls.get(key, 0) >= allowance.concurrency:
                    continue
                start = locked_at
                if allowance.min_interval > 0:
                    start = max(start, next_starts.get(key, rows[key].next_start))
                rate = allowance.rate(candidate.operation)
                if rate is not None:
                    scope = SCOPES[candidate.operation]
                    if (account, scope) not in windows:
                        windows[account, scope] = accounts.window(connection, account, scope, now - rate.window)
                    window = windows[account, scope]
                    if len(window) >= rate.calls:
                        start = max(start, window[-rate.calls] + rate.window)  # when the window has room
                        if start > now + RATE_HORIZON:
                            if (account, scope) not in held_back:  # once: the others of that scope are held with it
                                held_back.add((account, scope))
                                accounts.hold_back(connection, account, start, now, [op for op, s in SCOPES.items() if s == scope])
                            continue
                if start > now + lease / 4:
                    continue  # too far ahead: the lease must outlast the wait and the call
                if allowance.min_interval > 0:
                    next_starts[key] = start + allowance.min_interval
                if rate is not None:
                    bisect.insort(window, start)
                    rated.append((account, scope, start))
                if allowance.min_interval > 0 or rate is not None:
                    starts[candidate.id] = start
                calls[key] = calls.get(key, 0) + 1
                ids.append(candidate.id)
            for key, next_start in next_starts.items():
                accounts.set_next_start(connection, key, next_start, now)
            accounts.log_calls(connection, rated)
            if not ids:
                return []
            connection.execute(_LEASE, {"ids": ids, "owner": owner, "expires": now + lease})
            rows = connection.execute(_CLAIMED, {"ids": ids}).all()
            allocations: dict[int, Allocation | SealError] = {}
            for row in rows:
                if row.allocation_id not in allocations:
                    fields = {name: getattr(row, f"allocation_{name}") for name in ALLOCATION_FIELDS}
                    try:
                        allocations[row.allocation_id] = self._allocations.opened(row.allocation_id, row.sealed_altdata, fields)
                    except SealError as exc:
                        allocations[row.allocation_id] = exc
                allocation = allocations[row.allocation_id]
                if isinstance(allocation, SealError):
                    # Paused, never ended: the facility may hold the request, and a restored
                    # allocation must find it where it was.
                    wait = self._schedule.backoff(row.failures + 1)
                    log.warning("request %s: %s; it waits %g s for the allocation to be stored again", row.id, allocation, wait)
                    paused = {"detail": f"paused: {allocation}", "next_poll_at": now + wait, "failures": row.failures + 1}
                    connection.execute(update(REQUESTS).where(REQUESTS.c.id == row.id).values(**paused, lease_owner=None, lease_expires=None))
                    continue
                target = Target(row.obj_id, row.ra, row.dec)
                interrupted = row.operation == "submit" and row.submitting_since is not None
                attempted_at = row.submitting_since if row.operation in ("submit", "find") else None
                request = FollowupRequest(
                    row.id,
                    target,
                    allocation,
                    row.payload,
                    requester=row.requester,
                    remote_id=row.remote_id,
                    cursor=row.cursor,
                    attempted_at=attempted_at,
                    followup_request_id=row.followup_request_id,
                )
                jobs.append(Job(row.id, row.facility, row.operation, request, owner, interrupted, starts.get(row.id, 0.0)))
        return jobs

    def defer(self, job: Job, until: float | None = None) -> None:
        """Give a job back without calling the facility, due again at ``until`` (or as it was)."""
        values: dict[str, Any] = {"lease_owner": None, "lease_expires": None}
        if until is not None:
            values["next_poll_at"] = until
        with self._database.connection() as connection:
            connection.execute(update(REQUESTS).where(REQUESTS.c.id == job.request_id, REQUESTS.c.lease_owner == job.lease_owner).values(**values))

    def start(self, job: Job, lease: float, now: float | None = None) -> bool:
        """The facility call is about to leave: renew the lease from now and, for a submission,
        mark it (committed before it is sent). False if the lease was lost meanwhile."""
        now = time.time() if now is None else now
        values: dict[str, Any] = {"lease_expires": now + lease}
        if job.operation == "submit":
            values["submitting_since"] = now
        with self._database.connection() as connection:
            result = connection.execute(update(REQUESTS).where(REQUESTS.c.id == job.request_id, REQUESTS.c.lease_owner == job.lease_owner).values(**values))
            return result.rowcount == 1

    def next_due(self) -> float | None:
        """When the earliest request falls due (None when nothing is owed)."""
        with self._database.connection() as connection:
            return connection.scalar(select(func.min(REQUESTS.c.next_poll_at)))

    def record(
        self,
        job: Job,
        outcome: Outcome,
        *,
        can_poll: bool,
        can_delete: bool = False,
        can_update: bool = False,
        title: str = "the facility",
        now: float | None = None,
    ) -> bool:
        """Apply an outcome: state, history, transactions, frames (the newest list replaces the
        last), outbox (photometry before the status that announces it) and the facility's cursor
        (kept unless the outcome brings a new one) in one transaction.
        ``can_poll``/``can_delete``/``can_update``: the facility implements
        ``get``/``delete``/``update``; ``title``: its name for people, for the status of a cancel it
        cannot carry out (``carry_out_cancel``). A payload changed while the call was out is sent with an
        ``update`` due now, once the facility holds the request.

        A throttle (``State.THROTTLED`` with ``poll_after``) also pauses the facility account
        for every worker (``accounts.pause``), and the lease ending frees the account's slot.

        Returns False (and writes nothing of the request; a throttle's pause stands) when the
        lease was lost meanwhile: another worker owns the request now and its result wins.
        """
        return self.record_many([Recording(job, outcome, can_poll, can_delete, can_update, title)], now)[0]

    def record_many(self, recordings: Sequence[Recording], now: float | None = None) -> list[bool]:
        """``record`` each of ``recordings`` (of different requests), all in one transaction: one
        commit for many outcomes (a group commit). Each is applied exactly as ``record`` applies
        it, and its result (False: the lease was lost) is at the same position. An error writes
        none of them."""
        now = time.time() if now is None else now
        # Everything that needs no row is built before the transaction: SQLite has one writer.
        prepared = [self._prepare(recording, now) for recording in recordings]
        results = [False] * len(recordings)
        # In request order: two transactions that lock the same rows lock them in the same order.
        order = sorted(range(len(recordings)), key=lambda i: recordings[i].job.request_id)
        ids = [recording.job.request_id for recording in recordings]
        if len(set(ids)) != len(ids):
            raise ValueError("record_many records one outcome per request")
        with self._database.connection() as connection:
            rows = {row.id: row for row in connection.execute(_RECORDED, {"ids": sorted(ids)})}
            pending = PendingRows()
            for i in order:
                results[i] = self._apply(connection, recordings[i], *prepared[i], now, rows.get(ids[i]), pending)
            pending.flush(connection)
        for request_id, status in pending.changed:  # committed: the operator's log follows each request
            log.info("request %s: %s", request_id, status)
        return results

    @staticmethod
    def _prepare(recording: Recording, now: float) -> tuple[Outcome, list[bytes], list[dict[str, Any]]]:
        job, outcome = recording.job, recording.outcome
        photometry = outcome.photometry if outcome.photometry is not None and len(outcome.photometry) else None
        allocation = job.request.allocation
        if photometry is not None and allocation.instrument_id is None:
            photometry = None
            detail = "photometry arrived but the allocation names no instrument_id"
            outcome = Outcome(State.FAILED, detail, outcome.remote_id, transactions=outcome.transactions)  # the cursor stays: nothing was delivered
        # SkyPortal takes at most 10,000 points an upload: one outbox row per upload, in order.
        uploads = photometry.uploads(job.request.target.id, allocation.instrument_id, allocation.group_ids) if photometry is not None else []
        records = [{"request_id": job.request_id, "at": now, "operation": job.operation, "record": t.as_dict()} for t in outcome.transactions]
        return outcome, uploads, records

    def _apply(
        self,
        connection: Connection,
        recording: Recording,
        outcome: Outcome,
        uploads: list[bytes],
        records: list[dict[str, Any]],
        now: float,
        row: Any,
        pending: PendingRows,
    ) -> bool:
        """Apply one outcome to its request's ``row`` (locked), the rows it owes gathered in
        ``pending`` (see ``pending.py``)."""
        job, can_poll, can_delete, can_update = recording.job, recording.can_poll, recording.can_delete, recording.can_update
        allocation = job.request.allocation
        if outcome.state is State.THROTTLED and outcome.poll_after:
            # The account's pause holds every worker back, even when this result is dropped.
            accounts.pause(connection, accounts.account_of(job.facility, allocation.id), now + outcome.poll_after, outcome.detail, now)
        if row is None or row.lease_owner != job.lease_owner:
            return False
        step = next_step(
            outcome,
            operation=job.operation,
            previous_state=State(row.state),
            previous_status=row.status,
            failures=row.failures,
            can_poll=can_poll,
            give_up_at=row.give_up_at,
            now=now,
            schedule=self._schedule,
            can_delete=can_delete,
            previous_detail=row.detail,
            # A delete nobody asked for is the cancel the gateway sends after giving up.
            canceling_after_giving_up=job.operation == "delete" and not row.cancel_requested,
        )
        pending.transactions += records
        for upload in uploads:
            pending.owe(job.request_id, "photometry", Fragment(upload), now)  # stored as encoded
        remote_id = outcome.remote_id or row.remote_id
        values = pending.change_state(job.request_id, row.status, step.state, step.status, step.detail, now)
        cursor = row.cursor if outcome.cursor is None else outcome.cursor
        values.update(
            remote_id=remote_id, cursor=cursor, operation=step.operation, next_poll_at=step.next_poll_at, failures=step.failures,
            lease_owner=None, lease_expires=None, updated_at=now,
            # A lookup to be asked again still needs the time the lost submission left.
            submitting_since=row.submitting_since if step.operation == "find" else None,
        )  # fmt: skip
        if step.give_up_at is not None:
            values["give_up_at"] = step.give_up_at
        if outcome.frames:
            values["frames"] = [frame.as_dict() for frame in outcome.frames]
        if job.operation == "delete":
            # Done, or failed for good: a delete may be asked again. Tried again: still the one asked for.
            values["cancel_requested"] = row.cancel_requested and step.operation == "delete"
        elif row.cancel_requested and step.state is not State.DELETED:
            # The cancel was asked while this call was out: carry it out on what it returned.
            pending.flush(connection)  # its status follows this outcome's
            values.update(carry_out_cancel(connection, job.request_id, remote_id, step.status, can_delete, now, recording.title))
        elif row.payload != job.request.payload and can_update and remote_id is not None and step.state.active and step.operation in (None, "get"):
            # The payload changed while this call was out: the facility holds the old one.
            values.update(operation="update", next_poll_at=now)
        pending.attempted(job.request_id, values)
        return True

    def abandon(self, job: Job, detail: str, now: float | None = None) -> bool:
        """End a request without a facility call, as ``failed: <detail>`` (never "failed to
        submit", which would invite a second submission). False if the lease was lost."""
        now = time.time() if now is None else now
        with self._database.connection() as connection:
            row = _leased(connection, job)
            if row is None:
                return False
            values = change_state(connection, job.request_id, row.status, State.FAILED, f"failed: {detail}", detail, now)
            values.update(operation=None, next_poll_at=None, lease_owner=None, lease_expires=None, submitting_since=None, updated_at=now)
            values["cancel_requested"] = False  # a cancel asked meanwhile may be asked again: the request is no longer held here
            connection.execute(update(REQUESTS).where(REQUESTS.c.id == job.request_id).values(**values))
        return True
