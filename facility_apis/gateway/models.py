"""The gateway's tables (SQLAlchemy 2.0). Times are UNIX seconds (floats): portable and cheap to
compare on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, Double, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Bumped whenever a table changes; the store refuses a database of another version. 2 added
#: ``requests.cursor`` and ``requests.frames``; 3 the ``facility_accounts`` table and an index on
#: ``requests.lease_expires`` (see docs/gateway.md, Upgrading).
SCHEMA_VERSION = 4


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON, float: Double}


class Meta(Base):
    """Key/value facts about the database itself (``schema_version``)."""

    __tablename__ = "gateway_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class Client(Base):
    """Who may call the API: a name and the SHA-256 of its token (the token itself is never kept)."""

    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float]


class AllocationRow(Base):
    """An allocation; ``sealed_altdata`` is the credentials, encrypted (see ``crypto.py``).

    ``id`` is chosen by the admin: SkyPortal's allocation id, so that SkyPortal's GENERIC
    forwarding body (which names SkyPortal's allocation) finds it.
    """

    __tablename__ = "allocations"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    facility: Mapped[str] = mapped_column(String(64))
    sealed_altdata: Mapped[str] = mapped_column(Text)
    pi: Mapped[str | None] = mapped_column(String(256))
    proposal_id: Mapped[str | None] = mapped_column(String(256))
    instrument_id: Mapped[int | None]
    instrument_name: Mapped[str | None] = mapped_column(String(256))
    filters: Mapped[list[Any]]
    group_ids: Mapped[list[Any]]
    created_at: Mapped[float]
    updated_at: Mapped[float]


class RequestRow(Base):
    """A follow-up request and where the gateway stands with it.

    ``operation`` is the next facility call owed (submit, get, update, delete) and ``next_poll_at`` when it
    is due; both are null when nothing more is owed. A worker holds the row while
    ``lease_owner``/``lease_expires`` say so; an expired lease makes it claimable again.
    ``frames`` is the newest list of data files the facility gave (``Frame.as_dict()`` each), null
    until it gave one.
    """

    __tablename__ = "requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id"), index=True)
    facility: Mapped[str] = mapped_column(String(64))
    followup_request_id: Mapped[int | None] = mapped_column(index=True)
    obj_id: Mapped[str] = mapped_column(String(256))
    ra: Mapped[float]
    dec: Mapped[float]
    payload: Mapped[dict[str, Any]]
    requester: Mapped[str | None] = mapped_column(String(256))
    remote_id: Mapped[str | None] = mapped_column(Text)
    #: The facility's newest ``Outcome.cursor``, handed back to it on each later call (schema 2).
    cursor: Mapped[str | None] = mapped_column(Text)
    #: The newest list of data files the facility named for the request (``Outcome.frames``; schema 2).
    frames: Mapped[list[Any] | None]
    state: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="")
    operation: Mapped[str | None] = mapped_column(String(16))
    next_poll_at: Mapped[float | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    give_up_at: Mapped[float]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires: Mapped[float | None]
    #: Set just before a submission leaves; a claim that finds it set knows a worker died while
    #: submitting, and never sends the request a second time.
    submitting_since: Mapped[float | None]
    #: The client asked for a cancel while a call was out: it is carried out when that call lands.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float]
    updated_at: Mapped[float]

    __table_args__ = (Index("ix_requests_due", "next_poll_at"), Index("ix_requests_leased", "lease_expires"))


class FacilityAccountRow(Base):
    """How one facility account is paced, shared by every worker on the database (schema 3).

    ``account`` is an allocation id as text (the credentials the facility counts calls against),
    or ``""`` for an allowance all the facility's accounts share. The calls in flight are the account's requests under a live lease (see
    ``store/accounts.py``); this row holds what leases cannot: ``next_start``, the earliest time
    the next call may start (``min_interval`` spacing), and ``paused_until``, the end of the
    latest throttle pause the facility asked for, with its ``pause_detail`` and a count of
    ``throttles``. Written only in the claim and record transactions, under the row's lock.
    """

    __tablename__ = "facility_accounts"
    facility: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_start: Mapped[float] = mapped_column(default=0.0)
    paused_until: Mapped[float | None]
    pause_detail: Mapped[str | None] = mapped_column(Text)
    throttles: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[float]


class AccountCallRow(Base):
    """The start of a call an account made under a rate (schema 4): the sliding window the claims
    count (``store/accounts.py``). ``scope`` is ``read`` or ``write`` (``pacing.SCOPES``);
    ``started_at`` the time the claim gave the call (UNIX seconds). Rows older than the window are
    deleted by the next claim of the account."""

    __tablename__ = "account_calls"
    __table_args__ = (Index("ix_account_calls_window", "facility", "account", "scope", "started_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    facility: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[float]


class HistoryRow(Base):
    """One status change of a request."""

    __tablename__ = "request_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    at: Mapped[float]
    state: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(Text)


class TransactionRow(Base):
    """One HTTP exchange with the facility, stored already redacted."""

    __tablename__ = "transactions"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    at: Mapped[float]
    operation: Mapped[str] = mapped_column(String(16))
    record: Mapped[dict[str, Any]]


class OutboxRow(Base):
    """A message owed to SkyPortal: ``kind`` is ``status`` (``body`` holds ``new_status``) or
    ``photometry`` (``body`` is the ``PUT /api/photometry`` body). Rows of one request are
    delivered in ``id`` order; ``dead`` rows were refused for good and are kept for the admin."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]]
    created_at: Mapped[float]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float]
    delivered_at: Mapped[float | None]
    dead: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires: Mapped[float | None]

    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),)


#: The Core tables of the rows above, for the store's hot paths (no ORM unit of work).
CLIENTS, ALLOCATIONS, REQUESTS, HISTORY, TRANSACTIONS, OUTBOX, ACCOUNTS, ACCOUNT_CALLS = (
    Client.__table__,
    AllocationRow.__table__,
    RequestRow.__table__,
    HistoryRow.__table__,
    TransactionRow.__table__,
    OutboxRow.__table__,
    FacilityAccountRow.__table__,
    AccountCallRow.__table__,
)
