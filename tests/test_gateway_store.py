"""The gateway store on SQLite and on PostgreSQL: schema version, sealed credentials, leases,
one-transaction state changes with their outbox rows, cancellation, delivery order."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy

from facility_apis.core.errors import ConfigurationError
from facility_apis.core.interface import Target
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.photometry import Photometry
from facility_apis.gateway.crypto import SealError, SecretBox, generate_key
from facility_apis.gateway.models import SCHEMA_VERSION, AllocationRow, Meta
from facility_apis.gateway.policy import Schedule, deleted_here_only
from facility_apis.gateway.store import Conflict, NotFound, Store

SECRET = "atlas-secret-token-5c7e21"
FAST_TEST = Schedule(default_poll=0.05, backoff_base=0.05, horizon=86400.0)


def _allocation(store: Store, allocation_id: int = 7, owner: str = "alice") -> int:
    owner_id = store.clients.authenticate(store.clients.add(owner))
    store.allocations.put(owner_id, allocation_id, "atlas", {"api_token": SECRET}, instrument_id=1, group_ids=[3])
    return owner_id


def _request(store: Store, **kwargs) -> int:
    return store.requests.add(7, Target("ZTF26abc", 10.0, -5.0), {"use_reduced": False}, followup_request_id=11, **kwargs)


def _claim_one(store: Store, owner: str = "w1"):
    (job,) = store.jobs.claim(owner, 10, lease=30)
    return job


def _outbox(store: Store, request_id: int) -> list[dict]:
    return store.requests.view(request_id)["deliveries"]


# -- schema and credentials ----------------------------------------------------------------


def test_a_database_of_another_schema_version_is_refused(gateway_store, database, secret_key):
    with gateway_store.database.session() as session:
        session.merge(Meta(key="schema_version", value="99"))
    url, options = database
    with pytest.raises(ConfigurationError, match=rf"schema version 99.*needs {SCHEMA_VERSION}.*docs/gateway.md"):
        Store(url, SecretBox(secret_key), **options)


def test_an_empty_database_is_refused_when_creation_is_off(tmp_path, secret_key):
    with pytest.raises(ConfigurationError, match="holds no gateway tables"):
        Store(f"sqlite:///{tmp_path / 'empty.db'}", SecretBox(secret_key), create=False)


def test_altdata_is_sealed_and_opens_only_with_its_key_and_row(gateway_store, database):
    owner = _allocation(gateway_store)
    with gateway_store.database.session() as session:
        sealed = session.get(AllocationRow, 7).sealed_altdata
    assert SECRET not in sealed and sealed.startswith("v1:")
    facility, allocation = gateway_store.allocations.get(7)
    assert (facility, allocation.altdata, allocation.group_ids) == ("atlas", {"api_token": SECRET}, (3,))
    with pytest.raises(SealError, match="do not open"):
        SecretBox(generate_key()).open(sealed, "allocation:7")
    with pytest.raises(SealError, match="allocation:8"):  # copied onto another row, it does not open
        gateway_store.box.open(sealed, "allocation:8")
    with pytest.raises(NotFound):
        gateway_store.allocations.get(7, owner_id=owner + 1000)


def test_raw_sqlite_bytes_hold_no_secret(tmp_path, secret_key):
    path = tmp_path / "raw.db"
    store = Store(f"sqlite:///{path}", SecretBox(secret_key))
    _allocation(store)
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("raw.db"))
    assert b"api_token" not in raw and SECRET.encode() not in raw


def test_another_clients_allocation_id_is_refused(gateway_store):
    _allocation(gateway_store)
    bob = gateway_store.clients.authenticate(gateway_store.clients.add("bob"))
    with pytest.raises(NotFound, match="another client"):
        gateway_store.allocations.put(bob, 7, "atlas", {"api_token": "bobs"})
    assert gateway_store.allocations.get(7)[1].altdata == {"api_token": SECRET}


def test_client_tokens_are_kept_only_as_hashes(gateway_store):
    token = gateway_store.clients.add("carol")
    with gateway_store.database.session() as session:
        stored = session.execute(sqlalchemy.text("SELECT token_hash FROM clients")).scalars().all()
    assert token not in stored and len(stored[0]) == 64
    assert gateway_store.clients.authenticate(token) is not None
    assert gateway_store.clients.authenticate(token + "x") is None and gateway_store.clients.authenticate("") is None
    with pytest.raises(Conflict):
        gateway_store.clients.add("carol")


# -- claims and leases ---------------------------------------------------------------------


def test_a_claimed_job_is_not_claimed_again_until_its_lease_expires(gateway_store):
    _allocation(gateway_store)
    request_id = _request(gateway_store, now=1000.0)
    (job,) = gateway_store.jobs.claim("w1", 10, lease=30, now=1000.0)
    assert (job.request_id, job.operation, job.request.allocation.altdata) == (request_id, "submit", {"api_token": SECRET})
    assert gateway_store.jobs.claim("w2", 10, lease=30, now=1010.0) == []
    (again,) = gateway_store.jobs.claim("w2", 10, lease=30, now=1031.0)
    assert again.lease_owner == "w2"
    # The first worker's late result is dropped: the request is the second worker's now.
    assert gateway_store.jobs.record(job, Outcome(State.SUBMITTED, remote_id="t/1", poll_after=5), can_poll=True) is False
    assert gateway_store.requests.view(request_id)["state"] == "pending"


def test_an_interrupted_submission_is_flagged_not_resent(gateway_store):
    _allocation(gateway_store)
    request_id = _request(gateway_store, now=1000.0)
    job = gateway_store.jobs.claim("w1", 10, lease=30, now=1000.0)[0]
    assert gateway_store.jobs.start(job, lease=30, now=1000.0)
    assert gateway_store.jobs.claim("w2", 10, lease=30, now=1029.0) == []
    (again,) = gateway_store.jobs.claim("w2", 10, lease=30, now=1031.0)  # w1 died after sending
    assert again.interrupted
    assert gateway_store.jobs.abandon(again, "a worker stopped while submitting")
    view = gateway_store.requests.view(request_id)
    assert (view["state"], view["status"], view["next_operation"]) == ("failed", "failed: a worker stopped while submitting", None)


def test_a_lease_renewed_as_the_call_leaves_is_kept_and_a_lost_one_refuses(gateway_store):
    _allocation(gateway_store)
    _request(gateway_store, remote_id="t/1", now=1000.0)
    job = gateway_store.jobs.claim("w1", 10, lease=30, now=1000.0)[0]
    assert gateway_store.jobs.start(job, lease=30, now=1025.0)  # waited 25 s for a slot
    assert gateway_store.jobs.claim("w2", 10, lease=30, now=1040.0) == []
    (stolen,) = gateway_store.jobs.claim("w2", 10, lease=30, now=1056.0)
    assert not gateway_store.jobs.start(job, lease=30, now=1056.0) and stolen.lease_owner == "w2"


def test_one_allocation_that_does_not_open_pauses_its_requests_and_stalls_no_other(database, secret_key):
    url, options = database
    store = Store(url, SecretBox(secret_key), schedule=FAST_TEST, **options)
    owner = _allocation(store)
    store.allocations.put(owner, 8, "atlas", {"api_token": "other-token-123"})
    broken = store.requests.add(7, Target("a", 1.0, 1.0), {}, now=1000.0)
    fine = store.requests.add(8, Target("b", 1.0, 1.0), {}, now=1001.0)
    with store.database.session() as session:  # altered at rest
        row = session.get(AllocationRow, 7)
        row.sealed_altdata = row.sealed_altdata[:-4] + ("AAAA" if not row.sealed_altdata.endswith("AAAA") else "BBBB")
    assert [job.request_id for job in store.jobs.claim("w", 10, 30, now=1002.0)] == [fine]
    view = store.requests.view(broken)
    assert (view["state"], view["status"], view["next_operation"]) == ("pending", "pending submission", "submit")  # paused, not ended
    assert view["detail"] == "paused: stored credentials of allocation:7 do not open with this key (wrong key, or altered data)"
    assert view["next_poll_at"] == 1002.0 + FAST_TEST.backoff(1) and view["deliveries"] == []  # nothing told to SkyPortal
    assert store.jobs.claim("w", 10, 30, now=1002.0 + FAST_TEST.backoff(1) / 2) == []
    store.allocations.put(owner, 7, "atlas", {"api_token": SECRET}, instrument_id=1)  # the admin stores it again
    (job,) = store.jobs.claim("w", 10, 30, now=1002.0 + FAST_TEST.backoff(1))
    assert job.request_id == broken and job.operation == "submit" and job.request.allocation.altdata == {"api_token": SECRET}
    store.close()


def test_a_database_with_foreign_tables_of_the_same_names_is_refused(tmp_path, secret_key):
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'skyportal.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE allocations (id INTEGER PRIMARY KEY, _altdata TEXT)")
    engine.dispose()
    with pytest.raises(ConfigurationError, match=r"tables named like the gateway's \(allocations\)"):
        Store(f"sqlite:///{tmp_path / 'skyportal.db'}", SecretBox(secret_key))


def test_the_sqlite_file_is_private_and_dead_messages_can_be_requeued(tmp_path, secret_key):
    store = Store(f"sqlite:///{tmp_path / 'private.db'}", SecretBox(secret_key))
    assert (tmp_path / "private.db").stat().st_mode & 0o777 == 0o600
    _allocation(store)
    _request(store)
    store.jobs.record(_claim_one(store), Outcome(State.SUBMITTED, remote_id="t/1", poll_after=60), can_poll=True)
    (delivery,) = store.outbox.claim("o", 10, 30)
    store.outbox.retry(delivery, "Insufficient permissions.", at=0.0, dead=True)
    assert store.outbox.claim("o", 10, 30) == [] and store.metrics()["outbox_dead"] == 1
    assert store.outbox.requeue_dead() == 1
    assert [d.id for d in store.outbox.claim("o", 10, 30)] == [delivery.id]
    store.close()


def test_claim_takes_due_jobs_oldest_first_and_only_due_ones(gateway_store):
    _allocation(gateway_store)
    late = _request(gateway_store, now=2000.0)
    early = _request(gateway_store, now=1000.0)
    assert [job.request_id for job in gateway_store.jobs.claim("w", 10, 3600, now=1500.0)] == [early]
    assert [job.request_id for job in gateway_store.jobs.claim("w", 10, 30, now=2500.0)] == [late]


# -- recording outcomes --------------------------------------------------------------------


def test_an_outcome_writes_state_history_transactions_and_outbox_together(gateway_store):
    _allocation(gateway_store)
    request_id = _request(gateway_store)
    job = _claim_one(gateway_store)
    assert gateway_store.jobs.record(job, Outcome(State.SUBMITTED, "ATLAS task 4", remote_id="https://x/queue/4/", poll_after=30), can_poll=True)
    view = gateway_store.requests.view(request_id)
    assert (view["state"], view["status"], view["remote_id"], view["next_operation"]) == ("submitted", "submitted: ATLAS task 4", "https://x/queue/4/", "get")
    assert [h["status"] for h in view["history"]] == ["pending submission", "submitted: ATLAS task 4"]
    assert [(d["kind"], d["delivered_at"]) for d in view["deliveries"]] == [("status", None)]


def test_an_unchanged_status_is_not_queued_again(gateway_store):
    _allocation(gateway_store)
    request_id = _request(gateway_store, remote_id="https://x/queue/4/")
    for _ in range(3):
        queued = Outcome(State.QUEUED, "3 tasks ahead", remote_id="https://x/queue/4/", poll_after=0)
        gateway_store.jobs.record(_claim_one(gateway_store), queued, can_poll=True)
    assert [h["status"] for h in gateway_store.requests.view(request_id)["history"]] == ["submitted", "queued: 3 tasks ahead"]
    assert len(_outbox(gateway_store, request_id)) == 1


def test_each_new_status_is_logged_once_after_it_is_stored_without_secrets(gateway_store, caplog):
    """An operator following ``serve``'s log sees every request's statuses as they change
    (a newcomer saw none); an unchanged status is not logged again."""
    import logging

    _allocation(gateway_store)
    request_id = _request(gateway_store, remote_id="https://x/queue/4/")
    with caplog.at_level(logging.INFO, logger="facility_apis.gateway.store.jobs"):
        for detail in ("3 tasks ahead", "3 tasks ahead", "1 task ahead"):
            gateway_store.jobs.record(_claim_one(gateway_store), Outcome(State.QUEUED, detail, remote_id="https://x/queue/4/", poll_after=0), can_poll=True)
    logged = [r.getMessage() for r in caplog.records if r.name == "facility_apis.gateway.store.jobs"]
    assert logged == [f"request {request_id}: queued: 3 tasks ahead", f"request {request_id}: queued: 1 task ahead"]
    assert SECRET not in caplog.text


def test_photometry_is_queued_before_the_status_that_announces_it(gateway_store):
    _allocation(gateway_store)
    _request(gateway_store, remote_id="https://x/queue/4/")
    photometry = Photometry(mjd=[60000.5], mag=[18.1], magerr=[0.05], limiting_mag=[20.0], filter=["atlaso"])
    outcome = Outcome(State.COMPLETED, "1 point", remote_id="https://x/queue/4/", photometry=photometry)
    gateway_store.jobs.record(_claim_one(gateway_store), outcome, can_poll=True)
    deliveries = gateway_store.outbox.claim("o", 10, 30)
    assert [d.kind for d in deliveries] == ["photometry"]  # one at a time per request, in order
    body = json.loads(deliveries[0].body)
    assert body["obj_id"] == "ZTF26abc" and body["instrument_id"] == 1 and body["group_ids"] == [3]
    gateway_store.outbox.delivered(deliveries[:1])
    (status,) = gateway_store.outbox.claim("o", 10, 30)
    assert (status.kind, json.loads(status.body), status.followup_request_id) == ("status", {"new_status": "complete: 1 point"}, 11)


def test_a_failed_delivery_waits_and_blocks_later_messages_of_its_request(gateway_store):
    _allocation(gateway_store)
    _request(gateway_store)
    gateway_store.jobs.record(_claim_one(gateway_store), Outcome(State.SUBMITTED, remote_id="t/1", poll_after=0), can_poll=True)
    gateway_store.jobs.record(_claim_one(gateway_store), Outcome(State.RUNNING, remote_id="t/1", poll_after=0), can_poll=True)
    (first,) = gateway_store.outbox.claim("o", 10, 30, now=5e9)
    gateway_store.outbox.retry(first, "SkyPortal down", at=6e9)
    assert gateway_store.outbox.claim("o", 10, 30, now=5.5e9) == []  # the second waits its turn
    assert [d.id for d in gateway_store.outbox.claim("o", 10, 30, now=6e9)] == [first.id]
    assert gateway_store.metrics(now=6e9)["outbox_backlog"] == 2


def test_cancel_before_submission_ends_at_once_and_after_is_a_conflict(gateway_store):
    _allocation(gateway_store)
    request_id = _request(gateway_store)
    assert gateway_store.requests.cancel(request_id, can_delete=True) == "deleted"
    view = gateway_store.requests.view(request_id)
    assert (view["status"], view["next_operation"]) == ("deleted", None)
    with pytest.raises(Conflict, match="already 'deleted'"):
        gateway_store.requests.cancel(request_id, can_delete=True)


def test_cancel_of_a_held_request_wins_over_a_poll_in_flight(gateway_store):
    _allocation(gateway_store)
    request_id = _request(gateway_store, remote_id="t/1")
    job = _claim_one(gateway_store)
    assert gateway_store.requests.cancel(request_id, can_delete=True) == "submitted"
    gateway_store.jobs.record(job, Outcome(State.RUNNING, remote_id="t/1", poll_after=60), can_poll=True, can_delete=True)
    view = gateway_store.requests.view(request_id)
    assert view["next_operation"] == "delete" and view["next_poll_at"] <= view["history"][-1]["at"] + 1


@pytest.mark.parametrize("state", [State.COMPLETED, State.NO_DATA, State.CANCELED, State.FAILED])
def test_a_finished_request_can_be_deleted_as_in_direct_mode(gateway_store, state):
    """SkyPortal's delete of a finished request: the facility is asked to delete it (issue 9,
    item 4), where the gateway used to answer 'already complete'."""
    _allocation(gateway_store)
    request_id = _request(gateway_store, remote_id="t/1")
    job = _claim_one(gateway_store)
    gateway_store.jobs.record(job, Outcome(state, "finished", remote_id="t/1"), can_poll=True, can_delete=True)
    assert gateway_store.requests.view(request_id)["next_operation"] is None
    assert gateway_store.requests.cancel(request_id, can_delete=True) == state.value
    view = gateway_store.requests.view(request_id)
    assert view["next_operation"] == "delete"
    with pytest.raises(Conflict, match="already"):
        gateway_store.requests.cancel(request_id, can_delete=True)  # one cancel at a time
    job = _claim_one(gateway_store)
    gateway_store.jobs.record(job, Outcome(State.FAILED, "ATLAS refused the delete: no", remote_id="t/1"), can_poll=True, can_delete=True)
    view = gateway_store.requests.view(request_id)  # a refused delete leaves the request as it was, and says so
    assert (view["state"], view["next_operation"]) == (state.value, None)
    assert view["status"] == Outcome(state, "finished", remote_id="t/1").status + "; not deleted at the facility: ATLAS refused the delete: no"
    assert gateway_store.requests.cancel(request_id, can_delete=True) == state.value  # asked again after a failed delete
    job = _claim_one(gateway_store)
    gateway_store.jobs.record(job, Outcome(State.DELETED, "task deleted", remote_id="t/1"), can_poll=True, can_delete=True)
    assert gateway_store.requests.view(request_id)["status"] == "deleted: task deleted"
    with pytest.raises(Conflict, match="already 'deleted: task deleted'"):
        gateway_store.requests.cancel(request_id, can_delete=True)


@pytest.mark.parametrize(
    ("outcome", "can_delete", "operation", "status"),
    [
        (Outcome(State.SUBMITTED, "task 9", remote_id="t/9", poll_after=60), True, "delete", "submitted: task 9"),
        (Outcome(State.SUBMITTED, "task 9", remote_id="t/9", poll_after=60), False, None, deleted_here_only("ZTF forced photometry")),
        (Outcome(State.THROTTLED, "rate limit", poll_after=5), True, None, "deleted"),
        (Outcome(State.COMPLETED, "done", remote_id="t/9"), True, "delete", "complete: done"),  # deleted once finished, as asked
        (Outcome(State.REJECTED, "bad"), True, None, "deleted"),
    ],
)
def test_a_cancel_during_a_submission_is_carried_out_when_it_lands(gateway_store, outcome, can_delete, operation, status):
    _allocation(gateway_store)
    request_id = _request(gateway_store)
    job = _claim_one(gateway_store)
    assert gateway_store.requests.cancel(request_id, can_delete=can_delete) == "pending"  # the submission is out
    with pytest.raises(Conflict):
        gateway_store.requests.cancel(request_id, can_delete=can_delete)
    gateway_store.jobs.record(job, outcome, can_poll=True, can_delete=can_delete, title="ZTF forced photometry")
    view = gateway_store.requests.view(request_id)
    assert (view["next_operation"], view["status"]) == (operation, status)


def test_a_cancel_at_a_facility_that_cannot_withdraw_deletes_here_only_once_sent(gateway_store):
    """A facility without ``delete`` (ZTF and Fink forced photometry, Gemini): a request it never
    received is truly deleted; one it holds is deleted here only, and the status says it may
    still be carried out, never a plain ``deleted`` as if the facility had withdrawn it."""
    _allocation(gateway_store)
    held = _request(gateway_store, remote_id="t/1")
    assert gateway_store.requests.cancel(held, can_delete=False, title="Fink forced photometry") == "deleted"
    view = gateway_store.requests.view(held)
    status = (
        "deleted: deleted here only: Fink forced photometry offers no way to withdraw a request, "
        "so it may still be carried out; ask the facility's team to withdraw it"
    )
    assert (view["state"], view["status"], view["next_operation"]) == ("deleted", status, None)
    assert view["history"][-1]["status"] == status and _outbox(gateway_store, held)[-1]["kind"] == "status"
    never_sent = _request(gateway_store)
    assert gateway_store.requests.cancel(never_sent, can_delete=False, title="Fink forced photometry") == "deleted"
    assert gateway_store.requests.view(never_sent)["status"] == "deleted"


def test_requests_of_other_clients_are_not_found(gateway_store):
    alice = _allocation(gateway_store)
    request_id = _request(gateway_store)
    bob = gateway_store.clients.authenticate(gateway_store.clients.add("bob"))
    assert gateway_store.requests.view(request_id, alice)["id"] == request_id
    with pytest.raises(NotFound):
        gateway_store.requests.view(request_id, bob)
    with pytest.raises(NotFound):
        gateway_store.requests.cancel(request_id, bob, can_delete=True)
    assert gateway_store.requests.newest(bob) == [] and len(gateway_store.requests.newest(alice)) == 1
    with pytest.raises(NotFound):
        gateway_store.requests.add(7, Target("x", 1.0, 1.0), {}, owner_id=bob)


def test_poke_makes_a_followed_request_due_now(gateway_store):
    _allocation(gateway_store)
    request_id = _request(gateway_store, remote_id="t/1")
    gateway_store.jobs.record(_claim_one(gateway_store), Outcome(State.RUNNING, remote_id="t/1", poll_after=3600), can_poll=True)
    assert gateway_store.jobs.claim("w", 10, 30) == []
    assert gateway_store.requests.poke(request_id)
    assert [job.request_id for job in gateway_store.jobs.claim("w", 10, 30)] == [request_id]


def test_metrics_count_by_facility_and_state(gateway_store):
    _allocation(gateway_store)
    _request(gateway_store, now=1000.0)
    _request(gateway_store, remote_id="t/2", now=1000.0)
    metrics = gateway_store.metrics(now=1010.0)
    assert metrics["requests"] == {"atlas": {"pending": 1, "submitted": 1}}
    assert (metrics["due"], metrics["oldest_due_seconds"], metrics["outbox_backlog"], metrics["outbox_dead"]) == (2, 10.0, 0, 0)


def test_a_delete_refused_while_the_facility_holds_the_request_keeps_it_followed(gateway_store):
    """A live request whose cancel the facility refuses is still at the facility: it stays
    followed, its status says the delete did not happen; an observer may ask again."""
    _allocation(gateway_store)
    request_id = _request(gateway_store, remote_id="t/1")
    job = _claim_one(gateway_store)
    gateway_store.jobs.record(job, Outcome(State.RUNNING, "observing", remote_id="t/1", poll_after=60), can_poll=True, can_delete=True)
    gateway_store.requests.cancel(request_id, can_delete=True)
    job = _claim_one(gateway_store)
    gateway_store.jobs.record(job, Outcome(State.REJECTED, "too late to cancel", remote_id="t/1"), can_poll=True, can_delete=True)
    view = gateway_store.requests.view(request_id)
    assert (view["state"], view["next_operation"]) == ("running", "get")
    assert view["status"] == "running: observing; not deleted at the facility: too late to cancel"
    assert gateway_store.requests.cancel(request_id, can_delete=True) == "running"


def test_a_delete_of_a_finished_request_failing_transiently_is_retried_keeping_its_state(gateway_store):
    """Each retry is still the delete the observer asked for (not the gateway's own cancel after
    giving up), and the request stays complete throughout."""
    _allocation(gateway_store)
    request_id = _request(gateway_store, remote_id="t/1")
    job = _claim_one(gateway_store)
    gateway_store.jobs.record(job, Outcome(State.COMPLETED, "done", remote_id="t/1"), can_poll=True, can_delete=True)
    gateway_store.requests.cancel(request_id, can_delete=True)
    clock = time.time()
    for _ in range(3):
        clock += 3600.0  # the retry is due
        (job,) = gateway_store.jobs.claim("w1", 10, lease=30, now=clock)
        gateway_store.jobs.record(job, Outcome(State.FAILED, "HTTP 503", remote_id="t/1", poll_after=30), can_poll=True, can_delete=True, now=clock)
        view = gateway_store.requests.view(request_id)
        assert (view["state"], view["status"], view["next_operation"]) == ("completed", "complete: done", "delete")
    with pytest.raises(Conflict, match="already"):
        gateway_store.requests.cancel(request_id, can_delete=True)  # the first is still being carried out
