"""The gateway under faults: database connections dropped mid-claim and mid-save (PostgreSQL
``pg_terminate_backend`` on the test's own connections), a full disk under SQLite (a small tmpfs
where the machine lets us mount one, else SQLite's own "database or disk is full" error raised
on every write), a wrong key, the facility and SkyPortal down. Each run asserts that no request
is lost, none is stuck, and none failed that should have waited.

The kit: ``Killer`` (PostgreSQL), ``FullDisk`` (SQLite), ``run_in_background`` (the real worker
and outbox loops, in threads, as ``serve`` runs them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import requests
import sqlalchemy
from sqlalchemy import event

from facility_apis.cli import main
from facility_apis.core.interface import Target
from facility_apis.gateway.crypto import KEY_ENV, SecretBox, generate_key
from facility_apis.gateway.loops import Backoff, Supervisor
from facility_apis.gateway.outbox import Deliverer, DeliverySettings
from facility_apis.gateway.policy import Schedule
from facility_apis.gateway.store import Store
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing import ATLASEmulator, SkyPortalStub
from facility_apis.testing.network import loopback_egress

POSTGRES_URL = os.environ.get("FACILITY_APIS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ATLAS_TOKEN = "faults-atlas-token-0c1d"
SP_TOKEN = "faults-skyportal-token-9e2a"
SCHEDULE = Schedule(default_poll=0.05, backoff_base=0.05, backoff_cap=0.5, horizon=86400.0)
QUICK_DELIVERY = DeliverySettings(backoff_base=0.05, backoff_cap=0.2, idle=0.05)


# -- the kit ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """``main(["worker", ...])`` run in-process installs the stderr log handler: take it away."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


class Killer:
    """Drops the connections of one store on PostgreSQL, and only those: they carry an
    ``application_name`` of their own, and the server ends their backends with
    ``pg_terminate_backend`` from a separate admin connection.

    ``before(pattern, times)`` terminates a connection's own backend just before it runs a
    statement matching ``pattern`` (mid-claim, mid-save), ``times`` times; ``all()`` ends every
    connection the store holds now.
    """

    def __init__(self, schema: str):
        self.name = f"gw-faults-{uuid.uuid4().hex[:10]}"
        self.options = {"connect_args": {"options": f"-csearch_path={schema}", "application_name": self.name}}
        self._admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        self.killed: list[str] = []
        self._lock = threading.Lock()

    def attach(self, store: Store) -> None:
        self._store = store

    def before(self, pattern: str, times: int = 1) -> None:
        remaining = [times]
        compiled = re.compile(pattern, re.IGNORECASE | re.DOTALL)

        def hook(connection, cursor, statement, parameters, context, executemany):
            with self._lock:
                if remaining[0] <= 0 or not compiled.search(statement):
                    return
                remaining[0] -= 1
                self.killed.append(statement.split()[0])
            self._terminate(f"pid = {connection.connection.dbapi_connection.info.backend_pid}")

        event.listen(self._store.database.engine, "before_cursor_execute", hook)

    def all(self) -> int:
        return self._terminate("pid <> pg_backend_pid()")

    def _terminate(self, which: str) -> int:
        with self._admin.connect() as connection:
            query = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name AND {which}"
            return len(connection.execute(sqlalchemy.text(query), {"name": self.name}).all())

    def close(self) -> None:
        self._admin.dispose()


@pytest.fixture
def killer(postgres_schema):
    kit = Killer(postgres_schema.name)
    yield kit
    kit.close()


