"""The gateway's persistence: SQLite (embedded default) or PostgreSQL, through SQLAlchemy 2.0.

Every state change is written in one transaction with the history row, the redacted
transactions and the outbox rows it owes SkyPortal. Claims use ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several workers share one queue; SQLite serialises writers with
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from sqlalchemy import Engine, create_engine, event, func, inspect, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..core.errors import ConfigurationError, FacilityError
from ..core.interface import Allocation, FollowupRequest, Target
from ..core.outcome import Outcome, State
from .crypto import SealError, SecretBox
from .models import (
    SCHEMA_VERSION,
    AllocationRow,
    Base,
    Client,
    HistoryRow,
    Meta,
    OutboxRow,
    RequestRow,
    TransactionRow,
)
from .policy import Schedule, next_step


class NotFound(FacilityError):
    """No such row, or not one the caller may see (the two are not told apart)."""


class Conflict(FacilityError):
    """The row exists but cannot take this change (e.g. cancelling a finished request)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _context(allocation_id: int) -> str:
    return f"allocation:{allocation_id}"


@dataclass(frozen=True)
class Job:
    """A claimed request: what a worker needs to make one facility call."""

    request_id: int
    facility: str
    operation: str
    request: FollowupRequest
    lease_owner: str
    attempts: int
    failures: int
    state: State
    status: str
    give_up_at: float
    #: A worker stopped between sending this submission and recording its answer.
    interrupted: bool = False


@dataclass(frozen=True)
class Delivery:
    """A claimed outbox row, with what is needed to address it."""

    id: int
    request_id: int
    kind: str
    body: dict[str, Any]
    attempts: int
    followup_request_id: int | None
    obj_id: str
    allocation_id: int


