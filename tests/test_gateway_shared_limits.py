"""Facility account allowances shared by every worker on one database (``store/accounts.py``):
two workers together stay within one account's concurrency and spacing, counted at the ATLAS
emulator; a throttle one worker meets holds the other back; a dead worker's slots come back when
its leases expire. On SQLite and PostgreSQL (two ``Store`` objects on one database: two workers)."""

from __future__ import annotations

import bisect
import threading
import time

import pytest

from facility_apis.core.interface import Target
from facility_apis.core.outcome import Outcome, State
from facility_apis.gateway.crypto import SecretBox
from facility_apis.gateway.outbox import Deliverer, DeliverySettings
from facility_apis.gateway.pacing import FacilityLimit, Rate
from facility_apis.gateway.store import Store
from facility_apis.gateway.store.jobs import Recording
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing import ATLASEmulator, SkyPortalStub
from facility_apis.testing.network import loopback_egress

ATLAS_TOKEN = "shared-atlas-token-5c2e91"
SP_TOKEN = "shared-skyportal-token-0a7d"


@pytest.fixture
def stores(database, secret_key, fast_schedule):
    """Two stores on one database, as two worker processes have."""
    url, options = database
    pair = [Store(url, SecretBox(secret_key), schedule=fast_schedule, **options) for _ in range(2)]
    yield pair
    for store in pair:
        store.close()


@pytest.fixture
def skyportal():
    with SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as stub:
        yield stub


def seed(store: Store, skyportal: SkyPortalStub | None, count: int, allocation_id: int = 1) -> list[int]:
    owner = store.clients.authenticate(store.clients.add(f"client{allocation_id}"))
    store.allocations.put(owner, allocation_id, "atlas", {"api_token": ATLAS_TOKEN}, instrument_id=1, group_ids=[1])
    ids = []
    for n in range(count):
        followup_id = 100 * allocation_id + n
        if skyportal is not None:
            skyportal.add_request(followup_id, obj_id=f"ZTF26s{followup_id}", instrument_id=1)
        ids.append(store.requests.add(allocation_id, Target(f"ZTF26s{followup_id}", 10.0 + n, -20.0), {}, followup_request_id=followup_id))
    return ids


def run_two_workers(stores: list[Store], atlas: ATLASEmulator, skyportal: SkyPortalStub, limit: FacilityLimit, timeout: float = 60) -> None:
    """Two workers (8 calls in flight each), one per store, until nothing is owed and delivered."""
    settings = WorkerSettings(concurrency=8, default_limit=limit, idle=0.05, egress=loopback_egress(atlas, skyportal.url))
    workers = [Worker(store, facility_config={"atlas": {"base_url": atlas.base_url, "poll_interval": 0.05}}, settings=settings) for store in stores]
    finished = [False, False]

    def work(index: int) -> None:
        finished[index] = workers[index].run_until_idle(timeout)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 10)
    for worker in workers:
        worker.close()
    assert any(finished) and stores[0].jobs.next_due() is None
    deliverer = Deliverer.for_skyportal(stores[0], skyportal.url, SP_TOKEN, settings=DeliverySettings(backoff_base=0.05, backoff_cap=0.2, idle=0.05))
    try:
        assert deliverer.run_until_empty(30)
    finally:
        deliverer.close()


def queue_calls(atlas: ATLASEmulator) -> list:
    """The facility calls the emulator received (its task API; result files belong to a call)."""
    return [r for r in atlas.requests if "/forcedphot/queue/" in r.path]


def most_in_a_window(times: list[float], window: float) -> int:
    """The most of ``times`` that fall in any ``window`` seconds (both ends included)."""
    times = sorted(times)
    return max(bisect.bisect_right(times, t + window) - i for i, t in enumerate(times))


