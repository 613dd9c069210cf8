"""The gateway's database: SQLite (embedded default) or PostgreSQL, through SQLAlchemy 2.0.

Every transaction that may write takes the write lock at once: SQLite starts it with ``BEGIN
IMMEDIATE`` (so a read that later writes cannot deadlock) and this process's threads take turns
before it, a write an API client waits on first; PostgreSQL runs them concurrently. A transaction that only reads (``reading()``)
takes no lock: on SQLite in WAL mode it reads a snapshot while a writer works, so answering an
API call's reads never waits for the worker's writes. The schema version is checked on opening.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ...core.errors import ConfigurationError
from ...core.json_text import encode_text
from ..models import SCHEMA_VERSION, Base, Meta


def _reason(exc: BaseException) -> str:
    """What went wrong, in one line: the driver's own message without SQLAlchemy's wrapping."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:500]


def _private_file(path: str | None) -> None:
    """Create the SQLite file readable by its owner only (its -wal and -shm files follow its mode)."""
    if path and path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


#: The execution option marking a connection whose transaction only reads (``Database.reading``).
_READ_ONLY = "facility_apis_read_only"


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
        # Take the write lock up front: a read that later writes cannot then deadlock. A
        # transaction that only reads (``Database.reading``) reads a WAL snapshot instead.
        connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")


class _WriterTurns:
    """SQLite's one writer, taken in turns by this process's threads. A thread a client is
    waiting on (``for_client``) goes before the background loops' writes waiting at the time:
    a request accepted over HTTP waits for at most the transaction under way, not for the
    worker's queue of claims and recorded outcomes."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._busy = False
        self._clients_waiting = 0

    @contextlib.contextmanager
    def turn(self, for_client: bool) -> Iterator[None]:
        with self._condition:
            self._clients_waiting += for_client
            try:
                while self._busy or (not for_client and self._clients_waiting):
                    self._condition.wait()
            finally:
                self._clients_waiting -= for_client
            self._busy = True
        try:
            yield
        finally:
            with self._condition:
                self._busy = False
                self._condition.notify_all()


class Database:
    """An engine on ``database_url`` (``engine_options`` go to ``create_engine``; JSON columns
    are written by ``json_text``, read by the standard library) and its transactions. With
    ``create``, an empty database gets the tables; otherwise, and for a database of another
    schema version or with foreign tables of the same names, opening raises
    ``ConfigurationError``."""

    def __init__(self, database_url: str, *, create: bool = True, **engine_options: Any):
        try:
            self.engine = create_engine(database_url, **({"json_serializer": encode_text} | engine_options))
        except (ArgumentError, ImportError, ValueError) as exc:
            raise ConfigurationError(f"the database URL is not usable: {_reason(exc)}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time and every transaction here but ``reading()`` takes the
        # write lock: this process's threads queue for turns rather than in SQLite's busy
        # handler, which sleeps (up to 100 ms) while the lock may already be free.
        self._turns = _WriterTurns() if self.dialect == "sqlite" else None
        try:
            if self.dialect == "sqlite":
                _private_file(self.engine.url.database)
                _configure_sqlite(self.engine)
            self._check_schema(create)
        except (SQLAlchemyError, OSError) as exc:
            self.engine.dispose()
            raise ConfigurationError(f"cannot open the database {self.display_url}: {_reason(exc)}") from None

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        """The database URL with its password masked, as it may be shown or logged."""
        return self.engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"

    def close(self) -> None:
        self.engine.dispose()

    def _writer(self, for_client: bool) -> contextlib.AbstractContextManager[None]:
        """This process's turn at SQLite's one writer (PostgreSQL: no turns)."""
        return self._turns.turn(for_client) if self._turns is not None else contextlib.nullcontext()

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session in a transaction (the admin paths: clients, allocations)."""
        with self._writer(False), self._sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def connection(self, *, for_client: bool = False) -> Iterator[Connection]:
        """A Core connection in a transaction (the queue's hot paths: no ORM unit of work).
        ``for_client``: an API call is waiting on it; on SQLite it takes the writer before the
        background loops' transactions waiting then."""
        with self._writer(for_client), self.engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A Core connection in a transaction that only reads (a write in it is an error): it
        takes no write lock, so it neither waits for a writer nor holds one up (SQLite reads a
        snapshot of the last commit; PostgreSQL's reads never waited)."""
        with self.engine.connect() as connection:
            connection.execution_options(**{_READ_ONLY: True})
            if self.dialect == "sqlite":
                with connection.begin():
                    connection.exec_driver_sql("PRAGMA query_only=ON")
                    try:
                        yield connection
                    finally:
                        connection.exec_driver_sql("PRAGMA query_only=OFF")
            else:
                with connection.begin():
                    connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                    yield connection

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
