"""Handing ATLAS follow-ups to the gateway: its HTTP contract, mocked with ``responses``."""

import asyncio
import json

import pytest
import requests
import responses
from responses import matchers

from facility_apis.core.errors import FacilityError
from facility_apis.core.timeutil import DATE_RULE
from facility_apis.skyportal import ATLASAPI, configure, reset
from facility_apis.testing.skyportal_models import AsyncSession, make_request, use_fake_models

GATEWAY = "https://gateway.test"
GATEWAY_TOKEN = "gw-token-7c1d9e"
ATLAS_TOKEN = "gw-atlas-token-0b3f"
PAYLOAD = {"start_date": "2026-10-01", "end_date": "2026-10-31", "request_type": "forced_photometry"}
ALLOCATION_URL = f"{GATEWAY}/api/allocations/5"
REQUEST_URL = f"{GATEWAY}/api/followup_request"
AUTH = matchers.header_matcher({"Authorization": f"token {GATEWAY_TOKEN}"})


@pytest.fixture(autouse=True)
def gateway():
    configure(gateway_url=GATEWAY + "/", gateway_token=GATEWAY_TOKEN)
    with use_fake_models(), responses.RequestsMock() as mock:
        yield mock
    reset()


def run(coroutine):
    return asyncio.run(coroutine)


def request_and_session(**kwargs):
    request = make_request(altdata={"api_token": ATLAS_TOKEN, "base_url": ""}, payload=PAYLOAD, **kwargs)
    return request, AsyncSession(request)


def stored(session, request):
    return json.dumps([[t.request, t.response] for t in session.transactions] + [request.status])


def accept(mock, gateway_id=17):
    mock.put(ALLOCATION_URL, json={"status": "success", "data": {"id": 5}}, match=[AUTH])
    mock.post(REQUEST_URL, json={"status": "success", "data": {"id": gateway_id, "state": "pending"}}, match=[AUTH])


def test_submit_hands_off_with_the_contract_bodies(gateway):
    accept(gateway)
    request, session = request_and_session()
    run(ATLASAPI.submit(request, session, refresh_source=True))

    assert request.status == "submitted to gateway (request 17)"
    put, post = (json.loads(call.request.body) for call in gateway.calls)
    assert put == {
        "facility": "atlas",
        "altdata": {"api_token": ATLAS_TOKEN},
        "pi": "A. PI",
        "proposal_id": "P-1",
        "instrument_id": 3,
        "instrument_name": "ATLAS",
        "filters": ["atlasc", "atlaso"],
        "group_ids": [2, 7],
    }
    assert post == {
        "allocation_id": 5,
        "followup_request_id": 11,
        "obj_id": "ZTF26skyp",
        "target": {"id": "ZTF26skyp", "ra": 210.5, "dec": 12.25},
        "payload": {"start_date": "2026-10-01", "end_date": "2026-10-31", "use_reduced": False, "snr_threshold": 3},
        "requester": "observer",
    }
    put_record, post_record = session.transactions
    assert put_record.request["method"] == "PUT" and post_record.request["url"] == REQUEST_URL
    assert post_record.response["gateway_request_id"] == 17
    text = stored(session, request)
    assert GATEWAY_TOKEN not in text and ATLAS_TOKEN not in text
    assert put_record.request["headers"]["Authorization"] == "***"


def test_refused_altdata_is_a_resubmittable_failure_naming_the_errors(gateway):
    gateway.put(
        ALLOCATION_URL,
        status=400,
        json={
            "status": "error",
            "message": f"invalid altdata (token {ATLAS_TOKEN} refused)",
            "data": {"errors": [{"path": "$.api_token", "message": "is not known to ATLAS"}, "check the account"]},
        },
    )
    request, session = request_and_session()
    run(ATLASAPI.submit(request, session))
    assert request.status == (
        "failed to submit: the gateway refused PUT /api/allocations/5: invalid altdata (token *** refused) "
        "($.api_token: is not known to ATLAS; check the account)"
    )
    assert len(session.transactions) == 1
    assert ATLAS_TOKEN not in stored(session, request)


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        (lambda m: m.post(REQUEST_URL, body=requests.ConnectionError()), "failed to submit: connection to gateway.test failed"),
        (
            lambda m: m.post(REQUEST_URL, status=429, headers={"Retry-After": "30"}, json={}),
            "failed to submit: rate limit reached at gateway.test; retry in 30 s",
        ),
        (lambda m: m.post(REQUEST_URL, status=500, body="<html>boom</html>"), "failed to submit: the gateway answered HTTP 500"),
        (
            lambda m: m.post(REQUEST_URL, json={"status": "success", "data": {}}),
            "failed to submit: the gateway accepted the request but its answer names no id",
        ),
    ],
)
def test_gateway_failures_are_resubmittable(gateway, setup, status):
    gateway.put(ALLOCATION_URL, json={"status": "success", "data": {"id": 5}})
    setup(gateway)
    request, session = request_and_session()
    run(ATLASAPI.submit(request, session))
    assert request.status.startswith(status)
    assert all("gateway_request_id" not in t.response for t in session.transactions)
    assert GATEWAY_TOKEN not in stored(session, request)


