"""KAIT: the exact post to its request script, every answer to the status an observer sees
(refusals answered with HTTP 200 included), no cancel after submission, and no password in any
record."""

from __future__ import annotations

import base64
import json

import pytest
import responses

from facility_apis.core.errors import AltdataError, ConfigurationError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.transport import Transport
from facility_apis.facilities.kait import KAITFacility
from facility_apis.testing.kait import PATH, KAITEmulator
from facility_apis.testing.network import loopback_egress

LOGIN = ("kait-obs", "kait-pw-9d2e")
TARGET = Target("ZTF26kait", 210.123456, -12.5)
URL = "https://herculesii.astro.berkeley.edu" + PATH
UNSURE = "failed: KAIT's answer does not confirm the request ({}); it may or may not have been queued: ask the KAIT team before submitting again"


@pytest.fixture
def kait():
    with KAITEmulator({LOGIN[0]: LOGIN[1]}) as emulator:
        yield emulator


def request_for(payload=None, login=LOGIN, remote_id=None):
    allocation = Allocation(6, {"username": login[0], "password": login[1]})
    return FollowupRequest(12, TARGET, allocation, payload or {"observation_choices": ["g", "r", "i"], "observation_type": "short"}, remote_id=remote_id)


def run(facility, operation, request, emulator=None):
    with Transport(backoff=0, retries=1, egress=loopback_egress(emulator) if emulator else None) as transport:
        return perform(facility, operation, request, transport)


def on(emulator):
    return KAITFacility({"base_url": emulator.url}, egress=loopback_egress(emulator))


def test_prepare_builds_the_scripts_post_exactly():
    facility = KAITFacility()
    call = facility.prepare(request_for(facility.validate_payload({"observation_choices": ["g", "r", "i"], "observation_type": "short"})))
    assert (call.method, call.url) == ("POST", URL)
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(b"kait-obs:kait-pw-9d2e").decode()
    assert call.json == {"name": "ZTF26kait", "ra": "210.12346", "dec": "-12.50000", "filters": "gri", "exposure": "short"}
    assert facility.validate_payload({}) == {"observation_choices": ["B", "V", "R", "I"], "observation_type": "long"}


def test_both_login_fields_are_required_and_the_password_is_secret():
    facility = KAITFacility()
    for missing in ("username", "password"):
        with pytest.raises(AltdataError, match=rf"\$\.{missing}: is required"):
            facility.validate_altdata({k: v for k, v in {"username": "u", "password": "p"}.items() if k != missing})
    assert KAITFacility.secret_fields() == {"password"}


def test_https_by_default_and_plain_http_only_to_loopback():
    assert KAITFacility().base_url.startswith("https://")
    with pytest.raises(ConfigurationError, match="credentials may travel only over https"):
        KAITFacility({"base_url": "http://herculesii.astro.berkeley.edu"})
    from facility_apis.core.egress import EgressPolicy

    tunnel = KAITFacility({"base_url": "http://127.0.0.1:8088"}, egress=EgressPolicy(allow=("http://127.0.0.1:8088",)))
    assert tunnel.base_url == "http://127.0.0.1:8088"  # a tunnel the deployment set up and allowed


def test_an_accepted_request_is_submitted(kait):
    outcome = run(on(kait), "submit", request_for(), kait)
    assert outcome.status == "submitted: KAIT queued gri (short): The Command Completed Successfully"
    assert outcome.remote_id == "ZTF26kait/gri/short" and outcome.poll_after is None
    assert kait.received == [{"name": "ZTF26kait", "ra": "210.12346", "dec": "-12.50000", "filters": "gri", "exposure": "short"}]
    text = json.dumps([t.as_dict() for t in outcome.transactions]) + outcome.status
    assert LOGIN[1] not in text and base64.b64encode(b"kait-obs:kait-pw-9d2e").decode() not in text
    assert outcome.transactions[0].request_headers["Authorization"] == "***"


def test_a_refusal_answered_with_200_is_a_rejection(kait):
    outcome = run(on(kait), "submit", request_for({"observation_choices": ["g"], "observation_type": "long"}), kait)
    assert outcome.state.value == "submitted"
    kait.error_text_next("Error: target below the horizon all night")
    outcome = run(on(kait), "submit", request_for(), kait)
    assert outcome.status == "rejected: KAIT refused the request: Error: target below the horizon all night"
    assert len(kait.received) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, '\n{"success": "false", "message": "unknown filter"}\n', "rejected: KAIT refused the request: unknown filter"),
        (200, "", UNSURE.format("(empty body)")),
        (200, "<html><title>It works!</title></html>", UNSURE.format("an HTML page: It works!")),
        (200, "OK", UNSURE.format("OK")),
        (500, "<html><title>500 Internal Server Error</title></html>", "failed: KAIT answered HTTP 500: an HTML page: 500 Internal Server Error"
            "; the request may have reached the facility and was not sent again"),
        (400, "bad request", "rejected: bad request"),
    ],
)
def test_every_answer_maps_to_a_status(status, body, expected):
    with responses.RequestsMock() as mock:
        mock.add("POST", URL, status=status, body=body)
        outcome = run(KAITFacility(), "submit", request_for())
    assert outcome.status == expected and outcome.poll_after is None


def test_a_wrong_login_fails_without_echoing_it(kait):
    outcome = run(on(kait), "submit", request_for(login=("kait-obs", "wrong-pw-123")), kait)
    assert outcome.status == "failed to submit: KAIT refused the credentials (HTTP 401: an HTML page: 401 Unauthorized)"
    assert "wrong-pw-123" not in json.dumps([t.as_dict() for t in outcome.transactions])


def test_a_lost_answer_is_never_posted_again(kait):
    kait.faults.add("drop", path_prefix=PATH)
    outcome = run(on(kait), "submit", request_for(), kait)
    assert outcome.status.startswith("failed: ") and "was not sent again" in outcome.status and outcome.poll_after is None
    assert len(kait.requests) == 1


def test_delete_before_submission_only(kait):
    facility = on(kait)
    assert run(facility, "delete", request_for(), kait).status == "deleted: nothing had been sent to KAIT"
    held = run(facility, "delete", request_for(remote_id="ZTF26kait/gri/short"), kait)
    assert held.status == (
        "submitted: cannot cancel at KAIT: its request script offers no cancel, so the request stays in KAIT's queue; ask the KAIT team to remove it"
    )
    assert held.remote_id == "ZTF26kait/gri/short" and kait.requests == []