def test_two_workers_stay_within_one_facilitys_concurrency_and_spacing_together(stores, skyportal):
    limit = FacilityLimit(concurrency=2, min_interval=0.2)  # 5 calls a second at most
    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, rows=4, finish_after_reads=2, read_rate=8, write_rate=8, throttle_period=1.0) as atlas:
        # Each status read takes 0.3 s: longer than the spacing, so the calls overlap and use both slots.
        atlas.faults.add("latency", count=10_000, path_prefix="/forcedphot/queue/", method="GET", seconds=0.3)
        ids = seed(stores[0], skyportal, 5)
        run_two_workers(stores, atlas, skyportal, limit)
        calls = queue_calls(atlas)
        assert len(calls) == 5 * 3  # a submission and two status reads each
        assert atlas.max_in_flight <= 2, atlas.max_in_flight  # with a limit per process, up to 4
        # Starts 0.2 s apart make at most 6 in a second; the loopback may bunch two arrivals a
        # little, hence 7. With each worker spacing only its own calls, 10 or 11.
        assert most_in_a_window([r.at for r in calls], 1.0) <= 7
        assert atlas.reads_throttled == 0
    for request_id in ids:
        assert stores[1].requests.view(request_id)["state"] == "completed"
        assert not any("throttled" in entry["status"] for entry in stores[1].requests.view(request_id)["history"])
    for followup_id in range(100, 105):
        assert skyportal.statuses(followup_id)[-1].startswith("complete: 4 points")


def test_a_throttle_one_worker_meets_holds_the_other_back(stores, skyportal):
    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, rows=4, finish_after_reads=2) as atlas:
        seed(stores[0], skyportal, 3)
        atlas.throttle_next(1, wait=1)  # the first call, whichever worker makes it
        run_two_workers(stores, atlas, skyportal, FacilityLimit(concurrency=1))
        calls = queue_calls(atlas)
        assert len(calls) == 1 + 3 * 3  # the throttled one, then a submission and two reads each
        assert calls[1].at - calls[0].at >= 0.95  # no worker called the account during the pause
    whole, account = stores[1].metrics()["accounts"]  # the facility's shared allowance, then the account
    assert whole["account"] == "" and whole["throttles"] == 0
    assert account["facility"] == "atlas" and account["account"] == "1" and account["throttles"] == 1
    assert account["in_flight"] == 0 and account["paused_seconds"] is None and account["pause_detail"].startswith("rate limit reached")


def test_a_recorded_throttle_pauses_the_account_for_every_store(stores):
    first, second = stores
    paused = seed(first, None, 2, allocation_id=1)
    other = seed(first, None, 1, allocation_id=2)
    now = time.time()
    (job,) = first.jobs.claim("a", 1, lease=30, now=now)
    assert first.jobs.record(job, Outcome(State.THROTTLED, "Request was throttled.", poll_after=30), can_poll=True, now=now)
    claimed = second.jobs.claim("b", 10, lease=30, now=now + 1)
    assert [j.request_id for j in claimed] == other  # the paused account's requests are not claimed
    for request_id in paused:
        assert second.requests.view(request_id)["next_poll_at"] >= now + 30  # due when the pause ends
    (probe,) = second.jobs.claim("b", 10, lease=30, now=now + 31)  # the pause is over: one call first
    assert probe.request_id in paused and probe.ramping


def answer(store: Store, jobs: list, state: State, now: float) -> None:
    poll_after = 30 if state is State.THROTTLED else 60
    for job in jobs:
        assert store.jobs.record(job, Outcome(state, state.value, poll_after=poll_after), can_poll=True, now=now)