def _private_file(path: str | None) -> None:
    """Create the SQLite file readable by its owner only (its -wal and -shm files follow its mode)."""
    if path and path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below take over
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        # Take the write lock up front: a read that later writes cannot then deadlock.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """All reads and writes of the gateway's tables."""

    def __init__(self, database_url: str, box: SecretBox, *, schedule: Schedule | None = None, create: bool = True, **engine_options: Any):
        self.engine = create_engine(database_url, **engine_options)
        if self.engine.dialect.name == "sqlite":
            _private_file(self.engine.url.database)
            _configure_sqlite(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._box = box
        self.schedule = schedule or Schedule()
        self._check_schema(create)

    @property
    def box(self) -> SecretBox:
        """The key holder: it seals altdata and signs the URLs the gateway hands out."""
        return self._box

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._sessions.begin()  # type: ignore[return-value]

    # -- schema version --------------------------------------------------------------------

    def _check_schema(self, create: bool) -> None:
        """Create the tables in an empty database; refuse a database of another schema version."""
        tables = set(inspect(self.engine).get_table_names())
        if Meta.__tablename__ not in tables:
            foreign = tables & set(Base.metadata.tables)
            if foreign:
                raise ConfigurationError(
                    f"the database already has tables named like the gateway's ({', '.join(sorted(foreign))}) but is not a gateway "
                    "database: give the gateway a database of its own"
                )
            if not create:
                raise ConfigurationError("the database holds no gateway tables; start `facility-apis serve` once to create them")
            Base.metadata.create_all(self.engine)
            with self.session() as session:
                session.merge(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
            return
        with self.session() as session:
            found = session.get(Meta, "schema_version")
        version = found.value if found else "unknown"
        if version != str(SCHEMA_VERSION):
            raise ConfigurationError(
                f"the database has gateway schema version {version}, this facility_apis needs {SCHEMA_VERSION}; "
                "see docs/gateway.md (Upgrading) before starting it"
            )

    # -- clients -----------------------------------------------------------------------------

    def add_client(self, name: str) -> str:
        """Register an API client; return its new token (shown once, stored only as a hash)."""
        token = secrets.token_urlsafe(32)
        with self.session() as session:
            if session.scalar(select(Client).where(Client.name == name)):
                raise Conflict(f"a client named {name!r} already exists")
            session.add(Client(name=name, token_hash=token_hash(token), created_at=time.time()))
        return token

    def authenticate(self, token: str | None) -> int | None:
        """The client id owning ``token``, or None. The comparison takes constant time."""
        if not token:
            return None
        presented = token_hash(token)
        with self.session() as session:
            row = session.scalar(select(Client).where(Client.token_hash == presented))
        if row is None or not hmac.compare_digest(row.token_hash, presented):
            return None
        return row.id

    # -- allocations -------------------------------------------------------------------------

    def put_allocation(self, owner_id: int, allocation_id: int, facility: str, altdata: Mapping[str, Any], **fields: Any) -> None:
        """Create or replace an allocation (``altdata`` already validated). Another client's
        allocation with this id is refused as ``NotFound``."""
        now = time.time()
        with self.session() as session:
            row = session.get(AllocationRow, allocation_id)
            if row is not None and row.owner_id != owner_id:
                raise NotFound(f"allocation {allocation_id} belongs to another client")
            if row is None:
                row = AllocationRow(id=allocation_id, owner_id=owner_id, created_at=now)
                session.add(row)
            row.facility = facility
            row.sealed_altdata = self._box.seal(dict(altdata), _context(allocation_id))
            row.pi = fields.get("pi")
            row.proposal_id = fields.get("proposal_id")
            row.instrument_id = fields.get("instrument_id")
            row.instrument_name = fields.get("instrument_name")
            row.filters = list(fields.get("filters") or [])
            row.group_ids = list(fields.get("group_ids") or [])
            row.updated_at = now

    def allocation(self, allocation_id: int, owner_id: int | None = None) -> tuple[str, Allocation]:
        """``(facility name, Allocation with opened altdata)``; ``owner_id`` restricts to a client."""
        with self.session() as session:
            row = session.get(AllocationRow, allocation_id)
        if row is None or (owner_id is not None and row.owner_id != owner_id):
            raise NotFound(f"no allocation {allocation_id}")
        return row.facility, self._allocation(row)

    def allocation_summary(self, allocation_id: int, owner_id: int) -> dict[str, Any]:
        """An allocation as the API shows it: everything but the credentials."""
        with self.session() as session:
            row = session.get(AllocationRow, allocation_id)
        if row is None or row.owner_id != owner_id:
            raise NotFound(f"no allocation {allocation_id}")
        return {
            "id": row.id,
            "facility": row.facility,
            "pi": row.pi,
            "proposal_id": row.proposal_id,
            "instrument_id": row.instrument_id,
            "instrument_name": row.instrument_name,
            "filters": row.filters,
            "group_ids": row.group_ids,
        }

    def _allocation(self, row: AllocationRow) -> Allocation:
        return Allocation(
            row.id,
            self._box.open(row.sealed_altdata, _context(row.id)),
            pi=row.pi,
            proposal_id=row.proposal_id,
            instrument_id=row.instrument_id,
            instrument_name=row.instrument_name,
            filters=tuple(row.filters or ()),
            group_ids=tuple(row.group_ids or ()),
        )

    # -- requests ----------------------------------------------------------------------------

    def add_request(
        self,
        allocation_id: int,
        target: Target,
        payload: Mapping[str, Any],
        *,
        owner_id: int | None = None,
        followup_request_id: int | None = None,
        requester: str | None = None,
        remote_id: str | None = None,
        now: float | None = None,
    ) -> int:
        """Accept a request (payload already validated); it is due for submission at once
        (or, with ``remote_id``, for its first poll)."""
        now = time.time() if now is None else now
        with self.session() as session:
            allocation = session.get(AllocationRow, allocation_id)
            if allocation is None or (owner_id is not None and allocation.owner_id != owner_id):
                raise NotFound(f"no allocation {allocation_id}")
            state = State.PENDING if remote_id is None else State.SUBMITTED
            row = RequestRow(
                allocation_id=allocation_id,
                facility=allocation.facility,
                followup_request_id=followup_request_id,
                obj_id=target.id,
                ra=target.ra,
                dec=target.dec,
                payload=dict(payload),
                requester=requester,
                remote_id=remote_id,
                state=state.value,
                status="pending submission" if remote_id is None else "submitted",
                detail="",
                operation="submit" if remote_id is None else "get",
                next_poll_at=now,
                attempts=0,
                failures=0,
                give_up_at=now + self.schedule.horizon,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            session.add(HistoryRow(request_id=row.id, at=now, state=row.state, status=row.status))
            return row.id

    def request_view(self, request_id: int, owner_id: int | None = None) -> dict[str, Any]:
        """A request as the API shows it, with its status history and redacted transactions."""
        with self.session() as session:
            row = self._owned_request(session, request_id, owner_id)
            history = session.scalars(select(HistoryRow).where(HistoryRow.request_id == request_id).order_by(HistoryRow.id)).all()
            transactions = session.scalars(select(TransactionRow).where(TransactionRow.request_id == request_id).order_by(TransactionRow.id)).all()
            outbox = session.scalars(select(OutboxRow).where(OutboxRow.request_id == request_id).order_by(OutboxRow.id)).all()
        return {
            "id": row.id,
            "allocation_id": row.allocation_id,
            "facility": row.facility,
            "followup_request_id": row.followup_request_id,
            "obj_id": row.obj_id,
            "ra": row.ra,
            "dec": row.dec,
            "payload": row.payload,
            "requester": row.requester,
            "remote_id": row.remote_id,
            "state": row.state,
            "status": row.status,
            "detail": row.detail,
            "next_operation": row.operation,
            "next_poll_at": row.next_poll_at,
            "attempts": row.attempts,
            "created_at": row.created_at,
            "history": [{"at": h.at, "state": h.state, "status": h.status} for h in history],
            "transactions": [{"at": t.at, "operation": t.operation, **t.record} for t in transactions],
            "deliveries": [
                {"kind": o.kind, "delivered_at": o.delivered_at, "attempts": o.attempts, "dead": o.dead, "last_error": o.last_error}
                for o in outbox
            ],
        }

    def list_requests(self, owner_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The newest requests, one summary line each."""
        query = select(RequestRow).order_by(RequestRow.id.desc()).limit(limit)
        if owner_id is not None:
            query = query.join(AllocationRow).where(AllocationRow.owner_id == owner_id)
        with self.session() as session:
            rows = session.scalars(query).all()
        return [
            {"id": r.id, "facility": r.facility, "obj_id": r.obj_id, "state": r.state, "status": r.status, "updated_at": r.updated_at}
            for r in rows
        ]

    @staticmethod
    def _owned_request(session: Session, request_id: int, owner_id: int | None) -> RequestRow:
        row = session.get(RequestRow, request_id)
        if row is not None and owner_id is not None:
            allocation = session.get(AllocationRow, row.allocation_id)
            if allocation is None or allocation.owner_id != owner_id:
                row = None
        if row is None:
            raise NotFound(f"no follow-up request {request_id}")
        return row

    def cancel(self, request_id: int, owner_id: int | None = None, *, can_delete: bool, now: float | None = None) -> str:
        """Ask for a request to be cancelled; return its state afterwards.

        A call in flight (a submission, say) lands first and the cancel follows it. Then: not
        held by the facility, or a facility that cannot delete: deleted here at once. Held: a
        ``delete`` call is due now. Already finished: ``Conflict``.
        """
        now = time.time() if now is None else now
        with self.session() as session:
            row = self._owned_request(session, request_id, owner_id)
            state = State(row.state)
            if state.terminal or row.cancel_requested or (row.operation is None and state is not State.PENDING):
                raise Conflict(f"follow-up request {request_id} is already {row.status!r}")
            row.cancel_requested = True
            if row.lease_owner is None or (row.lease_expires or 0.0) < now:
                self._carry_out_cancel(session, row, can_delete, now)
            row.updated_at = now
            return row.state

    def _carry_out_cancel(self, session: Session, row: RequestRow, can_delete: bool, now: float) -> None:
        if row.remote_id is not None and can_delete:
            row.operation, row.next_poll_at = "delete", now
            return
        detail = "cancelled before the facility held it" if row.remote_id is None else "cancelled here; the facility offers no way to delete it"
        self._change(session, row, State.DELETED, "deleted", detail, now)
        row.operation = row.next_poll_at = None

    def poke(self, request_id: int, now: float | None = None) -> bool:
        """Make a followed request due now (a facility callback said it changed)."""
        now = time.time() if now is None else now
        with self.session() as session:
            result = session.execute(
                update(RequestRow)
                .where(RequestRow.id == request_id, RequestRow.operation == "get")
                .values(next_poll_at=func.least(RequestRow.next_poll_at, now) if self.engine.dialect.name == "postgresql" else func.min(RequestRow.next_poll_at, now))
            )
            return result.rowcount == 1

    def set_followup_request_id(self, request_id: int, followup_request_id: int) -> bool:
        """Link a request to SkyPortal's id unless another request holds that id; False if so."""
        taken = select(RequestRow.id).where(RequestRow.followup_request_id == followup_request_id).exists()
        with self.session() as session:
            result = session.execute(
                update(RequestRow).where(RequestRow.id == request_id, ~taken).values(followup_request_id=followup_request_id).execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

    def followup_request_id(self, request_id: int) -> int | None:
        with self.session() as session:
            return session.scalar(select(RequestRow.followup_request_id).where(RequestRow.id == request_id))

    def unresolved_requests(self, obj_id: str, allocation_id: int) -> list[tuple[int, dict[str, Any]]]:
        """``(id, payload)`` of requests on this source and allocation with no SkyPortal id, oldest first."""
        with self.session() as session:
            rows = session.execute(
                select(RequestRow.id, RequestRow.payload)
                .where(RequestRow.obj_id == obj_id, RequestRow.allocation_id == allocation_id, RequestRow.followup_request_id.is_(None))
                .order_by(RequestRow.id)
            ).all()
        return [(row.id, row.payload) for row in rows]

    def claimed_followup_ids(self, candidates: Sequence[int]) -> set[int]:
        """Which of these SkyPortal request ids already belong to a gateway request."""
        with self.session() as session:
            return set(session.scalars(select(RequestRow.followup_request_id).where(RequestRow.followup_request_id.in_(list(candidates)))))

    # -- the worker's side -------------------------------------------------------------------

    def claim(self, owner: str, limit: int, lease: float, now: float | None = None, facilities: Sequence[str] | None = None) -> list[Job]:
        """Lease up to ``limit`` due requests to ``owner`` for ``lease`` seconds."""
        now = time.time() if now is None else now
        due = (
            select(RequestRow.id)
            .where(RequestRow.next_poll_at <= now, or_(RequestRow.lease_expires.is_(None), RequestRow.lease_expires < now))
            .order_by(RequestRow.next_poll_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if facilities is not None:
            due = due.where(RequestRow.facility.in_(list(facilities)))
        jobs: list[Job] = []
        with self.session() as session:
            ids = list(session.scalars(due))
            if not ids:
                return []
            session.execute(update(RequestRow).where(RequestRow.id.in_(ids)).values(lease_owner=owner, lease_expires=now + lease))
            rows = session.scalars(select(RequestRow).where(RequestRow.id.in_(ids))).all()
            allocations: dict[int, Allocation | SealError] = {}
            for row in rows:
                if row.allocation_id not in allocations:
                    try:
                        allocations[row.allocation_id] = self._allocation(session.get(AllocationRow, row.allocation_id))
                    except SealError as exc:
                        allocations[row.allocation_id] = exc
                if isinstance(allocations[row.allocation_id], SealError):
                    # One allocation's unreadable credentials must not stall everyone else's requests.
                    detail = str(allocations[row.allocation_id])
                    self._change(session, row, State.FAILED, f"failed: {detail}", detail, now)
                    row.operation = row.next_poll_at = row.lease_owner = row.lease_expires = None
                    continue
                request = FollowupRequest(
                    row.id,
                    Target(row.obj_id, row.ra, row.dec),
                    allocations[row.allocation_id],
                    row.payload,
                    requester=row.requester,
                    remote_id=row.remote_id,
                )
                interrupted = row.operation == "submit" and row.submitting_since is not None
                jobs.append(
                    Job(row.id, row.facility, row.operation, request, owner, row.attempts, row.failures, State(row.state), row.status, row.give_up_at, interrupted)
                )
        return jobs

    def defer(self, job: Job, until: float | None = None) -> None:
        """Give a job back without calling the facility, due again at ``until`` (or as it was)."""
        values: dict[str, Any] = {"lease_owner": None, "lease_expires": None}
        if until is not None:
            values["next_poll_at"] = until
        with self.session() as session:
            session.execute(update(RequestRow).where(RequestRow.id == job.request_id, RequestRow.lease_owner == job.lease_owner).values(**values))

    def start(self, job: Job, lease: float, now: float | None = None) -> bool:
        """The facility call is about to leave: renew the lease from now and, for a submission,
        mark it (committed before it is sent). False if the lease was lost meanwhile."""
        now = time.time() if now is None else now
        values: dict[str, Any] = {"lease_expires": now + lease}
        if job.operation == "submit":
            values["submitting_since"] = now
        with self.session() as session:
            result = session.execute(
                update(RequestRow).where(RequestRow.id == job.request_id, RequestRow.lease_owner == job.lease_owner).values(**values)
            )
            return result.rowcount == 1

    def next_due(self) -> float | None:
        """When the earliest request falls due (None when nothing is owed)."""
        with self.session() as session:
            return session.scalar(select(func.min(RequestRow.next_poll_at)))

    def record(self, job: Job, outcome: Outcome, *, can_poll: bool, can_delete: bool = False, now: float | None = None) -> bool:
        """Apply an outcome: state, history, transactions and outbox in one transaction.

        Returns False (and writes nothing) when the lease was lost meanwhile: another worker
        owns the request now and its result wins.
        """
        now = time.time() if now is None else now
        with self.session() as session:
            row = session.scalar(select(RequestRow).where(RequestRow.id == job.request_id).with_for_update())
            if row is None or row.lease_owner != job.lease_owner:
                return False
            photometry = outcome.photometry if outcome.photometry is not None and len(outcome.photometry) else None
            instrument_id = job.request.allocation.instrument_id
            if photometry is not None and instrument_id is None:
                photometry = None
                outcome = Outcome(State.FAILED, "photometry arrived but the allocation names no instrument_id", outcome.remote_id, transactions=outcome.transactions)
            step = next_step(
                outcome,
                operation=job.operation,
                previous_state=State(row.state),
                previous_status=row.status,
                failures=row.failures,
                can_poll=can_poll,
                give_up_at=row.give_up_at,
                now=now,
                schedule=self.schedule,
            )
            for transaction in outcome.transactions:
                session.add(TransactionRow(request_id=row.id, at=now, operation=job.operation, record=transaction.as_dict()))
            if photometry is not None:
                body = photometry.to_skyportal(row.obj_id, instrument_id, job.request.allocation.group_ids)
                session.add(OutboxRow(request_id=row.id, kind="photometry", body=body, created_at=now, attempts=0, next_attempt_at=now))
            if outcome.remote_id:
                row.remote_id = outcome.remote_id
            self._change(session, row, step.state, step.status, step.detail, now)
            row.operation, row.next_poll_at = step.operation, step.next_poll_at
            if row.cancel_requested and job.operation != "delete" and step.operation is not None:
                self._carry_out_cancel(session, row, can_delete, now)  # asked while this call was out
            row.failures = step.failures
            row.attempts += 1
            row.lease_owner = row.lease_expires = row.submitting_since = None
            row.updated_at = now
        return True

    def abandon(self, job: Job, detail: str, now: float | None = None) -> bool:
        """End a request without a facility call, as ``failed: <detail>`` (never "failed to
        submit", which would invite a second submission)."""
        now = time.time() if now is None else now
        with self.session() as session:
            row = session.scalar(select(RequestRow).where(RequestRow.id == job.request_id).with_for_update())
            if row is None or row.lease_owner != job.lease_owner:
                return False
            self._change(session, row, State.FAILED, f"failed: {detail}", detail, now)
            row.operation = row.next_poll_at = None
            row.lease_owner = row.lease_expires = row.submitting_since = None
            row.updated_at = now
        return True

    def _change(self, session: Session, row: RequestRow, state: State, status: str, detail: str, now: float) -> None:
        """Set state and status; a new status gets a history row and an outbox row."""
        row.detail = detail
        if row.state == state.value and row.status == status:
            return
        row.state = state.value
        if row.status != status:
            row.status = status
            session.add(HistoryRow(request_id=row.id, at=now, state=state.value, status=status))
            session.add(OutboxRow(request_id=row.id, kind="status", body={"new_status": status}, created_at=now, attempts=0, next_attempt_at=now))

    # -- the outbox's side -------------------------------------------------------------------

    def claim_deliveries(self, owner: str, limit: int, lease: float, now: float | None = None) -> list[Delivery]:
        """Lease the oldest undelivered row of up to ``limit`` requests whose turn it is."""
        now = time.time() if now is None else now
        first_pending = (
            select(func.min(OutboxRow.id))
            .where(OutboxRow.delivered_at.is_(None), OutboxRow.dead.is_(False))
            .group_by(OutboxRow.request_id)
            .scalar_subquery()
        )
        due = (
            select(OutboxRow.id)
            .where(
                OutboxRow.id.in_(first_pending),
                OutboxRow.next_attempt_at <= now,
                or_(OutboxRow.lease_expires.is_(None), OutboxRow.lease_expires < now),
            )
            .order_by(OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.session() as session:
            ids = list(session.scalars(due))
            if not ids:
                return []
            session.execute(update(OutboxRow).where(OutboxRow.id.in_(ids)).values(lease_owner=owner, lease_expires=now + lease))
            rows = session.execute(select(OutboxRow, RequestRow).join(RequestRow, OutboxRow.request_id == RequestRow.id).where(OutboxRow.id.in_(ids)).order_by(OutboxRow.id)).all()
            return [
                Delivery(o.id, o.request_id, o.kind, o.body, o.attempts, r.followup_request_id, r.obj_id, r.allocation_id)
                for o, r in rows
            ]

    def delivered(self, delivery: Delivery, now: float | None = None) -> None:
        with self.session() as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == delivery.id)
                .values(delivered_at=time.time() if now is None else now, attempts=OutboxRow.attempts + 1, lease_owner=None, lease_expires=None, last_error=None)
            )

    def retry_delivery(self, delivery: Delivery, error: str, at: float, *, dead: bool = False) -> None:
        """Delivery failed: try again at ``at``, or (``dead``) never, keeping the error."""
        with self.session() as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == delivery.id)
                .values(next_attempt_at=at, attempts=OutboxRow.attempts + 1, dead=dead, last_error=error[:1000], lease_owner=None, lease_expires=None)
            )

    def requeue_dead(self, now: float | None = None) -> int:
        """Try every dead message again (after the cause, e.g. a missing ACL, was fixed)."""
        with self.session() as session:
            result = session.execute(
                update(OutboxRow).where(OutboxRow.dead.is_(True), OutboxRow.delivered_at.is_(None)).values(dead=False, next_attempt_at=time.time() if now is None else now)
            )
            return result.rowcount

    # -- health ------------------------------------------------------------------------------

    def metrics(self, now: float | None = None) -> dict[str, Any]:
        """Queue depth by facility and state, the oldest overdue job, the outbox backlog."""
        now = time.time() if now is None else now
        with self.session() as session:
            depth: dict[str, dict[str, int]] = {}
            for facility, state, count in session.execute(select(RequestRow.facility, RequestRow.state, func.count()).group_by(RequestRow.facility, RequestRow.state)):
                depth.setdefault(facility, {})[state] = count
            due, oldest_due = session.execute(select(func.count(), func.min(RequestRow.next_poll_at)).where(RequestRow.next_poll_at <= now)).one()
            backlog = session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.delivered_at.is_(None), OutboxRow.dead.is_(False)))
            oldest_undelivered = session.scalar(select(func.min(OutboxRow.created_at)).where(OutboxRow.delivered_at.is_(None), OutboxRow.dead.is_(False)))
            dead = session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.dead.is_(True)))
        return {
            "requests": depth,
            "due": due,
            "oldest_due_seconds": None if oldest_due is None else round(now - oldest_due, 3),
            "outbox_backlog": backlog,
            "outbox_oldest_seconds": None if oldest_undelivered is None else round(now - oldest_undelivered, 3),
            "outbox_dead": dead,
        }
