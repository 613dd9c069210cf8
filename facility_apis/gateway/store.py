"""The gateway's persistence: SQLite (embedded default) or PostgreSQL, through SQLAlchemy 2.0.

Every state change is written in one transaction with the history row, the redacted
transactions and the outbox rows it owes SkyPortal. Claims use ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several workers share one queue; SQLite serialises writers with
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from sqlalchemy import Connection, Engine, create_engine, event, func, insert, inspect, or_, select, update
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


REQUESTS, ALLOCATIONS = RequestRow.__table__, AllocationRow.__table__
_ALLOCATION_FIELDS = ("pi", "proposal_id", "instrument_id", "instrument_name", "filters", "group_ids")
HISTORY, TRANSACTIONS, OUTBOX = HistoryRow.__table__, TransactionRow.__table__, OutboxRow.__table__


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
        # SQLite has one writer at a time and every transaction here takes the write lock: this
        # process's threads queue on a lock rather than in SQLite's busy handler, which sleeps
        # (up to 100 ms) while the lock may already be free.
        self._serial = threading.Lock() if self.engine.dialect.name == "sqlite" else contextlib.nullcontext()
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

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session in a transaction (the admin paths: clients, allocations)."""
        with self._serial, self._sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection in a transaction (the queue's hot paths: no ORM unit of work)."""
        with self._serial, self.engine.begin() as connection:
            yield connection

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
        return self._opened(row.id, row.sealed_altdata, {name: getattr(row, name) for name in _ALLOCATION_FIELDS})

    def _opened(self, allocation_id: int, sealed_altdata: str, fields: Mapping[str, Any]) -> Allocation:
        """An ``Allocation`` with its credentials opened; ``SealError`` when they do not open."""
        return Allocation(
            allocation_id,
            self._box.open(sealed_altdata, _context(allocation_id)),
            pi=fields["pi"],
            proposal_id=fields["proposal_id"],
            instrument_id=fields["instrument_id"],
            instrument_name=fields["instrument_name"],
            filters=tuple(fields["filters"] or ()),
            group_ids=tuple(fields["group_ids"] or ()),
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
        with self.connection() as connection:
            row = self._owned(connection, request_id, owner_id)
            history = connection.execute(select(HISTORY).where(HISTORY.c.request_id == request_id).order_by(HISTORY.c.id)).all()
            transactions = connection.execute(select(TRANSACTIONS).where(TRANSACTIONS.c.request_id == request_id).order_by(TRANSACTIONS.c.id)).all()
            outbox = connection.execute(select(OUTBOX).where(OUTBOX.c.request_id == request_id).order_by(OUTBOX.c.id)).all()
        shown = ("id", "allocation_id", "facility", "followup_request_id", "obj_id", "ra", "dec", "payload", "requester", "remote_id")
        return {
            **{name: getattr(row, name) for name in shown},
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

    def facility_of(self, request_id: int, owner_id: int | None = None) -> str:
        """The facility a request is on (``NotFound`` as for ``request_view``)."""
        with self.connection() as connection:
            return self._owned(connection, request_id, owner_id).facility

    def list_requests(self, owner_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The newest requests, one summary line each."""
        columns = (REQUESTS.c.id, REQUESTS.c.facility, REQUESTS.c.obj_id, REQUESTS.c.state, REQUESTS.c.status, REQUESTS.c.updated_at)
        query = select(*columns).order_by(REQUESTS.c.id.desc()).limit(limit)
        if owner_id is not None:
            query = query.join(ALLOCATIONS, ALLOCATIONS.c.id == REQUESTS.c.allocation_id).where(ALLOCATIONS.c.owner_id == owner_id)
        with self.connection() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    @staticmethod
    def _owned(connection: Connection, request_id: int, owner_id: int | None) -> Any:
        """The request's row, if ``owner_id`` (when given) owns its allocation; else ``NotFound``."""
        query = select(REQUESTS, ALLOCATIONS.c.owner_id).join(ALLOCATIONS, ALLOCATIONS.c.id == REQUESTS.c.allocation_id).where(REQUESTS.c.id == request_id)
        row = connection.execute(query).one_or_none()
        if row is None or (owner_id is not None and row.owner_id != owner_id):
            raise NotFound(f"no follow-up request {request_id}")
        return row

    def cancel(self, request_id: int, owner_id: int | None = None, *, can_delete: bool, now: float | None = None) -> str:
        """Ask for a request to be cancelled; return its state afterwards.

        A call in flight (a submission, say) lands first and the cancel follows it. Then: not
        held by the facility, or a facility that cannot delete: deleted here at once. Held: a
        ``delete`` call is due now. Already finished: ``Conflict``.
        """
        now = time.time() if now is None else now
        with self.connection() as connection:
            row = self._owned(connection, request_id, owner_id)
            state = State(row.state)
            if state.terminal or row.cancel_requested or (row.operation is None and state is not State.PENDING):
                raise Conflict(f"follow-up request {request_id} is already {row.status!r}")
            values: dict[str, Any] = {"cancel_requested": True, "updated_at": now}
            if row.lease_owner is None or (row.lease_expires or 0.0) < now:
                values.update(self._carry_out_cancel(connection, request_id, row.remote_id, row.status, can_delete, now))
            connection.execute(update(REQUESTS).where(REQUESTS.c.id == request_id).values(**values))
            return values.get("state", row.state)

    def _carry_out_cancel(self, connection: Connection, request_id: int, remote_id: str | None, status: str, can_delete: bool, now: float) -> dict[str, Any]:
        """The row's new values for a cancel carried out now."""
        if remote_id is not None and can_delete:
            return {"operation": "delete", "next_poll_at": now}
        detail = "cancelled before the facility held it" if remote_id is None else "cancelled here; the facility offers no way to delete it"
        values = self._change(connection, request_id, status, State.DELETED, "deleted", detail, now)
        values.update(operation=None, next_poll_at=None)
        return values

    def poke(self, request_id: int, now: float | None = None) -> bool:
        """Make a followed request due now (a facility callback said it changed)."""
        now = time.time() if now is None else now
        with self.connection() as connection:
            result = connection.execute(
                update(RequestRow)
                .where(RequestRow.id == request_id, RequestRow.operation == "get")
                .values(next_poll_at=func.least(RequestRow.next_poll_at, now) if self.engine.dialect.name == "postgresql" else func.min(RequestRow.next_poll_at, now))
            )
            return result.rowcount == 1

    def set_followup_request_id(self, request_id: int, followup_request_id: int) -> bool:
        """Link a request to SkyPortal's id unless another request holds that id; False if so."""
        taken = select(RequestRow.id).where(RequestRow.followup_request_id == followup_request_id).exists()
        with self.connection() as connection:
            result = connection.execute(
                update(RequestRow).where(RequestRow.id == request_id, ~taken).values(followup_request_id=followup_request_id)
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
            select(REQUESTS.c.id)
            .where(REQUESTS.c.next_poll_at <= now, or_(REQUESTS.c.lease_expires.is_(None), REQUESTS.c.lease_expires < now))
            .order_by(REQUESTS.c.next_poll_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if facilities is not None:
            due = due.where(REQUESTS.c.facility.in_(list(facilities)))
        jobs: list[Job] = []
        with self.connection() as connection:
            ids = list(connection.scalars(due))
            if not ids:
                return []
            connection.execute(update(REQUESTS).where(REQUESTS.c.id.in_(ids)).values(lease_owner=owner, lease_expires=now + lease))
            sealed = ALLOCATIONS.c.sealed_altdata.label("sealed_altdata")
            rows = connection.execute(
                select(REQUESTS, sealed, *(ALLOCATIONS.c[name].label(f"allocation_{name}") for name in _ALLOCATION_FIELDS))
                .join(ALLOCATIONS, ALLOCATIONS.c.id == REQUESTS.c.allocation_id)
                .where(REQUESTS.c.id.in_(ids))
                .order_by(REQUESTS.c.next_poll_at)
            ).all()
            allocations: dict[int, Allocation | SealError] = {}
            for row in rows:
                if row.allocation_id not in allocations:
                    fields = {name: getattr(row, f"allocation_{name}") for name in _ALLOCATION_FIELDS}
                    try:
                        allocations[row.allocation_id] = self._opened(row.allocation_id, row.sealed_altdata, fields)
                    except SealError as exc:
                        allocations[row.allocation_id] = exc
                allocation = allocations[row.allocation_id]
                if isinstance(allocation, SealError):
                    # One allocation's unreadable credentials must not stall everyone else's requests.
                    values = self._change(connection, row.id, row.status, State.FAILED, f"failed: {allocation}", str(allocation), now)
                    values.update(operation=None, next_poll_at=None, lease_owner=None, lease_expires=None)
                    connection.execute(update(REQUESTS).where(REQUESTS.c.id == row.id).values(**values))
                    continue
                request = FollowupRequest(row.id, Target(row.obj_id, row.ra, row.dec), allocation, row.payload, requester=row.requester, remote_id=row.remote_id)
                interrupted = row.operation == "submit" and row.submitting_since is not None
                jobs.append(Job(row.id, row.facility, row.operation, request, owner, interrupted))
        return jobs

    def defer(self, job: Job, until: float | None = None) -> None:
        """Give a job back without calling the facility, due again at ``until`` (or as it was)."""
        values: dict[str, Any] = {"lease_owner": None, "lease_expires": None}
        if until is not None:
            values["next_poll_at"] = until
        with self.connection() as connection:
            connection.execute(update(RequestRow).where(RequestRow.id == job.request_id, RequestRow.lease_owner == job.lease_owner).values(**values))

    def start(self, job: Job, lease: float, now: float | None = None) -> bool:
        """The facility call is about to leave: renew the lease from now and, for a submission,
        mark it (committed before it is sent). False if the lease was lost meanwhile."""
        now = time.time() if now is None else now
        values: dict[str, Any] = {"lease_expires": now + lease}
        if job.operation == "submit":
            values["submitting_since"] = now
        with self.connection() as connection:
            result = connection.execute(
                update(RequestRow).where(RequestRow.id == job.request_id, RequestRow.lease_owner == job.lease_owner).values(**values)
            )
            return result.rowcount == 1

    def next_due(self) -> float | None:
        """When the earliest request falls due (None when nothing is owed)."""
        with self.connection() as connection:
            return connection.scalar(select(func.min(REQUESTS.c.next_poll_at)))

    def record(self, job: Job, outcome: Outcome, *, can_poll: bool, can_delete: bool = False, now: float | None = None) -> bool:
        """Apply an outcome: state, history, transactions and outbox in one transaction.

        Returns False (and writes nothing) when the lease was lost meanwhile: another worker
        owns the request now and its result wins.
        """
        now = time.time() if now is None else now
        # Everything that needs no row is built before the transaction: SQLite has one writer.
        photometry = outcome.photometry if outcome.photometry is not None and len(outcome.photometry) else None
        allocation = job.request.allocation
        if photometry is not None and allocation.instrument_id is None:
            photometry = None
            outcome = Outcome(State.FAILED, "photometry arrived but the allocation names no instrument_id", outcome.remote_id, transactions=outcome.transactions)
        body = photometry.to_skyportal(job.request.target.id, allocation.instrument_id, allocation.group_ids) if photometry is not None else None
        records = [{"request_id": job.request_id, "at": now, "operation": job.operation, "record": t.as_dict()} for t in outcome.transactions]
        with self.connection() as connection:
            row = self._leased(connection, job)
            if row is None:
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
                schedule=self.schedule,
            )
            if records:
                connection.execute(insert(TRANSACTIONS), records)
            if body is not None:
                self._owe(connection, job.request_id, "photometry", body, now)
            remote_id = outcome.remote_id or row.remote_id
            values = self._change(connection, job.request_id, row.status, step.state, step.status, step.detail, now)
            values.update(
                remote_id=remote_id, operation=step.operation, next_poll_at=step.next_poll_at, failures=step.failures,
                attempts=REQUESTS.c.attempts + 1, lease_owner=None, lease_expires=None, submitting_since=None, updated_at=now,
            )  # fmt: skip
            if row.cancel_requested and job.operation != "delete" and step.operation is not None:
                # The cancel was asked while this call was out: carry it out on what it returned.
                values.update(self._carry_out_cancel(connection, job.request_id, remote_id, step.status, can_delete, now))
            connection.execute(update(REQUESTS).where(REQUESTS.c.id == job.request_id).values(**values))
        return True

    def abandon(self, job: Job, detail: str, now: float | None = None) -> bool:
        """End a request without a facility call, as ``failed: <detail>`` (never "failed to
        submit", which would invite a second submission)."""
        now = time.time() if now is None else now
        with self.connection() as connection:
            row = self._leased(connection, job)
            if row is None:
                return False
            values = self._change(connection, job.request_id, row.status, State.FAILED, f"failed: {detail}", detail, now)
            values.update(operation=None, next_poll_at=None, lease_owner=None, lease_expires=None, submitting_since=None, updated_at=now)
            connection.execute(update(REQUESTS).where(REQUESTS.c.id == job.request_id).values(**values))
        return True

    @staticmethod
    def _leased(connection: Connection, job: Job) -> Any:
        """The job's row, locked, if its lease is still the job's; else None."""
        row = connection.execute(select(REQUESTS).where(REQUESTS.c.id == job.request_id).with_for_update()).one_or_none()
        return row if row is not None and row.lease_owner == job.lease_owner else None

    def _change(self, connection: Connection, request_id: int, status: str, new_state: State, new_status: str, detail: str, now: float) -> dict[str, Any]:
        """The row's new values for a change of state; a new status also writes its history row
        and the outbox row that owes it to SkyPortal."""
        if new_status != status:
            connection.execute(insert(HISTORY).values(request_id=request_id, at=now, state=new_state.value, status=new_status))
            self._owe(connection, request_id, "status", {"new_status": new_status}, now)
        return {"state": new_state.value, "status": new_status, "detail": detail}

    @staticmethod
    def _owe(connection: Connection, request_id: int, kind: str, body: dict[str, Any], now: float) -> None:
        """One outbox row; rows are inserted one by one so that their ids keep the messages' order."""
        connection.execute(insert(OUTBOX).values(request_id=request_id, kind=kind, body=body, created_at=now, attempts=0, next_attempt_at=now, dead=False))

    # -- the outbox's side -------------------------------------------------------------------

    def claim_deliveries(self, owner: str, limit: int, lease: float, now: float | None = None) -> list[Delivery]:
        """Lease the oldest undelivered row of up to ``limit`` requests whose turn it is."""
        now = time.time() if now is None else now
        first_pending = (
            select(func.min(OUTBOX.c.id)).where(OUTBOX.c.delivered_at.is_(None), OUTBOX.c.dead.is_(False)).group_by(OUTBOX.c.request_id).scalar_subquery()
        )
        due = (
            select(OUTBOX.c.id)
            .where(OUTBOX.c.id.in_(first_pending), OUTBOX.c.next_attempt_at <= now, or_(OUTBOX.c.lease_expires.is_(None), OUTBOX.c.lease_expires < now))
            .order_by(OUTBOX.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.connection() as connection:
            ids = list(connection.scalars(due))
            if not ids:
                return []
            connection.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids)).values(lease_owner=owner, lease_expires=now + lease))
            rows = connection.execute(
                select(OUTBOX.c.id, OUTBOX.c.request_id, OUTBOX.c.kind, OUTBOX.c.body, OUTBOX.c.attempts, REQUESTS.c.followup_request_id, REQUESTS.c.obj_id, REQUESTS.c.allocation_id)
                .join(REQUESTS, OUTBOX.c.request_id == REQUESTS.c.id)
                .where(OUTBOX.c.id.in_(ids))
                .order_by(OUTBOX.c.id)
            ).all()
        return [Delivery(*row) for row in rows]

    def delivered(self, deliveries: Sequence[Delivery], now: float | None = None) -> None:
        """Mark messages SkyPortal acknowledged, in one statement."""
        if not deliveries:
            return
        with self.connection() as connection:
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_([delivery.id for delivery in deliveries]))
                .values(delivered_at=time.time() if now is None else now, attempts=OUTBOX.c.attempts + 1, lease_owner=None, lease_expires=None, last_error=None)
            )

    def retry_delivery(self, delivery: Delivery, error: str, at: float, *, dead: bool = False) -> None:
        """Delivery failed: try again at ``at``, or (``dead``) never, keeping the error."""
        with self.connection() as connection:
            connection.execute(
                update(OutboxRow)
                .where(OutboxRow.id == delivery.id)
                .values(next_attempt_at=at, attempts=OutboxRow.attempts + 1, dead=dead, last_error=error[:1000], lease_owner=None, lease_expires=None)
            )

    def requeue_dead(self, now: float | None = None) -> int:
        """Try every dead message again (after the cause, e.g. a missing ACL, was fixed)."""
        with self.connection() as connection:
            result = connection.execute(
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