class FullDisk:
    """A data directory whose disk can be filled and freed.

    Where the test may mount (root, as in CI), it is a 4 MiB tmpfs, filled with a file until
    ``ENOSPC``; elsewhere every write statement raises SQLite's own ``database or disk is full``
    (``SQLITE_FULL``) while ``full``.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir()
        self.mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True).returncode == 0
        self.full = False

    @property
    def url(self) -> str:
        return f"sqlite:///{self.folder / 'gateway.db'}"

    def attach(self, store: Store) -> None:
        if self.mounted:
            return

        def hook(connection, cursor, statement, parameters, context, executemany):
            if self.full and not statement.lstrip().upper().startswith(("SELECT", "PRAGMA")):
                raise sqlite3.OperationalError("database or disk is full")

        event.listen(store.database.engine, "before_cursor_execute", hook)

    def fill(self) -> None:
        self.full = True
        if self.mounted:
            descriptor = os.open(self.folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
            with contextlib.suppress(OSError):
                for size in (1 << 16, 512):
                    while True:
                        os.write(descriptor, b"\0" * size)
            os.close(descriptor)

    def free(self) -> None:
        self.full = False
        if self.mounted:
            (self.folder / "filler").unlink()

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], check=False)


@pytest.fixture
def full_disk(tmp_path):
    disk = FullDisk(tmp_path / "disk")
    yield disk
    disk.close()


@pytest.fixture
def atlas():
    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, queue_time=0.05, run_time=0.05, rows=4) as emulator:
        yield emulator


@pytest.fixture
def skyportal():
    with SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as stub:
        yield stub


T = TypeVar("T")


def again(call: Callable[[], T]) -> T:
    """The test's own store call, once more when it met a connection ``Killer.all()`` ended: the
    pool hands out the dead connections it holds until one of them fails (then SQLAlchemy drops
    them all), and a dead connection fails at its transaction's first statement, before anything
    is written, so the call is made once."""
    for _ in range(20):
        try:
            return call()
        except sqlalchemy.exc.OperationalError:
            time.sleep(0.05)
    return call()


def seed(store: Store, skyportal: SkyPortalStub, ids: range) -> list[int]:
    """An ATLAS allocation (added once) and one request per SkyPortal id; the gateway's ids."""
    if not again(lambda: _has_allocation(store)):
        token = again(lambda: store.clients.add("faults"))
        owner = again(lambda: store.clients.authenticate(token))
        again(lambda: store.allocations.put(owner, 1, "atlas", {"api_token": ATLAS_TOKEN}, instrument_id=1, group_ids=[1]))
    request_ids = []
    for followup_id in ids:
        skyportal.add_request(followup_id, obj_id=f"ZTF26f{followup_id}", instrument_id=1)
        target = Target(f"ZTF26f{followup_id}", 10.0 + followup_id, -20.0)
        request_ids.append(again(lambda target=target, followup_id=followup_id: store.requests.add(1, target, {}, followup_request_id=followup_id)))
    return request_ids


def _has_allocation(store: Store) -> bool:
    try:
        store.allocations.get(1)
    except Exception:  # noqa: BLE001 - NotFound
        return False
    return True


def make_worker(store: Store, atlas: ATLASEmulator, **settings) -> Worker:
    chosen = WorkerSettings(idle=0.05, egress=loopback_egress(atlas), **settings)
    return Worker(store, facility_config={"atlas": {"base_url": atlas.base_url, "poll_interval": 0.05}}, settings=chosen)


@contextlib.contextmanager
def run_in_background(*loops) -> Iterator[list[threading.Thread]]:
    """The loops' real ``run()`` in threads, stopped and joined afterwards."""
    threads = [threading.Thread(target=loop.run, daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        yield threads
    finally:
        for loop in loops:
            loop.stop()
        for thread in threads:
            thread.join(30)
        for loop in loops:
            loop.close()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlalchemy.exc.OperationalError):  # the test's own reads meet the faults too
            if condition():
                return True
        time.sleep(0.05)
    return False


def all_delivered(store: Store, skyportal: SkyPortalStub, followup_ids: list[int]) -> Callable[[], bool]:
    def done() -> bool:
        finished = all(row["state"] == "completed" for row in store.requests.newest())
        return finished and store.metrics()["outbox_backlog"] == 0 and all(skyportal.statuses(i) for i in followup_ids)

    return done


def assert_nothing_lost(store: Store, atlas: ATLASEmulator, skyportal: SkyPortalStub, followup_ids: list[int]) -> None:
    """Every request completed, submitted once, its statuses delivered in order, once each, with
    no failure among them; its photometry delivered."""
    posts = [r for r in atlas.requests if r.method == "POST" and r.path.endswith("/queue/")]
    assert len(posts) == len(followup_ids)
    for followup_id in followup_ids:
        (row,) = [r for r in store.requests.newest() if store.requests.view(r["id"])["followup_request_id"] == followup_id]
        recorded = [entry["status"] for entry in store.requests.view(row["id"])["history"]][1:]
        assert skyportal.statuses(followup_id) == recorded
        assert recorded[0].startswith("submitted: ATLAS task") and recorded[-1].startswith("complete: 4 points")
        assert not any("fail" in status for status in recorded)
        assert len(skyportal.photometry(f"ZTF26f{followup_id}")) == 4


# -- PostgreSQL: connections dropped ---------------------------------------------------------


@pytest.mark.postgres
def test_a_dropped_connection_where_the_worker_waits_does_not_end_the_worker(postgres_schema, killer, atlas, skyportal):
    store = Store(POSTGRES_URL, SecretBox(generate_key()), schedule=SCHEDULE, **killer.options)
    killer.attach(store)
    worker = make_worker(store, atlas)
    deliverer = Deliverer.for_skyportal(store, skyportal.url, SP_TOKEN, settings=QUICK_DELIVERY)
    try:
        with run_in_background(worker, deliverer) as threads:
            # The wait between rounds asks when the next request is due: drop it there, thrice.
            killer.before(r"SELECT min\(requests.next_poll_at\)", times=3)
            assert wait_for(lambda: len(killer.killed) == 3)
            killer.all()  # and every connection the loops hold, for good measure
            followup_ids = list(range(1, 4))
            seed(store, skyportal, range(1, 4))  # accepted after the drops: they must still be followed
            assert wait_for(all_delivered(store, skyportal, followup_ids))
            assert all(thread.is_alive() for thread in threads)
        assert_nothing_lost(store, atlas, skyportal, followup_ids)
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "where, pattern",
    [
        ("mid-claim", r"UPDATE requests SET .*lease_owner=.*WHERE requests.id IN"),
        ("mid-save", r"INSERT INTO request_history"),
        ("mid-delivery", r"UPDATE outbox SET .*delivered_at="),
    ],
)
def test_connections_dropped_mid_claim_and_mid_save_lose_no_request(postgres_schema, killer, atlas, skyportal, where, pattern):
    store = Store(POSTGRES_URL, SecretBox(generate_key()), schedule=SCHEDULE, **killer.options)
    killer.attach(store)
    followup_ids = list(range(1, 5))
    seed(store, skyportal, range(1, 5))
    killer.before(pattern, times=3)
    try:
        with run_in_background(make_worker(store, atlas), Deliverer.for_skyportal(store, skyportal.url, SP_TOKEN, settings=QUICK_DELIVERY)):
            assert wait_for(all_delivered(store, skyportal, followup_ids)), store.metrics()
        assert len(killer.killed) == 3, killer.killed
        assert_nothing_lost(store, atlas, skyportal, followup_ids)
    finally:
        store.close()


