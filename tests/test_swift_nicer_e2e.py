"""Swift and NICER end to end: the gateway's worker and outbox against the Swift ToO API, UKSSDC
and ARK emulators and the SkyPortal stub (SQLite and PostgreSQL stores): every status arrives at
SkyPortal once and in order, XRT products end listed with their URLs, nothing is sent twice, and
no secret reaches the store."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from gateway_support import follow_and_deliver

from facility_apis.core.interface import Target
from facility_apis.core.registry import default_registry
from facility_apis.gateway.store import Store
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing import SkyPortalStub
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.nicer import ARKNicerEmulator
from facility_apis.testing.swift import SwiftTOOEmulator, XRTProductsEmulator

SP_TOKEN = "e2e-skyportal-token-51a"
SWIFT_SECRET = "e2e-swift-shared-secret-77"
ARK_PASSWORD = "e2e ark password 3f"
SWIFT = {"username": "swift_observer", "secret": SWIFT_SECRET, "XRT_UserID": "observer@example.org"}
NICER = {"username": "nicer_observer", "password": ARK_PASSWORD}
SOURCE = ("ZTF26e2e", 150.0, -20.0)


@pytest.fixture
def services():
    with (
        SwiftTOOEmulator({"swift_observer": SWIFT_SECRET}, decide_after=0.3, visit_seconds=0.3) as too_api,
        XRTProductsEmulator(step_seconds=0.15) as ukssdc,
        ARKNicerEmulator({"nicer_observer": ARK_PASSWORD}) as ark,
        SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as skyportal,
    ):
        yield too_api, ukssdc, ark, skyportal


def seed(store: Store, skyportal: SkyPortalStub, facility: str, altdata: dict, payload: dict, followup_id: int) -> int:
    owner = store.clients.authenticate(store.clients.add(f"client{followup_id}"))
    store.allocations.put(owner, followup_id, facility, altdata, instrument_id=1, group_ids=[1])
    skyportal.add_request(followup_id, obj_id=SOURCE[0], instrument_id=1)
    validated = default_registry().get(facility)().validate_payload(payload)
    return store.requests.add(followup_id, Target(*SOURCE), validated, followup_request_id=followup_id)


def follow_through(store: Store, services) -> bool:
    too_api, ukssdc, ark, skyportal = services
    config = {
        "swift": {"too_api_url": too_api.api_url, "xrt_url": ukssdc.base_url, "poll_interval": 0.1, "too_poll_interval": 0.1},
        "nicer": {"base_url": ark.base_url},
    }
    worker = Worker(store, facility_config=config, settings=WorkerSettings(idle=0.05, egress=loopback_egress(too_api, ukssdc, ark)))
    return follow_and_deliver(worker, store, skyportal.url, SP_TOKEN)


def in_order(observed: list[str], expected: list[str]) -> bool:
    """Whether ``observed`` is ``expected`` with some entries left out (polls fall where they
    fall against the emulators' clocks), the rest in order."""
    remaining = iter(expected)
    return all(any(status == candidate for candidate in remaining) for status in observed)


def history(store: Store, request_id: int) -> list[str]:
    return [entry["status"] for entry in store.requests.view(request_id)["history"]][1:]  # SkyPortal set the first itself


def stored_text(store: Store, request_id: int) -> str:
    return json.dumps(store.requests.view(request_id), default=str)


def test_a_too_an_xrt_job_and_an_archive_query_through_the_gateway(gateway_store, services):
    too_api, ukssdc, _, skyportal = services
    too_api.add_observation("00012345001", 150.0, -20.0, datetime(2026, 3, 2, 10))
    too_payload = {"request_type": "XRT/UVOT ToO", "monitoring_freq": 0.5, "exposure_counts": 4}
    too_id = seed(gateway_store, skyportal, "swift", SWIFT, too_payload, 1)
    xrt_id = seed(gateway_store, skyportal, "swift", SWIFT, {"request_type": "XRT API", "T0": "2026-11-20 12:00:00"}, 2)
    data_id = seed(gateway_store, skyportal, "swift", {}, {"request_type": "XRT/UVOT/BAT Data", "start_date": "2026-01-01", "end_date": "2026-12-01"}, 3)
    assert follow_through(gateway_store, services)

    sent = skyportal.statuses(1)
    assert sent == history(gateway_store, too_id) and len(set(sent)) == len(sent), "every status once, in order"
    assert in_order(sent, [
        "submitted: Swift accepted ToO 20001",
        "submitted: ToO 20001 awaits the Swift team's decision",
        "queued: the Swift team approved ToO 20001: 4 calendar windows, 0.0 ks observed of 16.0 ks",
        "running: the Swift team approved ToO 20001: 4 calendar windows, 4.0 ks observed of 16.0 ks",
        "running: the Swift team approved ToO 20001: 4 calendar windows, 8.0 ks observed of 16.0 ks",
        "running: the Swift team approved ToO 20001: 4 calendar windows, 12.0 ks observed of 16.0 ks",
        "complete: ToO 20001 done: 16.0 ks observed of 16.0 ks; data at https://www.swift.psu.edu/toop",
    ]) and sent[0].startswith("submitted: Swift accepted") and sent[-1].startswith("complete: ToO 20001 done")  # fmt: skip
    assert len(too_api.toos) == 1 and too_api.toos[0]["monitoring_freq"] == "0.5 days" and too_api.toos[0]["num_of_visits"] == "4"

    sent = skyportal.statuses(2)
    assert sent == history(gateway_store, xrt_id) and len(set(sent)) == len(sent), "every status once, in order"
    assert sent[0] == "submitted: UKSSDC XRT products job 4201"
    assert sent[-1] == "complete: 5 products (light curve, spectrum, standard position, enhanced position, astrometric position)"
    frames = gateway_store.requests.view(xrt_id)["frames"]
    assert [f["url"] for f in frames] == [f"{ukssdc.base_url}/tprods/USERPROD_4201/{s}.tar.gz" for s in ("lc", "spec", "psf", "enh", "xastrom")]
    assert len([r for r in ukssdc.requests if r.path.endswith("run_userobject.php")]) == 1

    assert skyportal.statuses(3) == history(gateway_store, data_id) == [
        "complete: 1 Swift observation within 5 arcmin from 2026-01-01 to 2026-12-01: 00012345001 (2026-03-02, 1.8 ks)"
    ]
    assert [f["name"] for f in gateway_store.requests.view(data_id)["frames"]] == ["00012345001"]
    for request_id in (too_id, xrt_id, data_id):
        assert SWIFT_SECRET not in stored_text(gateway_store, request_id)


def test_refused_too_and_failed_products_reach_skyportal_as_such(gateway_store, services):
    too_api, ukssdc, _, skyportal = services
    too_api.reject_next(["The target is within 46 degrees of the Sun"])
    ukssdc.fail_product("spec")
    too_id = seed(gateway_store, skyportal, "swift", SWIFT, {"request_type": "XRT/UVOT ToO"}, 1)
    xrt_id = seed(gateway_store, skyportal, "swift", SWIFT, {"request_type": "XRT API"}, 2)
    assert follow_through(gateway_store, services)
    assert skyportal.statuses(1) == history(gateway_store, too_id) == ["rejected: The target is within 46 degrees of the Sun"]
    assert len([r for r in too_api.requests if r.method == "GET"]) == 0, "a rejected ToO is not followed"
    assert too_api.toos == []
    assert skyportal.statuses(2)[-1] == (
        "complete: 4 products (light curve, standard position, enhanced position, astrometric position); "
        "not built: spectrum: Failed: the product could not be built"
    )
    assert len(gateway_store.requests.view(xrt_id)["frames"]) == 4


def test_a_lost_too_answer_is_never_sent_again(gateway_store, services):
    too_api, _, _, skyportal = services
    too_api.answer_next(502, "<html><head><title>502 Bad Gateway</title></head></html>")
    request_id = seed(gateway_store, skyportal, "swift", SWIFT, {"request_type": "XRT/UVOT ToO"}, 1)
    assert follow_through(gateway_store, services)
    (status,) = skyportal.statuses(1)
    assert status.startswith("failed: 127.0.0.1:") and "answered HTTP 502" in status and "may have reached" in status
    assert len(too_api.toos) == 1, "the ToO reached Swift once and was not sent again"
    assert gateway_store.requests.view(request_id)["state"] == "failed"


def test_nicer_through_the_gateway_verified_then_submitted_once(gateway_store, services):
    _, _, ark, skyportal = services
    payload = {"SpecificTimeRangeObservation": "Y", "TimeRangeStart": "2036-12-01", "TimeRangeEnd": "2036-12-05"}
    request_id = seed(gateway_store, skyportal, "nicer", NICER, payload, 1)
    assert follow_through(gateway_store, services)
    (status,) = skyportal.statuses(1)
    assert status.startswith("submitted: ARK confirmed the NICER ToO request") and status == history(gateway_store, request_id)[0]
    assert len(ark.submissions) == 1 and ark.submissions[0]["Specific Time Range Start"] == "65028.0"
    assert ark.logins == [("nicer_observer", "body")]
    assert ARK_PASSWORD not in stored_text(gateway_store, request_id) and "e2e+ark+password" not in stored_text(gateway_store, request_id)


def test_nicer_verification_failure_and_an_unrecognised_confirmation(gateway_store, services):
    _, _, ark, skyportal = services
    ark.fail_verification_next(["Declination: out of range"])
    first = seed(gateway_store, skyportal, "nicer", NICER, {}, 1)
    assert follow_through(gateway_store, services)
    refused = "rejected: NICER's form did not verify: the following problems: Declination: out of range"
    assert skyportal.statuses(1) == history(gateway_store, first) == [refused]
    ark.page_next("<html><head><title>Thank you</title></head><body>Your request is in the queue.</body></html>", step="submit")
    second = seed(gateway_store, skyportal, "nicer", NICER, {}, 2)
    assert follow_through(gateway_store, services)
    (status,) = skyportal.statuses(2)
    assert status.startswith("failed: ARK answered the submission with HTTP 200 and a page this package does not recognise (Thank you)")
    assert len(ark.submissions) == 1 and gateway_store.requests.view(second)["state"] == "failed"
