"""The gateway's lifecycle in real use (issue 9, items 4, 6, 7, 8, 10): through the gateway against
the ATLAS emulator and the SkyPortal stub, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from gateway_support import follow_and_deliver

from facility_apis.core.interface import Target
from facility_apis.core.operations import perform
from facility_apis.core.photometry import MAX_UPLOAD_ROWS
from facility_apis.core.transport import Transport
from facility_apis.facilities.atlas import ATLASFacility
from facility_apis.gateway.crypto import SecretBox
from facility_apis.gateway.policy import Schedule
from facility_apis.gateway.store import Store
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing import ATLASEmulator, SkyPortalStub
from facility_apis.testing.network import loopback_egress

ATLAS_TOKEN = "lifecycle-atlas-token-0c7d"
SP_TOKEN = "lifecycle-skyportal-token-9e2a"


@pytest.fixture
def skyportal():
    with SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as stub:
        yield stub


def one_request(store: Store, skyportal: SkyPortalStub, *, filters=("atlasc", "atlaso"), payload=None) -> int:
    owner = store.clients.authenticate(store.clients.add("skyportal"))
    store.allocations.put(owner, 1, "atlas", {"api_token": ATLAS_TOKEN}, instrument_id=1, group_ids=[1])
    skyportal.add_request(1, obj_id="ZTF26life", instrument_id=1, instrument_filters=filters)
    payload = ATLASFacility().validate_payload(payload or {})  # as the gateway's API stores it
    return store.requests.add(1, Target("ZTF26life", 150.0, -20.0), payload, followup_request_id=1)


def follow(store: Store, atlas: ATLASEmulator, skyportal: SkyPortalStub, *, lease: float = 300.0) -> None:
    settings = WorkerSettings(idle=0.05, lease=lease, egress=loopback_egress(atlas))
    worker = Worker(store, facility_config={"atlas": {"base_url": atlas.base_url, "poll_interval": 0.05}}, settings=settings)
    assert follow_and_deliver(worker, store, skyportal.url, SP_TOKEN, worker_seconds=60, outbox_seconds=60)


def calls(atlas: ATLASEmulator, method: str, fragment: str = "/queue/") -> list:
    return [r for r in atlas.requests if r.method == method and fragment in r.path]


# -- item 7: photometry SkyPortal refuses is never announced -------------------------------------


def test_photometry_beyond_skyportals_upload_limit_arrives_whole_in_several_uploads(gateway_store, skyportal):
    rows = MAX_UPLOAD_ROWS + 2000
    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, rows=rows) as atlas:
        request_id = one_request(gateway_store, skyportal)
        follow(gateway_store, atlas, skyportal)
    statuses = skyportal.statuses(1)
    assert statuses[-1].startswith(f"complete: {rows} points")
    assert len(skyportal.photometry("ZTF26life")) == rows
    uploads = [d for d in gateway_store.requests.view(request_id)["deliveries"] if d["kind"] == "photometry"]
    assert len(uploads) == 2 and all(d["delivered_at"] and not d["dead"] for d in uploads)


def test_points_skyportal_refuses_are_never_announced_as_stored(gateway_store, skyportal):
    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, rows=8) as atlas:
        request_id = one_request(gateway_store, skyportal, filters=("atlasc",))  # SkyPortal knows no atlaso here
        follow(gateway_store, atlas, skyportal)
    final = skyportal.statuses(1)[-1]
    assert not final.startswith("complete"), final
    assert final.startswith("failed: 0 of 8 points stored in SkyPortal; it refused the rest: ")
    assert "Instrument ATLAS has no filter atlaso." in final
    view = gateway_store.requests.view(request_id)
    assert view["status"] == final and view["state"] == "failed" and view["history"][-1]["status"] == final
    assert skyportal.photometry("ZTF26life") == []


# -- item 8: a permanent failure ends at once -------------------------------------------------------


@pytest.mark.parametrize("fault", ["old-layout", "expired"])
def test_a_permanent_failure_ends_the_request_at_once_with_its_reason(gateway_store, skyportal, fault):
    def old_layout(task):
        return "###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi apfit Sky Obs\n60990.1 17.5 0.05 350 12 o 0 1.1 150 -20 1 1 2 2 0 0 20 01a\n"

    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, results_for=old_layout if fault == "old-layout" else None) as atlas:
        if fault == "expired":
            atlas.faults.add("status", count=1000, path_prefix="/forcedphot/static/results/", method="GET", status=404, body="Not Found")
        one_request(gateway_store, skyportal)
        follow(gateway_store, atlas, skyportal)
        result_reads = calls(atlas, "GET", "/static/results/")
    final = skyportal.statuses(1)[-1]
    expected = {
        "old-layout": "failed: ATLAS result file lacks the column(s) mag5sig",
        "expired": "failed: ATLAS no longer has the task's result file (HTTP 404)",
    }[fault]
    assert final.startswith(expected)
    assert len(result_reads) == 1  # never read again: it cannot come right


# -- item 4: a finished request is deleted in gateway mode as in direct mode ----------------------


def test_a_finished_request_is_deleted_at_atlas_as_in_direct_mode(gateway_store, skyportal):
    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, rows=8) as atlas:
        request_id = one_request(gateway_store, skyportal)
        follow(gateway_store, atlas, skyportal)
        assert skyportal.statuses(1)[-1].startswith("complete: 8 points")
        assert gateway_store.requests.cancel(request_id, can_delete=True) == "completed"
        follow(gateway_store, atlas, skyportal)
        deletes = calls(atlas, "DELETE")
        task = atlas.task(1)
    assert len(deletes) == 1 and task is None  # archived at ATLAS, its files with it
    assert skyportal.statuses(1)[-1].startswith("deleted: task deleted at ATLAS after its results were fetched: 8 points")
    assert len(skyportal.photometry("ZTF26life")) == 8  # delivered again, stored once


# -- item 10: giving up cancels at the facility ---------------------------------------------------


def test_giving_up_cancels_the_task_at_atlas_and_says_so(database, secret_key, skyportal):
    url, options = database
    schedule = Schedule(default_poll=0.05, backoff_base=0.05, backoff_cap=0.2, horizon=0.5, cancel_horizon=30.0)
    store = Store(url, SecretBox(secret_key), schedule=schedule, **options)
    try:
        with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, queue_time=3600.0) as atlas:  # never starts
            one_request(store, skyportal)
            follow(store, atlas, skyportal)
            deletes = calls(atlas, "DELETE")
            left = atlas.tasks_of("gw")
    finally:
        store.close()
    statuses = skyportal.statuses(1)
    assert len(deletes) == 1 and left == []  # no longer counts against the account's queue
    assert statuses[-2].startswith("failed: gave up after") and statuses[-2].endswith("; canceling it at the facility")
    assert statuses[-1].startswith("failed: gave up after") and statuses[-1].endswith("; task canceled at ATLAS")
    assert "(last: next in the ATLAS queue)" in statuses[-1]


# -- item 6: an interrupted submission is looked up, not abandoned --------------------------------


def interrupt_submission(store: Store, atlas: ATLASEmulator, *, reached: bool) -> None:
    """A worker claims the submission, marks it as leaving, (maybe) sends it, then dies."""
    (job,) = store.jobs.claim("doomed-worker", 1, lease=0.2)
    assert store.jobs.start(job, lease=0.2)
    if reached:
        facility = ATLASFacility({"base_url": atlas.base_url}, egress=loopback_egress(atlas))
        with Transport(egress=loopback_egress(atlas)) as transport:
            assert perform(facility, "submit", job.request, transport).remote_id  # ATLAS queued it; the answer is lost
    time.sleep(0.3)  # the dead worker's lease runs out


@pytest.mark.parametrize("reached", [True, False], ids=["reached-atlas", "never-left"])
def test_an_interrupted_submission_is_found_or_resubmitted_never_sent_twice(gateway_store, skyportal, reached):
    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}, rows=8) as atlas:
        one_request(gateway_store, skyportal)
        interrupt_submission(gateway_store, atlas, reached=reached)
        follow(gateway_store, atlas, skyportal)
        posts = calls(atlas, "POST")
        lists = [r for r in atlas.requests if r.method == "GET" and r.path.endswith("/queue/")]
    statuses = skyportal.statuses(1)
    assert len(lists) >= 1  # the account's task list was read
    assert len(posts) == 1  # sent once, whether the lost attempt had reached ATLAS or not
    assert statuses[-1].startswith("complete: 8 points")
    if reached:
        assert statuses[0] == "submitted: ATLAS task 1 (found in ATLAS's list after an interrupted submission)"
    else:
        assert statuses[0] == "submitted: ATLAS task 1"


def test_without_a_lookup_an_interrupted_submission_is_given_up_saying_why(gateway_store, skyportal, monkeypatch):
    implemented = ATLASFacility.implements()
    monkeypatch.setattr(ATLASFacility, "implements", classmethod(lambda cls: {**implemented, "find": False}))
    with ATLASEmulator(tokens={ATLAS_TOKEN: "gw"}) as atlas:
        one_request(gateway_store, skyportal)
        interrupt_submission(gateway_store, atlas, reached=False)
        follow(gateway_store, atlas, skyportal)
        posts = calls(atlas, "POST")
    assert posts == []
    assert skyportal.statuses(1) == ["failed: a worker stopped while submitting; the request may have reached ATLAS forced photometry and was not sent again"]

