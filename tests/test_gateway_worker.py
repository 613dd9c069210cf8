"""The worker and the outbox over loopback: ATLAS emulator in, SkyPortal stub out. Faults:
SkyPortal down, a worker process killed mid-poll, two workers sharing one PostgreSQL queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from facility_apis.core.interface import Target
from facility_apis.facilities.atlas import ATLASFacility
from facility_apis.gateway.crypto import SecretBox
from facility_apis.gateway.outbox import Deliverer, DeliverySettings
from facility_apis.gateway.store import Store
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing import ATLASEmulator, SkyPortalStub
from facility_apis.testing.network import loopback_egress

ATLAS_TOKEN = "worker-atlas-token-77e0a1"
SP_TOKEN = "worker-skyportal-token-4b1d"
QUICK_DELIVERY = DeliverySettings(backoff_base=0.05, backoff_cap=0.2, idle=0.05)


@pytest.fixture
def atlas():
    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, queue_time=0.1, run_time=0.1, rows=8) as emulator:
        yield emulator


@pytest.fixture
def skyportal():
    with SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as stub:
        yield stub


def seed(store: Store, skyportal: SkyPortalStub, count: int, *, first_id: int = 1) -> list[int]:
    """An ATLAS allocation and ``count`` requests known to SkyPortal; returns SkyPortal's ids."""
    owner = store.clients.authenticate(store.clients.add(f"client{first_id}"))
    store.allocations.put(owner, 1, "atlas", {"api_token": ATLAS_TOKEN}, instrument_id=1, group_ids=[1])
    ids = list(range(first_id, first_id + count))
    for followup_id in ids:
        skyportal.add_request(followup_id, obj_id=f"ZTF26w{followup_id}", instrument_id=1)
        store.requests.add(1, Target(f"ZTF26w{followup_id}", 10.0 + followup_id, -20.0), {}, followup_request_id=followup_id)
    return ids


def make_worker(store: Store, atlas: ATLASEmulator, **settings) -> Worker:
    chosen = WorkerSettings(idle=0.05, egress=loopback_egress(atlas), **settings)
    return Worker(store, facility_config={"atlas": {"base_url": atlas.base_url, "poll_interval": 0.05}}, settings=chosen)


def history(store: Store, followup_id: int) -> list[str]:
    (row,) = [r for r in store.requests.newest() if store.requests.view(r["id"])["followup_request_id"] == followup_id]
    return [entry["status"] for entry in store.requests.view(row["id"])["history"]][1:]  # SkyPortal set the first itself


def test_requests_are_followed_to_completion_and_every_status_delivered_once(gateway_store, follow_through, atlas, skyportal):
    ids = seed(gateway_store, skyportal, 6)
    assert follow_through(gateway_store, atlas.base_url, skyportal.url, SP_TOKEN)
    for followup_id in ids:
        sent = skyportal.statuses(followup_id)
        assert sent == history(gateway_store, followup_id)
        assert sent[0].startswith("submitted: ATLAS task") and sent[-1].startswith("complete: 8 points")
        assert len(skyportal.photometry(f"ZTF26w{followup_id}")) == 8
    metrics = gateway_store.metrics()
    assert metrics["requests"] == {"atlas": {"completed": 6}} and metrics["outbox_backlog"] == 0


def test_skyportal_down_for_a_while_loses_and_duplicates_nothing(gateway_store, atlas, skyportal):
    ids = seed(gateway_store, skyportal, 4)
    worker = make_worker(gateway_store, atlas)
    deliverer = Deliverer.for_skyportal(gateway_store, skyportal.url, SP_TOKEN, settings=QUICK_DELIVERY)
    try:
        skyportal.down()
        assert worker.run_until_idle(30)
        for _ in range(5):
            deliverer.run_once()
            time.sleep(0.05)
        backlog = gateway_store.metrics()["outbox_backlog"]
        # Every status change and each request's photometry is owed (how many statuses a request
        # went through depends on how the polls fell against the emulator's clock).
        owed = sum(len(history(gateway_store, i)) for i in ids) + len(ids)
        assert backlog == owed >= 3 * len(ids) and all(skyportal.statuses(i) == [] for i in ids)
        skyportal.up()
        assert deliverer.run_until_empty(30)
    finally:
        worker.close()
        deliverer.close()
    for followup_id in ids:
        assert skyportal.statuses(followup_id) == history(gateway_store, followup_id)
        assert len(skyportal.photometry(f"ZTF26w{followup_id}")) == 8
    view = gateway_store.requests.view(gateway_store.requests.newest()[0]["id"])
    assert all(d["delivered_at"] and d["attempts"] > 1 for d in view["deliveries"][:1])