# -- SQLite: a full disk ---------------------------------------------------------------------


def test_a_full_disk_makes_the_loops_wait_without_spinning_and_loses_nothing(full_disk, atlas, skyportal, caplog):
    store = Store(full_disk.url, SecretBox(generate_key()), schedule=SCHEDULE)
    full_disk.attach(store)
    followup_ids = list(range(1, 4))
    seed(store, skyportal, range(1, 4))
    worker = make_worker(store, atlas, lease=2.0)
    deliverer = Deliverer.for_skyportal(store, skyportal.url, SP_TOKEN, settings=QUICK_DELIVERY)
    try:
        with caplog.at_level(logging.DEBUG, logger="facility_apis"), run_in_background(worker, deliverer) as threads:
            # Full once the submissions are out: their outcomes cannot be saved.
            assert wait_for(lambda: len([r for r in atlas.requests if r.method == "POST"]) == 3)
            full_disk.fill()
            caplog.clear()
            time.sleep(3.0)
            during = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert any("disk is full" in (r.getMessage() + (r.exc_text or "")) for r in during)
            # Backoff (doubling to 30 s) and at most one line a minute per kind of call: no flood.
            assert len(during) <= 12, [r.getMessage() for r in during]
            assert all(thread.is_alive() for thread in threads)
            full_disk.free()
            assert wait_for(all_delivered(store, skyportal, followup_ids), 60), store.metrics()
        assert_nothing_lost(store, atlas, skyportal, followup_ids)
    finally:
        store.close()


def test_a_submission_whose_outcome_cannot_be_saved_for_a_while_is_not_orphaned(full_disk, atlas, skyportal):
    """Longer than the lease: the save is retried while no other worker holds the request, so
    the submission that reached ATLAS is recorded rather than ended as 'a worker stopped while
    submitting'."""
    store = Store(full_disk.url, SecretBox(generate_key()), schedule=SCHEDULE)
    full_disk.attach(store)
    followup_ids = list(range(1, 3))
    seed(store, skyportal, range(1, 3))
    saving = threading.Event()
    original = store.jobs.start

    def start_then_fill(job, lease, now=None):
        marked = original(job, lease, now)
        if job.operation == "submit":
            full_disk.fill()  # the submission leaves; its answer will not be savable
            saving.set()
        return marked

    store.jobs.start = start_then_fill
    worker = make_worker(store, atlas, lease=0.5, concurrency=1)
    try:
        with run_in_background(worker, Deliverer.for_skyportal(store, skyportal.url, SP_TOKEN, settings=QUICK_DELIVERY)):
            assert saving.wait(10)
            time.sleep(1.5)  # three leases long
            store.jobs.start = original
            full_disk.free()
            assert wait_for(all_delivered(store, skyportal, followup_ids), 60), store.metrics()
        assert_nothing_lost(store, atlas, skyportal, followup_ids)
    finally:
        store.close()


