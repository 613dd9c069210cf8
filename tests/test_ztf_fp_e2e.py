"""ZTF forced photometry end to end through the gateway: the store, a worker and the outbox against
the IPAC emulator and the SkyPortal stub, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from gateway_support import follow_and_deliver

from facility_apis.core.interface import Target
from facility_apis.facilities.ztf_fp import ZTFForcedPhotometryFacility
from facility_apis.facilities.ztf_fp.lightcurve import parse_lightcurve
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing.ipac import IPACEmulator
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal import SkyPortalStub

SP_TOKEN = "ztf-e2e-skyportal-token-51c2"
LOGIN = ("ztffps-e2e", "Shared-Pw-e2e!")
EMAIL, USERPASS = "e2e.observer@example.org", "acct-pw-e2e-77"
ALTDATA = {"ipac_http_user": LOGIN[0], "ipac_http_password": LOGIN[1], "ipac_email": EMAIL, "ipac_userpass": USERPASS}
SECRETS = (LOGIN[1], EMAIL, USERPASS)
PERIOD = 0.6  # the emulated job list is refreshed every 0.6 s instead of every hour


@pytest.fixture
def ipac():
    with IPACEmulator(http_login=LOGIN, accounts={EMAIL: USERPASS}, queue_time=0.3, run_time=0.4, list_period=PERIOD) as emulator:
        yield emulator


@pytest.fixture
def skyportal():
    with SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as stub:
        yield stub


def follow(store, ipac, skyportal) -> bool:
    config = {"ztf_fp": {"base_url": ipac.url, "list_period": PERIOD, "list_delay": 0.05, "busy_wait": 0.3}}
    worker = Worker(store, facility_config=config, settings=WorkerSettings(idle=0.05, egress=loopback_egress(ipac)))
    return follow_and_deliver(worker, store, skyportal.url, SP_TOKEN, worker_seconds=60)


def add(store, skyportal, followup_id, obj_id, payload):
    owner = store.clients.authenticate(store.clients.add(f"client{followup_id}"))
    store.allocations.put(owner, followup_id, "ztf_fp", ALTDATA, instrument_id=4, group_ids=[2])
    skyportal.add_request(followup_id, obj_id=obj_id, instrument_id=4, instrument_filters=["ztfg", "ztfr", "ztfi"], instrument_name="ZTF")
    target = Target(obj_id, 35.2, 12.4)
    return store.requests.add(followup_id, target, ZTFForcedPhotometryFacility().validate_payload(payload, target), followup_request_id=followup_id)


def statuses_in_store(store, request_id):
    return [entry["status"] for entry in store.requests.view(request_id)["history"]][1:]


def test_a_request_goes_from_a_busy_database_to_photometry_at_skyportal(gateway_store, ipac, skyportal):
    ipac.busy_next(1)  # the first submission meets "database is busy"
    request_id = add(gateway_store, skyportal, 31, "ZTF26ztfe2e", {"start_date": "2026-08-01", "end_date": "2026-11-01", "keep_flagged": True})
    assert follow(gateway_store, ipac, skyportal)

    sent = skyportal.statuses(31)
    assert sent == statuses_in_store(gateway_store, request_id)  # every change delivered, in order, once
    assert len(sent) == len(set(sent))
    assert sent[0] == "pending submission: throttled, will retry"
    assert sent[1].startswith("submitted: IPAC queued a job for ra 35.2000000, dec 12.4000000, JD ")
    assert sent[-1].startswith("complete: ") and " from IPAC job 1001" in sent[-1]
    # The photometry SkyPortal holds is what the job's light curve gives under the request's policy.
    (job,) = ipac.jobs
    expected = parse_lightcurve(job.lightcurve, keep_flagged=True)
    points = skyportal.photometry("ZTF26ztfe2e")
    assert len(points) == len(expected) > 0
    assert sorted(p["mjd"] for p in points) == sorted(expected.mjd)
    assert {p["filter"] for p in points} == {"ztfg", "ztfr", "ztfi"}
    assert all(p["origin"] == "fp" and p["magsys"] == "ab" for p in points)
    assert any(p["mag"] is None for p in points) and any(p["mag"] is not None for p in points)
    # Two job submissions reached IPAC's CGI (the busy one queued nothing), and the list was read at
    # most once per refresh, apart from the retry that follows a busy answer.
    assert len([r for r in ipac.requests if r.path.endswith("requestForcedPhotometry.cgi")]) == 2
    refreshes = [int(t // PERIOD) for t in ipac.list_reads]
    assert len(refreshes) == len(set(refreshes)) and len(refreshes) >= 1
    # No account secret in the store's records, SkyPortal's messages, or the database file.
    view = gateway_store.requests.view(request_id)
    text = repr(view) + repr(sent) + repr(points)
    assert all(secret not in text for secret in SECRETS)
    urls = [t["request"]["url"] for t in view["transactions"]]
    assert urls and all("userpass=***" in url and "email=***" in url for url in urls if ".cgi" in url)
    assert view["remote_id"].endswith("&reqId=1001")


def test_a_job_without_epochs_ends_as_no_data_and_a_failed_job_as_failed(gateway_store, ipac, skyportal):
    future = add(gateway_store, skyportal, 41, "ZTF26nodata", {"start_date": "2027-06-01", "end_date": "2027-06-30"})
    assert follow(gateway_store, ipac, skyportal)
    ipac.exit_next(64)
    failing = add(gateway_store, skyportal, 42, "ZTF26boom", {"start_date": "2026-09-01", "end_date": "2026-09-30"})
    assert follow(gateway_store, ipac, skyportal)
    assert [job.exitcode for job in ipac.jobs] == [63, 64]
    no_epochs = "no records (epochs) were returned for this position and window"
    assert skyportal.statuses(41)[-1] == f"complete: no data: IPAC job 1001 ended with exit code 63: {no_epochs}"
    assert skyportal.statuses(42)[-1] == "failed: IPAC job 1002 ended with exit code 64: catastrophic error; submit a new request"
    assert skyportal.statuses(41) == statuses_in_store(gateway_store, future) and skyportal.statuses(42) == statuses_in_store(gateway_store, failing)
    assert skyportal.photometry("ZTF26nodata") == skyportal.photometry("ZTF26boom") == []