def test_a_refused_message_is_kept_as_dead_with_skyportals_reason(gateway_store, follow_through, atlas, skyportal):
    owner = gateway_store.clients.authenticate(gateway_store.clients.add("c"))
    gateway_store.allocations.put(owner, 1, "atlas", {"api_token": ATLAS_TOKEN}, instrument_id=1)
    skyportal.add_source("ZTF26gone", 1.0, 1.0)
    request_id = gateway_store.requests.add(1, Target("ZTF26gone", 1.0, 1.0), {}, followup_request_id=999)
    assert follow_through(gateway_store, atlas.base_url, skyportal.url, SP_TOKEN)
    deliveries = gateway_store.requests.view(request_id)["deliveries"]
    assert all(d["dead"] for d in deliveries if d["kind"] == "status")
    assert "Cannot find FollowupRequest with ID: 999" in deliveries[0]["last_error"]
    # Every status the request went through is kept dead (how many depends on how the polls fell
    # against the emulator's clock: submitted, then queued and/or running, then complete).
    statuses = [d for d in deliveries if d["kind"] == "status"]
    assert len(statuses) >= 2 and gateway_store.metrics()["outbox_dead"] == sum(d["dead"] for d in deliveries) >= len(statuses)


def test_a_generic_forwarded_request_finds_its_skyportal_id(gateway_store, follow_through, atlas, skyportal):
    owner = gateway_store.clients.authenticate(gateway_store.clients.add("c"))
    gateway_store.allocations.put(owner, 5, "atlas", {"api_token": ATLAS_TOKEN}, instrument_id=1)
    for followup_id in (41, 42):  # two identical requests, forwarded in order
        skyportal.add_request(followup_id, obj_id="ZTF26fwd", instrument_id=1, allocation_id=5, payload={"use_reduced": False})
    skyportal.add_request(40, obj_id="ZTF26fwd", instrument_id=1, allocation_id=6, payload={"use_reduced": False})  # other allocation
    first = gateway_store.requests.add(5, Target("ZTF26fwd", 3.0, 4.0), {"use_reduced": False, "snr_threshold": 3.0})
    second = gateway_store.requests.add(5, Target("ZTF26fwd", 3.0, 4.0), {"use_reduced": False, "snr_threshold": 3.0})
    assert follow_through(gateway_store, atlas.base_url, skyportal.url, SP_TOKEN)
    assert [gateway_store.requests.view(r)["followup_request_id"] for r in (first, second)] == [41, 42]
    assert skyportal.statuses(40) == []
    assert skyportal.statuses(41)[-1].startswith("complete") and skyportal.statuses(42)[-1].startswith("complete")


def test_a_throttle_pauses_the_account_for_the_wait_asked(gateway_store, atlas, skyportal):
    seed(gateway_store, skyportal, 1)
    atlas.throttle_next(1, wait=1)
    worker = make_worker(gateway_store, atlas)
    started = time.monotonic()
    try:
        assert worker.run_until_idle(30)
    finally:
        worker.close()
    assert time.monotonic() - started >= 1.0
    assert history(gateway_store, 1)[:2] == ["pending submission: throttled, will retry", "submitted: ATLAS task 1"]
    posts = [r for r in atlas.requests if r.method == "POST" and r.path.endswith("/queue/")]
    assert len(posts) == 2  # the throttled try and the one after the wait: no more


