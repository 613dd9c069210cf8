"""The SkyPortal stub against plain ``requests``: envelope, auth, ``/api/facility`` answers and
ACLs, photometry POST/PUT deduplication, sources, faults and recording."""

from typing import Any, ClassVar

import pytest
import requests

from facility_apis.skyportal.listener import Listener
from facility_apis.testing import SkyPortalStub

AUTH = {"Authorization": "token skyportal-token"}
OBJ = "ZTF21aaaaaaa"


def call(stub, method, path, body=None, headers=AUTH):
    return requests.request(method, stub.url + path, json=body, headers=headers)


def expect_error(response, status, message):
    assert response.status_code == status
    envelope = response.json()
    assert (envelope["status"], envelope["version"]) == ("error", "1.4.0")
    assert message in envelope["message"]


def photometry_body(**changes):
    body = {
        "obj_id": OBJ,
        "instrument_id": 1,
        "mjd": [60000.1, 60001.2, 60002.3],
        "mag": [18.5, None, 18.7],
        "magerr": [0.05, None, 0.08],
        "limiting_mag": [19.8, 19.6, 19.9],
        "magsys": "ab",
        "filter": ["atlasc", "atlaso", "atlaso"],
        "origin": "fp",
        "group_ids": [1],
    }
    return body | changes


@pytest.fixture
def stub(skyportal_stub):
    skyportal_stub.add_request(7)
    skyportal_stub.add_source(OBJ, 10.5, -20.25)
    return skyportal_stub


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "token nope"}, {"Authorization": "Bearer skyportal-token"}])
def test_missing_or_unknown_token_is_401(stub, headers):
    expect_error(call(stub, "POST", "/api/facility", {"followup_request_id": 7, "new_status": "x"}, headers), 401, "")
    assert stub.statuses(7) == []


# -- /api/facility ---------------------------------------------------------------------------


def test_facility_message_success_records_statuses_in_order(stub):
    for status in ("submitted", "running", "completed"):
        response = call(stub, "POST", "/api/facility", {"followup_request_id": 7, "new_status": status})
        assert (response.status_code, response.json()) == (200, {"status": "success", "data": {}, "version": "1.4.0"})
    assert stub.statuses(7) == ["submitted", "running", "completed"]
    assert stub.statuses(8) == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, 'Missing required key "followup_request_id".'),
        ({"followup_request_id": "seven", "new_status": "x"}, 400, "Invalid followup_request_id."),
        ({"followup_request_id": None, "new_status": "x"}, 400, "Invalid followup_request_id."),
        ({"followup_request_id": 9999, "new_status": "x"}, 400, "Cannot find FollowupRequest with ID: 9999"),
        ({"followup_request_id": 7}, 500, "'new_status' is a required property"),
        ({"followup_request_id": 7, "new_status": "x", "extra": 1}, 500, "Additional properties are not allowed ('extra' was unexpected)"),
        ({"followup_request_id": 7, "new_status": ""}, 500, "should be non-empty"),
    ],
)
def test_facility_message_errors(stub, body, status, message):
    expect_error(call(stub, "POST", "/api/facility", body), status, message)
    assert stub.statuses(7) == []


def test_facility_message_needs_the_listener_acl():
    tokens = {"plain": {"Upload data"}, "admin": {"System admin"}}
    with SkyPortalStub(tokens=tokens) as stub:
        stub.add_request(3)
        message = {"followup_request_id": 3, "new_status": "x"}
        expect_error(call(stub, "POST", "/api/facility", message, {"Authorization": "token plain"}), 400, "Insufficient permissions.")
        assert call(stub, "POST", "/api/facility", message, {"Authorization": "token admin"}).status_code == 200
        assert stub.statuses(3) == ["x"]


class PriorityListener(Listener):
    schema: ClassVar[dict[str, Any]] = {"properties": {"new_status": {"type": "string"}, "priority": {"type": "integer"}}, "required": ["new_status"]}


def test_listener_classes_are_looked_up_by_name():
    with SkyPortalStub(tokens={"t": {"Post from PriorityListener"}}, listeners={"PriorityListener": PriorityListener}) as stub:
        stub.add_request(4, listener="PriorityListener")
        stub.add_request(5)  # FacilityMessageListener is not configured in this stub
        headers = {"Authorization": "token t"}
        assert call(stub, "POST", "/api/facility", {"followup_request_id": 4, "new_status": "x", "priority": 2}, headers).status_code == 200
        expect_error(call(stub, "POST", "/api/facility", {"followup_request_id": 5, "new_status": "x"}, headers), 400, "no listener")


# -- /api/photometry -------------------------------------------------------------------------


def test_post_stores_points_and_a_second_post_is_refused(stub):
    response = call(stub, "POST", "/api/photometry", photometry_body())
    assert response.status_code == 200
    data = response.json()["data"]
    assert len(data["ids"]) == 3 and len(data["upload_id"]) == 36
    points = stub.photometry(OBJ)
    assert [p["id"] for p in points] == data["ids"]
    assert [p["mag"] for p in points] == [18.5, None, 18.7]
    assert points[1]["flux"] is None and points[1]["fluxerr"] > 0
    assert points[0]["flux"] == pytest.approx(10 ** (-0.4 * (18.5 - 23.9)))
    assert points[0]["group_ids"] == [1] and points[0]["origin"] == "fp"
    expect_error(call(stub, "POST", "/api/photometry", photometry_body()), 400, "The following photometry already exists in the database")
    assert len(stub.photometry(OBJ)) == 3


