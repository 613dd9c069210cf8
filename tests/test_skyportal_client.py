"""The SkyPortal client: token auth, status messages, idempotent photometry, error envelopes."""

import json

import pytest
import responses
from responses import matchers

from facility_apis.core.errors import FacilityError, Throttled
from facility_apis.skyportal.client import SkyPortalClient, SkyPortalError

BASE = "https://skyportal.example.org"
TOKEN = "0b9a-sp-token"
AUTH = matchers.header_matcher({"Authorization": f"token {TOKEN}"})


def client():
    return SkyPortalClient(BASE + "/", TOKEN)


@responses.activate
def test_post_status_sends_exactly_the_listener_message():
    responses.post(
        f"{BASE}/api/facility",
        json={"status": "success", "data": {}, "version": "1.4.0"},
        match=[AUTH, matchers.json_params_matcher({"followup_request_id": 12, "new_status": "submitted"}, strict_match=True)],
    )
    client().post_status(12, "submitted")


def test_post_status_refuses_a_malformed_message_before_sending():
    with pytest.raises(FacilityError, match=r"\$.followup_request_id: must be of type integer"):
        client().post_status("12", "x")
    with pytest.raises(FacilityError, match=r"\$.new_status"):
        client().post_status(12, "")


@responses.activate
def test_error_envelope_becomes_skyportal_error_with_its_first_line():
    responses.post(
        f"{BASE}/api/facility",
        status=400,
        json={"status": "error", "message": "Insufficient permissions.\nTraceback (most recent call last): ..."},
    )
    with pytest.raises(SkyPortalError) as caught:
        client().post_status(1, "x")
    assert str(caught.value) == "SkyPortal refused POST /api/facility: Insufficient permissions."
    assert caught.value.http_status == 400


@responses.activate
def test_non_json_answer_is_a_clear_error():
    responses.post(f"{BASE}/api/facility", status=502, body="<html>Bad gateway</html>")
    with pytest.raises(FacilityError, match="HTTP 502"):
        client().post_status(1, "x")


@responses.activate
def test_html_answer_with_200_is_refused():
    responses.post(f"{BASE}/api/facility", status=200, body="<html>login</html>")
    with pytest.raises(SkyPortalError, match="not JSON"):
        client().post_status(1, "x")


@responses.activate
def test_429_from_skyportal_is_throttled():
    responses.post(f"{BASE}/api/facility", status=429, headers={"Retry-After": "3"}, json={"status": "error", "message": "slow"})
    with pytest.raises(Throttled) as caught:
        client().post_status(1, "x")
    assert caught.value.wait == 3


@responses.activate
def test_photometry_goes_with_put_and_returns_ids():
    body = {"obj_id": "ZTF1", "instrument_id": 3, "mjd": [1.0], "mag": [None], "magerr": [None], "limiting_mag": [19.0], "filter": ["atlaso"], "magsys": "ab"}
    responses.put(
        f"{BASE}/api/photometry",
        json={"status": "success", "data": {"ids": [7], "upload_id": "u"}},
        match=[AUTH, matchers.header_matcher({"Content-Type": "application/json"}), matchers.json_params_matcher(body)],
    )
    assert client().put_photometry(json.dumps(body).encode()) == [7]  # an encoded upload, as Photometry.uploads gives


@responses.activate
def test_get_source_quotes_the_id():
    responses.get(f"{BASE}/api/sources/a%2Fb", json={"status": "success", "data": {"id": "a/b", "ra": 1.0, "dec": 2.0}})
    assert client().get_source("a/b")["ra"] == 1.0


@responses.activate
def test_token_never_in_records_or_errors():
    responses.post(f"{BASE}/api/facility", status=400, json={"status": "error", "message": f"bad token {TOKEN}"})
    sp = client()
    with sp.transport.recording() as records, pytest.raises(SkyPortalError) as caught:
        sp.post_status(1, "x")
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr([r.as_dict() for r in records])


def test_token_is_required():
    with pytest.raises(FacilityError, match="token is required"):
        SkyPortalClient(BASE, "")