# -- a wrong key ------------------------------------------------------------------------------


def test_a_wrong_key_refuses_to_start_changes_nothing_and_the_right_one_carries_on(tmp_path, atlas, skyportal, capsys, monkeypatch):
    key, url = generate_key(), f"sqlite:///{tmp_path / 'gateway.db'}"
    store = Store(url, SecretBox(key), schedule=SCHEDULE)
    followup_ids = list(range(1, 4))
    seed(store, skyportal, range(1, 4))
    worker = make_worker(store, atlas)
    for _ in range(3):  # submitted, not finished
        worker.run_once()
        time.sleep(0.05)
    worker.close()
    before = {row["id"]: store.requests.view(row["id"]) for row in store.requests.newest()}
    store.close()

    monkeypatch.setenv(KEY_ENV, generate_key())
    for verb in (["worker"], ["serve", "--port", "0"], ["client", "add", "another"], ["outbox", "requeue"]):
        assert main([*verb, "--database-url", url]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: the encryption key is not the one this database's credentials were sealed with") and err.count("\n") == 1
    with pytest.raises(Exception, match="encryption key is not the one"):
        Store(url, SecretBox(generate_key()))

    store = Store(url, SecretBox(key), schedule=SCHEDULE)
    try:
        assert {row["id"]: store.requests.view(row["id"]) for row in store.requests.newest()} == before  # nothing changed
        with run_in_background(make_worker(store, atlas), Deliverer.for_skyportal(store, skyportal.url, SP_TOKEN, settings=QUICK_DELIVERY)):
            assert wait_for(all_delivered(store, skyportal, followup_ids))
        assert_nothing_lost(store, atlas, skyportal, followup_ids)
    finally:
        store.close()


def test_a_database_from_before_the_key_check_is_checked_against_its_credentials(tmp_path):
    key, url = generate_key(), f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url, SecretBox(key))
    owner = store.clients.authenticate(store.clients.add("a"))
    store.allocations.put(owner, 1, "atlas", {"api_token": ATLAS_TOKEN}, instrument_id=1)
    with store.database.engine.begin() as connection:  # as a database made before the check was
        connection.exec_driver_sql("DELETE FROM gateway_meta WHERE key = 'key_check'")
    store.close()
    with pytest.raises(Exception, match="encryption key is not the one"):
        Store(url, SecretBox(generate_key()))
    Store(url, SecretBox(key)).close()  # the right key opens it, and records the check
    with pytest.raises(Exception, match="encryption key is not the one"):
        Store(url, SecretBox(generate_key()))


# -- the facility and SkyPortal down ------------------------------------------------------------


def test_the_facility_and_skyportal_down_then_back_lose_nothing_and_fail_nothing(tmp_path, atlas, skyportal):
    store = Store(f"sqlite:///{tmp_path / 'gateway.db'}", SecretBox(generate_key()), schedule=SCHEDULE)
    followup_ids = list(range(1, 4))
    seed(store, skyportal, range(1, 4))
    with socket.socket() as closed:  # a port nothing listens on: the facility is down
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}/forcedphot"
    skyportal.down()
    try:
        unreachable = Worker(store, facility_config={"atlas": {"base_url": down}}, settings=WorkerSettings(idle=0.05, egress=loopback_egress(down)))
        with run_in_background(unreachable):
            assert wait_for(lambda: all(row["status"] == "pending submission: facility unavailable, will retry" for row in store.requests.newest()))
        assert all(row["state"] == "pending" for row in store.requests.newest())  # waiting, not failed
        # Back up, but every poll's connection dropped at first: polls wait too.
        atlas.faults.add("drop", count=6, path_prefix="/forcedphot/queue/", method="GET")
        with run_in_background(make_worker(store, atlas), Deliverer.for_skyportal(store, skyportal.url, SP_TOKEN, settings=QUICK_DELIVERY)):
            assert wait_for(lambda: all(row["state"] == "completed" for row in store.requests.newest()))
            assert len(atlas.faults) == 0 and all(skyportal.statuses(i) == [] for i in followup_ids)  # still owed
            skyportal.up()
            assert wait_for(all_delivered(store, skyportal, followup_ids))
        for followup_id in followup_ids:
            statuses = skyportal.statuses(followup_id)
            assert statuses[0] == "pending submission: facility unavailable, will retry" and statuses[-1].startswith("complete: 4 points")
            assert not any(status.startswith(("failed", "rejected")) for status in statuses)
        assert len([r for r in atlas.requests if r.method == "POST"]) == len(followup_ids)
    finally:
        store.close()