def test_put_is_idempotent_and_adds_only_new_points(stub):
    first = call(stub, "PUT", "/api/photometry", photometry_body()).json()["data"]["ids"]
    again = call(stub, "PUT", "/api/photometry", photometry_body())
    assert again.status_code == 200 and again.json()["data"]["ids"] == first
    assert len(stub.photometry(OBJ)) == 3
    body = photometry_body(mjd=[60000.1, 60001.2, 60003.0])
    mixed = call(stub, "PUT", "/api/photometry", body).json()["data"]["ids"]
    assert mixed[:2] == first[:2] and mixed[2] not in first
    assert len(stub.photometry(OBJ)) == 4
    other_origin = call(stub, "PUT", "/api/photometry", photometry_body(origin="other")).json()["data"]["ids"]
    assert not set(other_origin) & set(first)


def test_scalars_are_broadcast(stub):
    body = photometry_body(filter="atlaso", magsys="ab", mjd=[60000.5, 60000.6])
    body |= {"mag": [18.0, 18.1], "magerr": [0.1, 0.1], "limiting_mag": 19.5}
    assert len(call(stub, "POST", "/api/photometry", body).json()["data"]["ids"]) == 2
    single = {"obj_id": OBJ, "instrument_id": 1, "mjd": 60010.0, "mag": None, "magerr": None, "limiting_mag": 19.0, "magsys": "ab", "filter": "atlasc"}
    assert len(call(stub, "POST", "/api/photometry", single).json()["data"]["ids"]) == 1
    assert {p["filter"] for p in stub.photometry(OBJ)} == {"atlaso", "atlasc"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"duplicates": "ignore"}, "{'duplicates': ['Unknown field.']}"),
        ({"filter": ["atlasc", "ztfg", "atlaso"]}, "Instrument ATLAS has no filter ztfg."),
        ({"mjd": [60000.1]}, "All arrays must be of the same length"),
        ({"instrument_id": 99}, "Invalid instrument ID: 99"),
        ({"obj_id": "ZTFunknown"}, "Invalid object ID: ZTFunknown"),
        ({"mag": [18.5, 19.0, 18.7]}, "both mag and magerr"),
        ({"magsys": "johnson"}, "Invalid magsys"),
        ({"mjd": ["soon", 1.0, 2.0]}, "{'mjd': ['Not a valid number.']}"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_photometry_errors(stub, changes, message, method):
    expect_error(call(stub, method, "/api/photometry", photometry_body(**changes)), 400, message)
    assert stub.photometry(OBJ) == []


def test_missing_photometry_field_is_a_marshmallow_error(stub):
    body = photometry_body()
    del body["limiting_mag"]
    expect_error(call(stub, "PUT", "/api/photometry", body), 400, "{'limiting_mag': ['Missing data for required field.']}")


# -- /api/sources, faults, recording ---------------------------------------------------------


def test_sources(stub):
    response = call(stub, "GET", f"/api/sources/{OBJ}")
    assert response.json() == {"status": "success", "data": {"id": OBJ, "ra": 10.5, "dec": -20.25, "alias": None}, "version": "1.4.0"}
    expect_error(call(stub, "GET", "/api/sources/ZTFnothing"), 400, "ZTFnothing")
    stub.add_source("ZTF26named", 1.0, 2.0, alias=["LSST:313761043604045880"])
    assert call(stub, "GET", "/api/sources/ZTF26named").json()["data"]["alias"] == ["LSST:313761043604045880"]


def test_skyportal_down_then_up(stub):
    stub.faults.add("status", count=2, status=503, path_prefix="/api/facility")
    message = {"followup_request_id": 7, "new_status": "x"}
    assert [call(stub, "POST", "/api/facility", message).status_code for _ in range(3)] == [503, 503, 200]
    stub.down()
    with pytest.raises(requests.ConnectionError):
        call(stub, "POST", "/api/facility", message)
    stub.down("503")
    assert call(stub, "POST", "/api/facility", message).status_code == 503
    stub.up()
    assert call(stub, "POST", "/api/facility", message).status_code == 200
    assert stub.statuses(7) == ["x", "x"]


def test_requests_are_recorded(stub):
    call(stub, "POST", "/api/facility", {"followup_request_id": 7, "new_status": "x"})
    (recorded,) = stub.requests
    assert (recorded.method, recorded.path, recorded.headers["Authorization"]) == ("POST", "/api/facility", "token skyportal-token")
    assert recorded.body == b'{"followup_request_id": 7, "new_status": "x"}'


def test_unsupported_method_gets_an_error_envelope(stub):
    expect_error(call(stub, "DELETE", "/api/facility"), 405, "Method Not Allowed")
