"""Tests of the example facility: exact payloads and status mapping with ``responses``."""

import json

import responses

from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.transport import Transport
from facility_apis.facilities.example import ExampleFacility

KEY = "key-never-shown-7f3a"
BASE = "https://queue.example.org/api"
PAYLOAD = {"start_date": "2026-11-21", "filters": ["g"], "exposure_time": 60}


def make_request(remote_id=None, payload=PAYLOAD):
    allocation = Allocation(1, {"api_key": KEY, "proposal_id": "EX2026-001"})
    return FollowupRequest(7, Target("ZTF26abc", 150.0, -20.0), allocation, payload, remote_id=remote_id)


def run(operation, request):
    with Transport(backoff=0) as transport:
        return perform(ExampleFacility(), operation, request, transport)


@responses.activate
def test_submit_sends_the_documented_body_and_hides_the_key():
    responses.post(f"{BASE}/requests", status=201, json={"id": 42})
    outcome = run("submit", make_request())
    assert outcome.status == "submitted: request 42"
    assert outcome.remote_id == "42"
    sent = json.loads(responses.calls[0].request.body)
    assert sent["proposal"] == "EX2026-001" and sent["filters"] == ["g"]
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    (record,) = outcome.transactions
    assert record.request_headers["Authorization"] == "***"
    assert KEY not in repr([t.as_dict() for t in outcome.transactions])


@responses.activate
def test_defaults_fill_the_payload():
    responses.post(f"{BASE}/requests", status=201, json={"id": 1})
    run("submit", make_request(payload={}))
    sent = json.loads(responses.calls[0].request.body)
    assert sent["filters"] == ["r"] and sent["exposure_time"] == 300 and sent["start"]


@responses.activate
def test_refused_key_and_rejection_and_throttle():
    responses.post(f"{BASE}/requests", status=401)
    assert run("submit", make_request()).status == "failed to submit: invalid altdata: $.api_key: was refused by the observatory (HTTP 401)"
    responses.replace(responses.POST, f"{BASE}/requests", status=400, json={"error": "target below the horizon"})
    assert run("submit", make_request()).status == "rejected: target below the horizon"
    responses.replace(responses.POST, f"{BASE}/requests", status=429, headers={"Retry-After": "30"})
    outcome = run("submit", make_request())
    assert (outcome.state, outcome.poll_after) == (State.THROTTLED, 30)
    assert outcome.status == "failed to submit: rate limit reached at queue.example.org; retry in 30 s"


def test_invalid_payload_is_rejected_before_any_call():
    outcome = run("submit", make_request(payload={**PAYLOAD, "exposure_time": 0}))
    assert outcome.status == "rejected: invalid payload: $.exposure_time: must be greater than 0"
    assert outcome.transactions == ()


@responses.activate
def test_get_maps_the_observatory_states():
    for remote, status in [("SCHEDULED", "queued: scheduled"), ("OBSERVING", "running: observing"), ("COMPLETED", "complete: completed")]:
        responses.upsert(responses.GET, f"{BASE}/requests/42", json={"state": remote})
        assert run("get", make_request(remote_id="42")).status == status
    responses.upsert(responses.GET, f"{BASE}/requests/42", status=404)
    assert run("get", make_request(remote_id="42")).state is State.CANCELED


@responses.activate
def test_delete():
    responses.delete(f"{BASE}/requests/42", status=204)
    assert run("delete", make_request(remote_id="42")).status == "deleted: canceled at the observatory"