def test_an_account_resumes_after_a_pause_one_call_then_one_more_per_answer(stores):
    """DRF's window (behind ATLAS's throttle) frees only the calls older than it when the pause
    ends: the account resumes with one call, and each answer that is not a throttle lets one more
    go, until the allowance is reached; a throttle on the way starts it again from one."""
    first, second = stores
    seed(first, None, 40)
    limits = {"atlas": FacilityLimit(concurrency=8)}.__getitem__
    now = time.time()
    (job,) = first.jobs.claim("a", 1, lease=30, now=now, limits=limits)
    answer(first, [job], State.THROTTLED, now)
    assert first.metrics()["accounts"][-1]["ramp"] == 1
    t = now + 31
    claimed = first.jobs.claim("a", 8, lease=30, now=t, limits=limits)
    assert len(claimed) == 1 and second.jobs.claim("b", 8, lease=30, now=t, limits=limits) == []  # one in flight, both workers together
    answer(first, claimed, State.RUNNING, t)
    sizes = []
    for step in range(1, 4):  # each round's answers widen the ramp by as many: 2, 4, then the allowance
        claimed = first.jobs.claim("a", 4, lease=30, now=t + step, limits=limits) + second.jobs.claim("b", 4, lease=30, now=t + step, limits=limits)
        sizes.append(len(claimed))
        assert all(job.ramping for job in claimed) == (step < 3)
        answer(first, claimed, State.RUNNING, t + step)
    assert sizes == [2, 4, 8]
    assert first.metrics()["accounts"][-1]["ramp"] is None  # the whole allowance again
    claimed = first.jobs.claim("a", 8, lease=30, now=t + 4, limits=limits)
    assert len(claimed) == 8 and not any(job.ramping for job in claimed)
    answer(first, claimed[:1], State.THROTTLED, t + 4)  # throttled again: paused, then from one again
    answer(first, claimed[1:], State.RUNNING, t + 4)
    assert first.metrics()["accounts"][-1]["ramp"] == 1
    assert len(first.jobs.claim("a", 8, lease=30, now=t + 40, limits=limits)) == 1


def test_a_throttle_answered_in_a_ramp_outweighs_the_answers_recorded_with_it(stores):
    first, _ = stores
    seed(first, None, 6)
    limits = {"atlas": FacilityLimit(concurrency=4)}.__getitem__
    now = time.time()
    (job,) = first.jobs.claim("a", 1, lease=30, now=now, limits=limits)
    answer(first, [job], State.THROTTLED, now)
    (probe,) = first.jobs.claim("a", 4, lease=30, now=now + 31, limits=limits)
    answer(first, [probe], State.RUNNING, now + 31)
    two = first.jobs.claim("a", 4, lease=30, now=now + 32, limits=limits)
    assert len(two) == 2
    throttled = Recording(two[0], Outcome(State.THROTTLED, "throttled", poll_after=30), can_poll=True)
    answered = Recording(two[1], Outcome(State.RUNNING, "running", poll_after=60), can_poll=True)
    assert first.jobs.record_many([answered, throttled], now=now + 33) == [True, True]
    assert first.metrics()["accounts"][-1]["ramp"] == 1


def test_concurrency_and_spacing_are_granted_across_stores(stores):
    first, second = stores
    ids = seed(first, None, 4)
    limits = {"atlas": FacilityLimit(concurrency=3, min_interval=10.0)}.__getitem__
    now = time.time()
    a = first.jobs.claim("a", 2, lease=200, now=now, limits=limits)
    b = second.jobs.claim("b", 2, lease=200, now=now, limits=limits)
    assert [j.request_id for j in a + b] == ids[:3]  # three slots in all, whoever claims
    assert [j.not_before for j in a + b] == [now, now + 10, now + 20]  # one start every 10 s, across both
    assert second.jobs.claim("b", 2, lease=200, now=now + 1, limits=limits) == []
    assert first.jobs.record(a[0], Outcome(State.RUNNING, "running", poll_after=60), can_poll=True, now=now + 2)  # frees a slot
    # The next start (now + 30) is granted only to a lease that outlasts four times the wait.
    assert second.jobs.claim("b", 2, lease=100, now=now + 3, limits=limits) == []
    (d,) = second.jobs.claim("b", 2, lease=200, now=now + 3, limits=limits)
    assert d.request_id == ids[3] and d.not_before == now + 30


def test_a_dead_workers_slot_comes_back_when_its_lease_expires(stores):
    first, second = stores
    ids = seed(first, None, 2)
    limits = {"atlas": FacilityLimit(concurrency=1)}.__getitem__
    now = time.time()
    (held,) = first.jobs.claim("dead", 5, lease=10, now=now, limits=limits)  # then the worker dies
    assert second.jobs.claim("b", 5, lease=10, now=now + 9, limits=limits) == []  # its slot is still held
    later = second.jobs.claim("b", 5, lease=10, now=now + 11, limits=limits)
    assert [j.request_id for j in later] == [ids[0]]  # the lease ran out: the oldest due is taken over
    assert not first.jobs.record(held, Outcome(State.RUNNING, "running"), can_poll=True, now=now + 12)  # too late: dropped