# -- loops that crash ---------------------------------------------------------------------------


class Crashing:
    """A loop whose ``run`` raises ``crashes`` times, then runs until stopped."""

    def __init__(self, crashes: int):
        self.crashes, self.runs = crashes, 0
        self.last_beat = time.monotonic()
        self._stop = threading.Event()

    def run(self) -> None:
        self.runs += 1
        if self.runs <= self.crashes:
            raise RuntimeError(f"crash {self.runs}")
        while not self._stop.wait(0.01):
            self.last_beat = time.monotonic()

    def stop(self) -> None:
        self._stop.set()


def test_a_crashed_loop_is_restarted_and_one_that_keeps_crashing_ends_the_process():
    fatal: list[str] = []
    supervisor = Supervisor(fatal.append, restart_wait=0.01, max_crashes=3, window=60)
    flaky, doomed = Crashing(2), Crashing(10**6)
    supervisor.start("flaky", flaky)
    supervisor.start("doomed", doomed)
    assert wait_for(lambda: bool(fatal) and flaky.runs == 3)
    health = supervisor.health()
    assert health["flaky"]["alive"] and health["flaky"]["restarts"] == 2 and health["flaky"]["last_error"] == "RuntimeError: crash 2"
    assert not health["doomed"]["alive"] and fatal == ["the doomed loop crashed 3 times within 60 s; last: RuntimeError: crash 3"]
    supervisor.stop()


def test_a_worker_process_whose_loop_keeps_crashing_exits_non_zero(tmp_path, monkeypatch, capsys):
    import functools

    from facility_apis.gateway import service

    monkeypatch.setenv(KEY_ENV, generate_key())
    monkeypatch.setattr(service, "Supervisor", functools.partial(Supervisor, restart_wait=0.01, max_crashes=3))
    monkeypatch.setattr(Worker, "run", lambda self: 1 / 0)
    assert main(["worker", "--data-dir", str(tmp_path)]) == 1
    assert "error: the worker loop crashed 3 times within 600 s; last: ZeroDivisionError: division by zero" in capsys.readouterr().err


def test_backoff_doubles_to_its_cap_and_logs_a_repeated_failure_once_per_quiet_period(caplog):
    backoff = Backoff("claiming", base=0.1, cap=0.5, quiet=3600)
    with caplog.at_level(logging.WARNING, logger="facility_apis.gateway.loops"):
        waits = [backoff.failure(OSError("disk full")) for _ in range(50)]
        backoff.success()
    assert waits[:4] == [0.1, 0.2, 0.4, 0.5] and set(waits[3:]) == {0.5}
    assert [r.getMessage() for r in caplog.records] == ["claiming failed; retrying in 0.1 s", "claiming works again after 50 failure(s)"]
    assert "OSError: disk full" in caplog.records[0].exc_text  # the first one with its traceback (redacted)


def test_health_shows_the_processs_loops_and_a_restart(tmp_path, skyportal, monkeypatch):
    import functools

    from facility_apis.gateway import service
    from facility_apis.gateway.config import GatewayConfig
    from facility_apis.gateway.runner import AppThread

    monkeypatch.setattr(service, "Supervisor", functools.partial(Supervisor, restart_wait=0.01))
    original, crashes = Worker.run, []

    def crash_once(self):
        if not crashes:
            crashes.append(1)
            raise RuntimeError("the first round failed")
        original(self)

    monkeypatch.setattr(Worker, "run", crash_once)
    key = generate_key()
    config = GatewayConfig.load(data_dir=tmp_path, environ={KEY_ENV: key}, skyportal_url=skyportal.url, skyportal_token=SP_TOKEN)
    gateway = service.Gateway(config)
    try:
        token = gateway.store.clients.add("health")
        gateway.start_background()
        with AppThread(gateway.app()) as app:
            assert wait_for(lambda: gateway.supervisor.health()["worker"]["restarts"] == 1)
            health = requests.get(f"{app.url}/api/health", headers={"Authorization": f"token {token}"}, timeout=10).json()["data"]
    finally:
        gateway.close()
    assert health["healthy"] is True and set(health["loops"]) == {"worker", "outbox"}
    worker, outbox = health["loops"]["worker"], health["loops"]["outbox"]
    assert worker["alive"] and not worker["stalled"] and worker["restarts"] == 1 and worker["last_error"] == "RuntimeError: the first round failed"
    assert outbox["alive"] and outbox["restarts"] == 0 and outbox["seconds_since_beat"] < 5