def test_a_worker_process_killed_mid_poll_leaves_every_job_to_the_next(tmp_path, secret_key, fast_schedule, follow_through, atlas, skyportal):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    store = Store(url, SecretBox(secret_key), schedule=fast_schedule)
    ids = seed(store, skyportal, 5)
    config = tmp_path / "gateway.json"
    config.write_text(
        json.dumps(
            {
                "skyportal": {"url": skyportal.url},
                "facilities": {"atlas": {"base_url": atlas.base_url, "poll_interval": 0.05}},
                "worker": {"default_poll_seconds": 0.05, "backoff_base_seconds": 0.05},
                "egress": {"allow": [atlas.url]},
            }
        )
    )
    # Every poll of a task hangs for 30 s: the process is certainly mid-poll when killed.
    atlas.faults.add("latency", count=10_000, path_prefix="/forcedphot/queue/", method="GET", seconds=30)
    env = dict(os.environ, FACILITY_APIS_SECRET_KEY=secret_key, FACILITY_APIS_SKYPORTAL_TOKEN=SP_TOKEN)
    command = [sys.executable, "-m", "facility_apis", "worker", "--config", str(config), "--database-url", url, "--lease", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            polls = [r for r in atlas.requests if r.method == "GET" and "/queue/" in r.path]
            if len(polls) >= 5:
                break
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("the worker process never polled")
        states = {r["state"] for r in store.requests.newest()}
        assert states == {"submitted"}  # every submission recorded; every job leased and mid-poll
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    atlas.faults.clear()
    posts_before = len([r for r in atlas.requests if r.method == "POST"])
    try:
        assert follow_through(store, atlas.base_url, skyportal.url, SP_TOKEN)
    finally:
        store.close()
    assert len([r for r in atlas.requests if r.method == "POST"]) == posts_before  # nothing submitted twice
    for followup_id in ids:
        statuses = skyportal.statuses(followup_id)
        assert statuses[-1].startswith("complete: 8 points")
        assert len(statuses) == len(set(statuses))


@pytest.mark.postgres
def test_two_workers_on_postgresql_never_poll_one_job_at_once(postgres_schema, postgres_url, secret_key, fast_schedule, atlas, skyportal, monkeypatch):
    stores = [Store(postgres_url, SecretBox(secret_key), schedule=fast_schedule, **postgres_schema.options) for _ in range(2)]
    ids = seed(stores[0], skyportal, 30)
    atlas.faults.add("latency", count=100_000, path_prefix="/forcedphot/queue/", method="GET", seconds=0.02)
    in_flight: set[int] = set()
    overlaps: list[int] = []
    calls: dict[str, int] = {}
    lock = threading.Lock()
    real_get = ATLASFacility.get

    def tracked_get(self, request, transport):
        with lock:
            if request.id in in_flight:
                overlaps.append(request.id)
            in_flight.add(request.id)
            calls[threading.current_thread().name] = calls.get(threading.current_thread().name, 0) + 1
        try:
            return real_get(self, request, transport)
        finally:
            with lock:
                in_flight.discard(request.id)

    monkeypatch.setattr(ATLASFacility, "get", tracked_get)
    workers = [make_worker(store, atlas, concurrency=8) for store in stores]
    threads = [threading.Thread(target=worker.run) for worker in workers]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and stores[0].jobs.next_due() is not None:
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(30)
        for worker in workers:
            worker.close()
    metrics = stores[0].metrics()
    for store in stores:
        store.close()
    assert metrics["requests"] == {"atlas": {"completed": len(ids)}}
    assert overlaps == []
    by_worker = {w.name: sum(n for name, n in calls.items() if name.startswith(f"call:{w.name}")) for w in workers}
    assert all(count > 0 for count in by_worker.values()), by_worker


def test_a_job_claimed_while_the_last_outcome_is_being_saved_waits_for_the_save_and_is_not_dropped(gateway_store, atlas, skyportal):
    """A save commits (the request due again at once) before the thread that asked for it hears
    so; a claim in between took the request under a new lease of this worker. Dropped, that job
    held the request, uncalled, for the whole lease (300 s): seen as a drain that stalled for five
    minutes under load. It now runs once the save is over."""
    seed(gateway_store, skyportal, 1)
    (request,) = gateway_store.requests.newest()
    worker = make_worker(gateway_store, atlas)
    try:
        worker._saving.add(request["id"])  # the save of its previous outcome is under way
        assert worker.run_once() == 0  # claimed, and held for that save
        assert atlas.requests == [] and gateway_store.jobs.claim("other", 5, lease=30) == []  # still ours: no one else calls it
        worker._saved(request["id"])  # the save is over: the job starts
        deadline = time.monotonic() + 10
        while worker._in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.method for r in atlas.requests if "/forcedphot/queue/" in r.path] == ["POST"]
        assert gateway_store.requests.view(request["id"])["state"] == "submitted"
    finally:
        worker.close()
