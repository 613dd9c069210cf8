"""``Jobs.record_many``: many outcomes in one transaction (the worker's group commit), each
applied as ``record`` applies it; on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest

from facility_apis.core.interface import Target
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.photometry import Photometry
from facility_apis.gateway.store.jobs import Recording

SECRET = "atlas-secret-token-91b0c4"


def seed(store, count: int) -> list[int]:
    owner = store.clients.authenticate(store.clients.add("c"))
    store.allocations.put(owner, 1, "atlas", {"api_token": SECRET}, instrument_id=1, group_ids=[1])
    return [store.requests.add(1, Target(f"ZTF26g{i}", 1.0 + i, 2.0), {}, remote_id=f"https://x/queue/{i}/") for i in range(count)]


def test_outcomes_recorded_together_keep_each_requests_order_and_lease(gateway_store):
    ids = seed(gateway_store, 3)
    now = time.time()
    jobs = gateway_store.jobs.claim("w", 3, lease=10, now=now)
    assert [job.request_id for job in jobs] == ids
    points = Photometry(mjd=[60000.5, 60000.6], mag=[18.1, 18.2], magerr=[0.05, 0.05], limiting_mag=[20.0, 20.0], filter=["atlaso", "atlasc"])
    late = gateway_store.jobs.claim("late", 1, lease=10, now=now + 11)  # leases expired: the first request is taken over
    assert [job.request_id for job in late] == [ids[0]]
    recordings = [
        Recording(jobs[2], Outcome(State.COMPLETED, "2 points", remote_id=f"https://x/queue/{2}/", photometry=points), can_poll=True),
        Recording(jobs[0], Outcome(State.RUNNING, "running"), can_poll=True),
        Recording(jobs[1], Outcome(State.THROTTLED, "rate limit reached", poll_after=30), can_poll=True),
    ]
    assert gateway_store.jobs.record_many(recordings, now=now + 12) == [True, False, True]
    completed = gateway_store.requests.view(ids[2])
    assert completed["state"] == "completed" and [d["kind"] for d in completed["deliveries"]] == ["photometry", "status"]
    assert gateway_store.requests.view(ids[0])["state"] == "submitted"  # the late owner's result will count
    assert gateway_store.requests.view(ids[1])["next_poll_at"] == pytest.approx(now + 42)
    assert [a["throttles"] for a in gateway_store.metrics()["accounts"]] == [0, 1]
    deliveries = gateway_store.outbox.claim("o", 10, 30, now=now + 13)
    assert [(d.request_id, d.kind) for d in deliveries] == [(ids[2], "photometry")]  # one request at a time, in order


def test_one_request_twice_in_a_batch_is_refused(gateway_store):
    seed(gateway_store, 1)
    (job,) = gateway_store.jobs.claim("w", 1, lease=10)
    with pytest.raises(ValueError, match="one outcome per request"):
        gateway_store.jobs.record_many([Recording(job, Outcome(State.RUNNING, "a"), True), Recording(job, Outcome(State.RUNNING, "b"), True)])