def test_bad_payload_is_rejected_before_any_call(gateway):
    request, session = request_and_session()
    request.payload = {"start_date": "yesterday", "end_date": "2026-10-31"}
    run(ATLASAPI.submit(request, session))
    assert request.status == f"rejected: invalid payload: $.start_date: must be {DATE_RULE}"
    assert len(gateway.calls) == 0


def test_delete_cancels_at_the_gateway(gateway):
    accept(gateway, gateway_id=23)
    gateway.delete(f"{REQUEST_URL}/23", json={"status": "success", "data": {}}, match=[AUTH])
    request, session = request_and_session()
    run(ATLASAPI.submit(request, session))
    run(ATLASAPI.delete(request, session))
    assert request.status == "deleted: canceled at the gateway"
    assert session.transactions[-1].request["method"] == "DELETE"
    assert GATEWAY_TOKEN not in stored(session, request)


def test_delete_of_a_request_the_gateway_lost(gateway):
    accept(gateway)
    gateway.delete(f"{REQUEST_URL}/17", status=404, json={"status": "error", "message": "no such request"})
    request, session = request_and_session()
    run(ATLASAPI.submit(request, session))
    run(ATLASAPI.delete(request, session))
    assert request.status == "deleted: the gateway no longer holds the request"


def test_refused_delete_raises_and_keeps_the_status(gateway):
    accept(gateway)
    gateway.delete(f"{REQUEST_URL}/17", status=400, json={"status": "error", "message": "already complete"})
    request, session = request_and_session()
    run(ATLASAPI.submit(request, session))
    with pytest.raises(FacilityError, match="could not delete: the gateway refused DELETE /api/followup_request/17: already complete"):
        run(ATLASAPI.delete(request, session))
    assert request.status == "submitted to gateway (request 17)"


def test_delete_of_a_request_that_never_reached_the_gateway(gateway):
    request, session = request_and_session()
    request.status = "failed to submit: could not connect to gateway.test"
    run(ATLASAPI.delete(request, session))
    assert request.status == "deleted: nothing had been sent to ATLAS"
    assert len(gateway.calls) == 0


def test_get_leaves_gateway_requests_to_the_gateway(gateway):
    accept(gateway)
    request, session = request_and_session()
    run(ATLASAPI.submit(request, session))
    run(ATLASAPI.get(request, session))
    assert request.status == "submitted to gateway (request 17)"
    assert len(gateway.calls) == 2


def test_a_handed_off_request_cannot_be_deleted_without_the_gateway(gateway):
    accept(gateway)
    request, session = request_and_session()
    run(ATLASAPI.submit(request, session))
    configure()
    with pytest.raises(FacilityError, match="handed to the gateway, which is no longer configured"):
        run(ATLASAPI.delete(request, session))


def test_the_bodies_match_the_gateways_published_schemas(gateway):
    from facility_apis.gateway.api_schemas import AllocationBody, FollowupRequestBody, body_errors

    accept(gateway)
    request, session = request_and_session()
    request.allocation.pi = request.allocation.proposal_id = None  # unknown values are left out, not null
    run(ATLASAPI.submit(request, session))
    put, post = (json.loads(call.request.body) for call in gateway.calls)
    assert "pi" not in put and "proposal_id" not in put
    assert body_errors(AllocationBody(), put) == [] and body_errors(FollowupRequestBody(), post) == []


def test_a_handoff_without_the_instrument_photometry_needs_fails_before_any_call(gateway):
    """The gateway would refuse the allocation; the handoff says why itself, sending nothing."""
    from facility_apis.core.interface import Allocation, FollowupRequest, Target
    from facility_apis.facilities.atlas import ATLASFacility
    from facility_apis.skyportal.handoff import hand_off
    from facility_apis.skyportal.settings import Settings

    allocation = Allocation(5, {"api_token": ATLAS_TOKEN}, instrument_id=None)
    request = FollowupRequest(11, Target("ZTF26skyp", 210.5, 12.25), allocation, PAYLOAD)
    result = hand_off(ATLASFacility(), request, Settings(gateway_url=GATEWAY, gateway_token=GATEWAY_TOKEN))
    reason = "the points ATLAS forced photometry returns are stored in SkyPortal under an instrument"
    assert result.status == f"failed to submit: the allocation names no instrument_id: {reason}"
    assert len(gateway.calls) == 0 and result.transactions == ()


def test_a_handoff_with_a_filter_the_instrument_lacks_is_rejected_before_any_call(gateway):
    from facility_apis.core.interface import Allocation, FollowupRequest, Target
    from facility_apis.facilities.notification import SlackFacility
    from facility_apis.skyportal.handoff import hand_off
    from facility_apis.skyportal.settings import Settings

    altdata = {"slack_workspace": "TFAKEHAND", "slack_channel": "BFAKEHAND", "slack_token": "FAKEhandoffSlackToken"}
    allocation = Allocation(5, altdata, instrument_id=3, instrument_name="Observatory", filters=("ztfg", "ztfr"))
    request = FollowupRequest(11, Target("ZTF26skyp", 210.5, 12.25), allocation, {"observation_choices": ["sdssu"]})
    result = hand_off(SlackFacility(), request, Settings(gateway_url=GATEWAY, gateway_token=GATEWAY_TOKEN))
    assert result.status.startswith("rejected: ") and "$.observation_choices[0]: must be one of ['ztfg', 'ztfr']" in result.status
    assert len(gateway.calls) == 0