def test_a_rate_is_kept_across_stores_and_the_rest_is_made_due_when_the_window_has_room(stores):
    """Three calls in any 10 s (as DRF counts: a sliding window), two workers together: the claims
    log each start and grant only what the window holds, a start less than ``RATE_HORIZON`` ahead
    included; the other requests are due when the window has room."""
    first, second = stores
    ids = seed(first, None, 5)
    rate = Rate(3, 10.0)
    limits = {"atlas": FacilityLimit(concurrency=8, rates={"write": rate})}.__getitem__  # new requests: a submission each
    now = time.time()
    a = first.jobs.claim("a", 2, lease=60, now=now, limits=limits)
    b = second.jobs.claim("b", 1, lease=60, now=now + 1, limits=limits)
    assert [j.request_id for j in a + b] == ids[:3]
    room = now + rate.window  # the first starts leave the window
    assert second.jobs.claim("b", 1, lease=60, now=now + 2, limits=limits) == []
    for request_id in ids[3:]:
        assert second.requests.view(request_id)["next_poll_at"] == pytest.approx(room)  # made due then
    late = first.requests.add(1, Target("ZTF26late", 1.0, 2.0), {})  # due now
    (c,) = first.jobs.claim("a", 5, lease=60, now=room - 0.5, limits=limits)  # room within the horizon: granted, to start then
    assert c.request_id == late and c.not_before == pytest.approx(room)
    (d,) = second.jobs.claim("b", 1, lease=60, now=room, limits=limits)
    assert d.request_id in ids[3:] and d.not_before == pytest.approx(room)  # due at the same time: either


def test_an_exhausted_read_rate_does_not_hold_back_submissions(stores):
    first, _ = stores
    ids = seed(first, None, 3)
    limits = {"atlas": FacilityLimit(rates={"read": Rate(1, 60.0), "write": Rate(10, 60.0)})}.__getitem__
    now = time.time()
    for job in first.jobs.claim("a", 2, lease=60, now=now, limits=limits):  # two submissions: now followed
        assert first.jobs.record(job, Outcome(State.SUBMITTED, "queued", remote_id=f"t{job.request_id}", poll_after=0), can_poll=True, now=now)
    claimed = first.jobs.claim("a", 5, lease=60, now=now + 1, limits=limits)  # one read, and the third's submission
    assert sorted((j.operation, j.request_id in ids[:2]) for j in claimed) == [("get", True), ("submit", False)]
    (held,) = set(ids[:2]) - {j.request_id for j in claimed}
    assert first.requests.view(held)["next_poll_at"] == pytest.approx(now + 1 + Rate(1, 60.0).window)  # the next read: when the window has room


def test_two_workers_meet_no_throttle_under_a_known_rate(stores, skyportal):
    """The emulator throttles as DRF does (10 reads in any 2 s); told that rate, two workers
    together make every read it allows and meet no 429, counted at the emulator."""
    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, rows=2, finish_after_reads=3, read_rate=10, throttle_period=2.0) as atlas:
        ids = seed(stores[0], skyportal, 8)
        run_two_workers(stores, atlas, skyportal, FacilityLimit(concurrency=8, rates={"read": Rate(10, 2.0)}))
        assert atlas.reads_allowed == 8 * 3 and atlas.reads_throttled == 0
    for request_id in ids:
        assert stores[1].requests.view(request_id)["state"] == "completed"


def test_the_worker_keeps_to_the_rates_the_facility_documents_unless_configured(stores):
    worker = Worker(stores[0], settings=WorkerSettings(limits={"atlas": FacilityLimit(concurrency=4, rates={"write": None})}))
    try:
        assert worker.limit("atlas").rates == {"read": Rate(600, 60.0)}  # ATLAS's read throttle; the write rate configured away
        assert worker.limit("atlas").concurrency == 4
        assert Worker(stores[1]).limit("atlas").rates == {"read": Rate(600, 60.0), "write": Rate(60, 60.0)}
    finally:
        worker.close()
