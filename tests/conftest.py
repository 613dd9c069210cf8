"""Gateway fixtures: a store on SQLite (a file in tmp_path) and on PostgreSQL (the real server on
127.0.0.1:5432, one fresh schema per test). Under CI=true an unreachable PostgreSQL fails the
tests instead of skipping them."""

from __future__ import annotations

import os
import uuid

import pytest
from gateway_support import follow_and_deliver

from facility_apis.gateway.crypto import SecretBox, generate_key
from facility_apis.gateway.policy import Schedule
from facility_apis.gateway.store import Store
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing.network import loopback_egress

POSTGRES_URL = os.environ.get("FACILITY_APIS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FAST = Schedule(default_poll=0.05, backoff_base=0.05, backoff_cap=0.5, horizon=86400.0)


class PostgresSchema:
    """A schema of its own on the test server, dropped afterwards."""

    def __init__(self) -> None:
        import sqlalchemy

        self.name = f"t_{uuid.uuid4().hex[:12]}"
        try:
            self._admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
            with self._admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE SCHEMA "{self.name}"')
        except Exception as exc:  # noqa: BLE001 - any failure to reach the server
            message = f"PostgreSQL at {POSTGRES_URL} is not reachable: {type(exc).__name__}"
            if os.environ.get("CI"):
                pytest.fail(message + " (required in CI)")
            pytest.skip(message)

    @property
    def options(self) -> dict:
        return {"connect_args": {"options": f"-csearch_path={self.name}"}}

    def drop(self) -> None:
        with self._admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{self.name}" CASCADE')
        self._admin.dispose()


@pytest.fixture
def postgres_schema():
    schema = PostgresSchema()
    yield schema
    schema.drop()


@pytest.fixture
def fast_schedule() -> Schedule:
    return FAST


@pytest.fixture
def postgres_url() -> str:
    return POSTGRES_URL


@pytest.fixture
def secret_key() -> str:
    return generate_key()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    """``(url, engine options)`` of an empty database, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}", {}
    else:
        schema = PostgresSchema()
        yield POSTGRES_URL, schema.options
        schema.drop()


@pytest.fixture
def gateway_store(database, secret_key):
    url, options = database
    store = Store(url, SecretBox(secret_key), schedule=FAST, **options)
    yield store
    store.close()


@pytest.fixture
def follow_through():
    """``run(store, atlas_url, skyportal_url, token)``: a worker follows every request against the
    ATLAS emulator, then the outbox delivers everything; True when both finished in time."""

    def run(store: Store, atlas_url: str, skyportal_url: str, token: str) -> bool:
        settings = WorkerSettings(idle=0.05, egress=loopback_egress(atlas_url))
        worker = Worker(store, facility_config={"atlas": {"base_url": atlas_url, "poll_interval": 0.05}}, settings=settings)
        return follow_and_deliver(worker, store, skyportal_url, token)

    return run


@pytest.fixture
def fakes():
    """SkyPortal's models replaced by the fakes of ``facility_apis.testing.skyportal_models`` (the
    fake module registry, yielded), and the adapter's settings forgotten afterwards."""
    from facility_apis.skyportal import reset
    from facility_apis.testing.skyportal_models import use_fake_models

    with use_fake_models() as models:
        yield models
    reset()
