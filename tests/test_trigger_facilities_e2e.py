"""ZTF triggering, KAIT, WINTER and SPRING end to end through the gateway: the store, a worker and
the outbox against each emulator and the SkyPortal stub, on SQLite and PostgreSQL. Every status
reaches SkyPortal in order, once; a cancel goes to the facility where it can; no secret is
stored."""

from __future__ import annotations

import json

import pytest
from gateway_support import follow_and_deliver

from facility_apis.core.interface import Target
from facility_apis.core.registry import default_registry
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing.kait import KAITEmulator
from facility_apis.testing.kowalski import KowalskiEmulator
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal import SkyPortalStub
from facility_apis.testing.winter import WinterToOEmulator

SP_TOKEN = "trigger-e2e-skyportal-token-0b7e"
KOWALSKI_TOKEN = "trigger-e2e-kowalski-token-93aa"
KAIT_LOGIN = ("kait-e2e", "kait-e2e-pw-41")
WINTER_KEY, WINTER_PASSWORD = "winter-e2e-key-7c", "winter-e2e-pw-2f"
ALTDATA = {
    "ztf_trigger": {"access_token": KOWALSKI_TOKEN},
    "kait": {"username": KAIT_LOGIN[0], "password": KAIT_LOGIN[1]},
    "winter": {"program_name": "2026A000", "program_api_key": WINTER_KEY, "username": "observer", "password": WINTER_PASSWORD},
    "spring": {"program_name": "2026A000", "program_api_key": WINTER_KEY, "username": "observer", "password": WINTER_PASSWORD},
}
SECRETS = (KOWALSKI_TOKEN, KAIT_LOGIN[1], WINTER_KEY, WINTER_PASSWORD)


@pytest.fixture
def services():
    with (
        KowalskiEmulator({KOWALSKI_TOKEN: "admin"}) as kowalski,
        KAITEmulator({KAIT_LOGIN[0]: KAIT_LOGIN[1]}) as kait,
        WinterToOEmulator({"observer": WINTER_PASSWORD}, {"2026A000": WINTER_KEY}) as winter,
        SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as skyportal,
    ):
        yield kowalski, kait, winter, skyportal


def drain(store, services) -> bool:
    kowalski, kait, winter, skyportal = services
    config = {"ztf_trigger": {"base_url": kowalski.url}, "kait": {"base_url": kait.url}, "winter": {"base_url": winter.url}, "spring": {"base_url": winter.url}}
    worker = Worker(store, facility_config=config, settings=WorkerSettings(idle=0.05, egress=loopback_egress(kowalski, kait, winter)))
    return follow_and_deliver(worker, store, skyportal.url, SP_TOKEN, worker_seconds=60)


def add(store, skyportal, followup_id, facility, payload, obj_id="ZTF26trige2e"):
    owner = store.clients.authenticate(store.clients.add(f"client{followup_id}"))
    store.allocations.put(owner, followup_id, facility, ALTDATA[facility], instrument_id=4, group_ids=[2], pi="M. Kasliwal")
    skyportal.add_request(followup_id, obj_id=obj_id, instrument_id=4, instrument_filters=["ztfg", "ztfr"], instrument_name=facility.upper())
    target = Target(obj_id, 210.5, 12.25)
    validated = default_registry().get(facility)().validate_payload(payload, target)
    return store.requests.add(followup_id, target, validated, followup_request_id=followup_id, requester="observer")


def history(store, request_id):
    return [entry["status"] for entry in store.requests.view(request_id)["history"]][1:]


def assert_nothing_secret(store, request_id, skyportal, followup_id):
    text = json.dumps(store.requests.view(request_id), default=str) + json.dumps(skyportal.statuses(followup_id))
    assert all(secret not in text for secret in SECRETS)


def test_a_ztf_trigger_whose_answer_was_lost_is_held_once_then_canceled(gateway_store, services):
    kowalski, _, _, skyportal = services
    kowalski.lose_answer_next()
    request_id = add(gateway_store, skyportal, 51, "ztf_trigger", {"field_ids": [528], "filters": ["ztfg"], "queue_name": "gw51"})
    assert drain(gateway_store, services)
    assert list(kowalski.queues) == ["ToO_gw51"]
    gateway_store.requests.cancel(request_id, can_delete=True)
    assert drain(gateway_store, services)
    sent = skyportal.statuses(51)
    assert sent == history(gateway_store, request_id) and len(sent) == len(set(sent))
    assert sent == [
        "submitted: ZTF queue ToO_gw51 was already in ZTF's scheduler with these exposures (an earlier attempt of this request reached Kowalski)",
        "deleted: queue ToO_gw51 removed from ZTF's scheduler",
    ]
    assert kowalski.queues == {} and [r.method for r in kowalski.requests] == ["PUT", "PUT", "GET", "GET", "DELETE"]
    assert_nothing_secret(gateway_store, request_id, skyportal, 51)


def test_a_kait_request_is_submitted_and_a_cancel_says_kait_cannot(gateway_store, services):
    _, kait, _, skyportal = services
    request_id = add(gateway_store, skyportal, 52, "kait", {"observation_choices": ["B", "V"]})
    assert drain(gateway_store, services)
    gateway_store.requests.cancel(request_id, can_delete=True)
    assert drain(gateway_store, services)
    sent = skyportal.statuses(52)
    assert sent == history(gateway_store, request_id)
    assert sent == [
        "submitted: KAIT queued BV (long): The Command Completed Successfully",
        "submitted: KAIT queued BV (long): The Command Completed Successfully; not deleted at the facility: "
        "cannot cancel at KAIT: its request script offers no cancel, so the request stays in KAIT's queue; ask the KAIT team to remove it",
    ]
    assert len(kait.received) == 1 and gateway_store.requests.view(request_id)["next_operation"] is None
    assert_nothing_secret(gateway_store, request_id, skyportal, 52)


@pytest.mark.parametrize("camera", ["winter", "spring"])
def test_winter_and_spring_validate_trigger_and_delete(gateway_store, services, camera):
    _, _, winter, skyportal = services
    checked = add(gateway_store, skyportal, 53, camera, {"filter": "Y", "validate_only": True})
    triggered = add(gateway_store, skyportal, 54, camera, {"filter": "Hs"})
    assert drain(gateway_store, services)
    (schedule,) = winter.schedules
    assert gateway_store.requests.view(triggered)["next_operation"] is None  # not followed, so never given up nor canceled by the gateway
    gateway_store.requests.cancel(triggered, can_delete=True)
    assert drain(gateway_store, services)
    title = camera.upper()
    (validated,) = skyportal.statuses(53)
    assert validated.startswith(f"pending submission: validated by {title} only, nothing queued (") and "submitted" not in validated
    assert skyportal.statuses(54) == history(gateway_store, triggered)
    first, last = skyportal.statuses(54)
    assert first.startswith(f"submitted: {title} queued schedule {schedule} (") and last == f"deleted: {title} deleted schedule {schedule} (Deleted {schedule})"
    assert winter.schedules == {}
    for request_id, followup_id in ((checked, 53), (triggered, 54)):
        assert_nothing_secret(gateway_store, request_id, skyportal, followup_id)
        urls = [t["request"]["url"] for t in gateway_store.requests.view(request_id)["transactions"]]
        assert urls and all("program_api_key=***" in url for url in urls)
