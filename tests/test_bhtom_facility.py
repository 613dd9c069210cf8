"""BHTOM against its emulator: the exact calls of each operation, targets already present, names,
paging, the light curve (filters, limits, new points only), error objects answered with 200, and
the username/password exchange."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from facility_apis.core.errors import AltdataError, PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import exchange, perform
from facility_apis.core.outcome import State
from facility_apis.core.transport import Transport
from facility_apis.facilities.bhtom import BHTOMFacility
from facility_apis.facilities.bhtom.light_curve import FILTERS
from facility_apis.facilities.bhtom.progress import Progress
from facility_apis.testing.bhtom import BHTOMEmulator
from facility_apis.testing.network import loopback_egress, socket_guard

TOKEN = "bhtom-test-token-5c1e"
PASSWORD = "correct horse battery"
PAYLOAD = {"importance": 8, "cadence_hours": 12, "classification": "SN", "description": "rising", "follow_days": 3}


@pytest.fixture
def bhtom():
    with BHTOMEmulator({"observer": (PASSWORD, TOKEN)}) as emulator:
        yield emulator


@pytest.fixture
def facility(bhtom):
    return BHTOMFacility({"base_url": bhtom.base_url}, egress=loopback_egress(bhtom))


@pytest.fixture
def transport(bhtom):
    with Transport(egress=loopback_egress(bhtom), backoff=0, retries=1) as transport:
        yield transport


def make_request(obj_id="ZTF26aaexact", ra=150.0, dec=-20.0, payload=None, altdata=None, filters=(), **fields):
    allocation = Allocation(1, altdata or {"api_token": TOKEN}, instrument_id=1, filters=tuple(filters))
    return FollowupRequest(7, Target(obj_id, ra, dec), allocation, dict(PAYLOAD if payload is None else payload), **fields)


def calls(emulator, since=0):
    return [(r.method, r.path, json.loads(r.body or b"null")) for r in emulator.requests[since:]]


def followed(request, outcome):
    """The request as the caller holds it after ``outcome`` (remote id and cursor kept)."""
    cursor = request.cursor if outcome.cursor is None else outcome.cursor
    return dataclasses.replace(request, remote_id=outcome.remote_id or request.remote_id, cursor=cursor)


# -- submit -----------------------------------------------------------------------------------------


def test_submit_looks_up_by_name_and_cone_then_creates_with_the_exact_body(bhtom, facility, transport):
    outcome = perform(facility, "submit", make_request(), transport)
    assert outcome.state is State.SUBMITTED and outcome.remote_id == "ZTF26aaexact"
    assert outcome.status == "submitted: target ZTF26aaexact created on BHTOM with importance 8, cadence 12 h"
    assert calls(bhtom) == [
        ("POST", "/targets/getTargetList/", {"name": "ZTF26aaexact", "page": 1}),
        ("POST", "/targets/getTargetList/", {"coneSearchRaDecRadius": f"150.0,-20.0,{3.0 / 3600.0!r}", "page": 1}),
        (
            "POST",
            "/targets/createTarget/",
            {"name": "ZTF26aaexact", "ra": 150.0, "dec": -20.0, "epoch": 2000.0, "classification": "SN",
             "importance": 8.0, "cadence": 0.5, "description": "rising"},
        ),
    ]
    sent = bhtom.requests[-1].headers
    assert sent["Authorization"] == f"Token {TOKEN}" and sent["Content-Type"] == "application/json"
    assert bhtom.target("ZTF26aaexact")["cadence"] == 0.5  # BHTOM keeps days
    progress = Progress.decode(outcome.cursor)
    assert progress.created is True and progress.set == (8.0, 12.0) and progress.until > time.time() + 2.9 * 86400
    assert TOKEN not in outcome.cursor


def test_someone_elses_target_is_raised_not_duplicated_and_the_status_says_so(bhtom, facility, transport):
    bhtom.add_target("ZTF26aaexact", 150.0, -20.0, importance=3.0, cadence=3.0, owner="another-team")
    outcome = perform(facility, "submit", make_request(), transport)
    assert outcome.status == (
        "submitted: BHTOM already had this target as ZTF26aaexact (importance 3, cadence 72 h): "
        "raised to importance 8, cadence 12 h instead of creating a duplicate"
    )
    assert [c[1] for c in calls(bhtom)] == ["/targets/getTargetList/", "/targets/updateTarget/ZTF26aaexact/"]
    assert calls(bhtom)[-1] == ("PATCH", "/targets/updateTarget/ZTF26aaexact/", {"importance": 8.0, "cadence": 0.5})
    assert bhtom.targets() == ["ZTF26aaexact"]
    assert Progress.decode(outcome.cursor).before == (3.0, 72.0)


def test_a_target_already_more_important_is_left_alone(bhtom, facility, transport):
    bhtom.add_target("ZTF26aaexact", 150.0, -20.0, importance=9.5, cadence=0.25)
    outcome = perform(facility, "submit", make_request(), transport)
    assert outcome.status.endswith("(importance 9.5, cadence 6 h), already at least what was asked: left as it is, no duplicate created")
    assert all(method == "POST" and path == "/targets/getTargetList/" for method, path, _ in calls(bhtom))


def test_a_target_found_by_position_under_another_name_is_used(bhtom, facility, transport):
    bhtom.add_target("Gaia26xyz", 150.0 + 1.0 / 3600.0, -20.0, importance=2.0, cadence=1.0)
    outcome = perform(facility, "submit", make_request(), transport)
    assert outcome.remote_id == "Gaia26xyz"
    assert "as Gaia26xyz, 0.9 arcsec from this object" in outcome.status
    assert bhtom.targets() == ["Gaia26xyz"]


def test_our_own_earlier_request_is_found_and_nothing_is_created_twice(bhtom, facility, transport):
    first = perform(facility, "submit", make_request(), transport)
    second = perform(facility, "submit", make_request(), transport)
    assert first.state is second.state is State.SUBMITTED and second.remote_id == first.remote_id
    assert "left as it is, no duplicate created" in second.status
    assert [c[1] for c in calls(bhtom)].count("/targets/createTarget/") == 1
    # Deleting the second request leaves the target: it changed nothing.
    deleted = perform(facility, "delete", followed(make_request(), second), transport)
    assert deleted.status == "deleted: ZTF26aaexact left as it was on BHTOM: this request had not changed it"
    assert bhtom.target("ZTF26aaexact")["importance"] == 8.0


def test_a_name_taken_by_a_far_object_is_a_rejection(bhtom, facility, transport):
    bhtom.add_target("ZTF26aaexact", 10.0, 10.0)
    outcome = perform(facility, "submit", make_request(), transport)
    assert outcome.state is State.REJECTED
    assert "BHTOM already has a different target named 'ZTF26aaexact'" in outcome.status
    assert "/targets/createTarget/" not in [c[1] for c in calls(bhtom)]


def test_a_name_with_spaces_travels_encoded_and_one_with_a_slash_is_refused_before_sending(bhtom, facility, transport):
    request = make_request(payload={**PAYLOAD, "bhtom_name": "SN 2026 abc"})
    outcome = perform(facility, "submit", request, transport)
    assert outcome.remote_id == "SN 2026 abc" and calls(bhtom)[-1][2]["name"] == "SN 2026 abc"
    mark = len(bhtom.requests)
    updated = perform(facility, "update", followed(request, outcome), transport)
    assert updated.state is State.SUBMITTED
    assert [r.path for r in bhtom.requests[mark:]] == ["/targets/getTargetList/", "/targets/updateTarget/SN%202026%20abc/"]
    mark = len(bhtom.requests)
    for refused in (make_request(payload={**PAYLOAD, "bhtom_name": "SN 2026/abc"}), make_request(obj_id="PSR J0437/4715")):
        outcome = perform(facility, "submit", refused, transport)
        assert outcome.state is State.REJECTED and "$.bhtom_name" in outcome.status
    assert len(bhtom.requests) == mark


def test_an_error_object_answered_with_200_is_a_failure_never_data(bhtom, facility, transport):
    bhtom.error_next("Something went wrong: database busy", "/targets/getTargetList/")
    outcome = perform(facility, "submit", make_request(), transport)
    assert outcome.status == (
        "failed to submit: BHTOM answered HTTP 200 with an error instead of a target list: Something went wrong: database busy"
    )
    assert bhtom.targets() == []


def test_field_errors_answered_with_404_are_rejections_but_a_404_page_is_not(bhtom, facility, transport):
    bhtom.faults.add("status", path_prefix="/targets/createTarget/", status=404, body={"name": ["target with this name already exists."]})
    outcome = perform(facility, "submit", make_request(), transport)
    assert outcome.status == "rejected: name: target with this name already exists."
    bhtom.faults.add("status", path_prefix="/targets/createTarget/", status=404, body="<html><title>Not Found</title></html>")
    outcome = perform(facility, "submit", make_request(), transport)
    assert outcome.state is State.FAILED and "HTTP 404" in outcome.detail


def test_a_target_within_3_arcsec_that_the_cone_missed_is_refused_by_bhtom(bhtom, facility, transport):
    bhtom.faults.add("status", path_prefix="/targets/getTargetList/", status=200, body={"count": 0, "num_pages": 1, "current_page": 1, "data": []}, count=2)
    bhtom.add_target("Other", 150.0, -20.0)
    outcome = perform(facility, "submit", make_request(), transport)
    assert outcome.status == "rejected: Source found already at these coordinates (rad 3 arcsec)"


# -- paging -----------------------------------------------------------------------------------------


def test_the_cone_is_walked_past_200_targets_to_the_nearest(bhtom, facility, transport):
    for number in range(449):  # 2.5 arcsec away, listed first
        bhtom.add_target(f"crowd{number}", 150.0, -20.0 + 2.5 / 3600.0)
    bhtom.add_target("the-one", 150.0, -20.0 + 0.4 / 3600.0, importance=9.9, cadence=0.1)  # listed last, on page 3
    outcome = perform(facility, "submit", make_request(), transport)
    pages = [body["page"] for _, path, body in calls(bhtom) if "coneSearchRaDecRadius" in body]
    assert pages == [1, 2, 3]
    assert outcome.remote_id == "the-one"


def test_a_cone_bhtom_ignores_still_finds_only_what_is_near(bhtom, facility, transport):
    """BHTOM ignores a cone it cannot read and lists everything: distances are checked here."""
    bhtom.add_target("far-away", 10.0, 10.0)
    bhtom.faults.add("status", path_prefix="/targets/getTargetList/", status=200, body={"count": 0, "num_pages": 1, "current_page": 1, "data": []})
    outcome = perform(facility, "submit", make_request(), transport)
    assert outcome.state is State.SUBMITTED and outcome.remote_id == "ZTF26aaexact"


def test_reduced_data_come_500_a_page_and_1000_for_staff():
    rows = [(60000.0 + i / 1000, 17.0, 0.05, "Tel", "V(GaiaSP)", "obs") for i in range(1203)]
    with BHTOMEmulator({"observer": (PASSWORD, TOKEN), "admin": ("pw", "staff-token")}, staff=["admin"]) as emulator:
        emulator.add_target("Busy", 1.0, 2.0)
        emulator.upload("Busy", rows)
        with Transport(egress=loopback_egress(emulator), retries=0) as transport:
            def page(token, number):
                url = f"{emulator.base_url}/common/api/reducedDatum/"
                return transport.request("POST", url, headers={"Authorization": f"Token {token}"}, json={"target_name": "Busy", "page": number})

            sizes = [len(page(TOKEN, n).json()["data"]) for n in (1, 2, 3)]
            assert sizes == [500, 500, 203]
            past = page(TOKEN, 4)
            assert past.status_code == 400 and past.json() == {"error": "Invalid page number."}
            assert page("staff-token", 1).json()["num_pages"] == 2
            ids = [row["id"] for n in (1, 2, 3) for row in page(TOKEN, n).json()["data"]]
            assert len(set(ids)) == 1203


# -- get: the light curve -----------------------------------------------------------------------------


def submitted(facility, transport, request=None):
    request = request or make_request()
    return followed(request, perform(facility, "submit", request, transport))


def test_get_downloads_with_the_exact_request_and_maps_filters_limits_and_observers(bhtom, facility, transport):
    request = submitted(facility, transport)
    bhtom.upload("ZTF26aaexact", [
        (61000.10, 17.50, 0.05, "Bialkow-Andor", "V(GaiaSP)", "alice"),
        (61000.20, 18.90, -1.0, "Loiano", "g(GaiaSP)", "bob"),
        (61000.30, 16.00, 0.02, "Gaia", "G(Gaia)", "Gaia"),
        (61000.40, 15.00, 0.10, "WISE", "W1(WISE)", "wise"),
    ])  # fmt: skip
    mark = len(bhtom.requests)
    outcome = perform(facility, "get", request, transport)
    assert calls(bhtom, mark) == [
        ("POST", "/targets/getTargetList/", {"name": "ZTF26aaexact", "page": 1}),
        ("POST", "/targets/download-photometry/", {"name": "ZTF26aaexact"}),
    ]
    assert outcome.state is State.RUNNING
    assert outcome.status == (
        "running: on BHTOM's list at importance 8, cadence 12 h: 3 points brought back; "
        "1 point kept out so far: filter 'W1(WISE)' has no SkyPortal bandpass"
    )
    bodies = [json.loads(upload) for upload in outcome.photometry.uploads("ZTF26aaexact", 1)]
    assert len(bodies) == 1
    (body,) = bodies
    assert body["filter"] == ["bessellv", "sdssg", "gaia::g"]
    assert body["mag"] == [17.52, None, 16.1136]  # V + 0.02 (Vega to AB), limit, G + 0.1136
    assert body["magerr"] == [0.05, None, 0.02]
    assert body["limiting_mag"][1] == 18.9  # a negative error: the magnitude is the limit
    assert body["limiting_mag"][0] == pytest.approx(17.52 + 2.5 * __import__("math").log10(1.0857362 / 0.25), abs=1e-3)
    assert body["origin"] == ["bhtom:Bialkow-Andor", "bhtom:Loiano", "bhtom:Gaia"]
    assert [extra["observer"] for extra in body["altdata"]] == ["alice", "bob", "Gaia"]
    assert body["magsys"] == "ab"


def test_only_new_points_are_delivered_across_polls(bhtom, facility, transport):
    request = submitted(facility, transport)
    bhtom.upload("ZTF26aaexact", [(61000.1, 17.0, 0.05, "T", "V(GaiaSP)", "o"), (61000.2, 17.1, 0.05, "T", "V(GaiaSP)", "o")])
    first = perform(facility, "get", request, transport)
    request = followed(request, first)
    again = perform(facility, "get", request, transport)
    assert len(first.photometry) == 2 and again.photometry is None and again.status == first.status
    bhtom.upload("ZTF26aaexact", [(61000.3, 17.2, 0.05, "T", "V(GaiaSP)", "o"), (61003.5, 17.4, -1.0, "T", "V(GaiaSP)", "o")])
    later = perform(facility, "get", followed(request, again), transport)
    assert later.photometry.values("mjd") == [61000.3, 61003.5] and "4 points brought back" in later.status
    # A late upload between points already delivered: that night travels again, whole.
    request = followed(request, later)
    bhtom.upload("ZTF26aaexact", [(61000.15, 17.05, 0.05, "U", "V(GaiaSP)", "o")])
    late = perform(facility, "get", request, transport)
    assert late.photometry.values("mjd") == [61000.1, 61000.15, 61000.2, 61000.3]
    assert "3 of them delivered again with their night's late additions" in late.status


def test_an_unreadable_cursor_means_everything_is_delivered_again(bhtom, facility, transport):
    request = submitted(facility, transport)
    bhtom.upload("ZTF26aaexact", [(61000.1, 17.0, 0.05, "T", "V(GaiaSP)", "o")])
    outcome = perform(facility, "get", dataclasses.replace(request, cursor="not json"), transport)
    assert len(outcome.photometry) == 1


def test_points_outside_the_instruments_filters_are_kept_out_and_said(bhtom, facility, transport):
    request = submitted(facility, transport, make_request(filters=("bessellv",)))
    bhtom.upload("ZTF26aaexact", [(61000.1, 17.0, 0.05, "T", "V(GaiaSP)", "o"), (61000.2, 17.0, 0.05, "T", "r(GaiaSP)", "o")])
    outcome = perform(facility, "get", request, transport)
    assert outcome.photometry.filter == ["bessellv"]
    assert "1 point kept out so far: bandpass sdssr is not among the instrument's filters" in outcome.status


def test_an_error_object_instead_of_photometry_fails_and_keeps_the_cursor(bhtom, facility, transport):
    request = submitted(facility, transport)
    bhtom.upload("ZTF26aaexact", [(61000.1, 17.0, 0.05, "T", "V(GaiaSP)", "o")])
    bhtom.error_next("Something went wrong list index out of range", "/targets/download-photometry/", key="Error ")
    outcome = perform(facility, "get", request, transport)
    assert outcome.state is State.FAILED and outcome.poll_after is not None and outcome.cursor is None and outcome.photometry is None
    assert outcome.detail == "BHTOM answered HTTP 200 with an error instead of photometry: Something went wrong list index out of range"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("MJD,Magnitude,Error\n1,2,3\n", "did not start with the header MJD;Magnitude;Error;Facility;Filter;Observer"),
        ("<html><title>Server Error (500)</title></html>", "Server Error (500) instead of photometry"),
        ("", "did not start with the header"),
    ],
)
def test_a_download_in_another_layout_is_a_failure(bhtom, facility, transport, body, expected):
    request = submitted(facility, transport)
    bhtom.faults.add("status", path_prefix="/targets/download-photometry/", status=200, body=body)
    outcome = perform(facility, "get", request, transport)
    assert outcome.state is State.FAILED and expected in outcome.detail


def test_a_target_gone_from_bhtom_is_canceled(bhtom, facility, transport):
    request = submitted(facility, transport)
    bhtom.delete_target("ZTF26aaexact")
    assert perform(facility, "get", request, transport).status == "canceled: the target ZTF26aaexact is no longer on BHTOM"


def test_the_end_of_the_follow_up_window_completes_and_undoes_the_request(bhtom, facility, transport):
    request = submitted(facility, transport)
    bhtom.upload("ZTF26aaexact", [(61000.1, 17.0, 0.05, "T", "V(GaiaSP)", "o")])
    ended = dataclasses.replace(Progress.decode(request.cursor), until=time.time() - 1).encode()
    outcome = perform(facility, "get", dataclasses.replace(request, cursor=ended), transport)
    assert outcome.state is State.COMPLETED and len(outcome.photometry) == 1
    assert outcome.status == (
        "complete: follow-up window over: 1 point brought back; importance of ZTF26aaexact lowered to 0 on BHTOM "
        "(the allocation does not allow removing targets)"
    )
    assert bhtom.target("ZTF26aaexact")["importance"] == 0.0


# -- update and delete ------------------------------------------------------------------------------


def test_update_patches_importance_cadence_and_description_never_priority(bhtom, facility, transport):
    request = submitted(facility, transport)
    changed = dataclasses.replace(request, payload={**PAYLOAD, "importance": 4, "cadence_hours": 48, "priority": 5, "description": "slower now"})
    mark = len(bhtom.requests)
    outcome = perform(facility, "update", changed, transport)
    assert calls(bhtom, mark)[-1] == ("PATCH", "/targets/updateTarget/ZTF26aaexact/", {"importance": 4.0, "cadence": 2.0, "description": "slower now"})
    assert outcome.status == "submitted: updated on BHTOM: ZTF26aaexact at importance 4, cadence 48 h"
    assert Progress.decode(outcome.cursor).set == (4.0, 48.0)


def test_update_of_someone_elses_target_never_goes_below_what_it_had(bhtom, facility, transport):
    bhtom.add_target("ZTF26aaexact", 150.0, -20.0, importance=6.0, cadence=1.0, description="theirs")
    request = submitted(facility, transport)
    changed = dataclasses.replace(request, payload={**PAYLOAD, "importance": 2, "cadence_hours": 48})
    outcome = perform(facility, "update", changed, transport)
    assert calls(bhtom)[-1][2] == {"importance": 6.0, "cadence": 1.0}
    assert outcome.status.endswith("(not below what the target had before this request)")
    assert bhtom.target("ZTF26aaexact")["description"] == "theirs"


def test_delete_removes_a_target_this_request_created_when_the_allocation_allows(bhtom, transport):
    facility = BHTOMFacility({"base_url": bhtom.base_url}, egress=loopback_egress(bhtom))
    request = submitted(facility, transport, make_request(altdata={"api_token": TOKEN, "allow_target_removal": True}))
    outcome = perform(facility, "delete", request, transport)
    assert calls(bhtom)[-1] == ("DELETE", "/targets/deleteTarget/", {"name": "ZTF26aaexact"})
    assert outcome.status == "deleted: target ZTF26aaexact removed from BHTOM (this request had created it)"
    assert bhtom.targets() == []


def test_delete_lowers_importance_to_0_when_removal_is_not_allowed(bhtom, facility, transport):
    request = submitted(facility, transport)
    outcome = perform(facility, "delete", request, transport)
    assert calls(bhtom)[-1] == ("PATCH", "/targets/updateTarget/ZTF26aaexact/", {"importance": 0.0})
    assert outcome.status == "deleted: importance of ZTF26aaexact lowered to 0 on BHTOM (the allocation does not allow removing targets)"


def test_delete_restores_someone_elses_target_unless_it_changed_since(bhtom, facility, transport):
    bhtom.add_target("ZTF26aaexact", 150.0, -20.0, importance=3.0, cadence=3.0)
    request = submitted(facility, transport)
    outcome = perform(facility, "delete", request, transport)
    assert calls(bhtom)[-1] == ("PATCH", "/targets/updateTarget/ZTF26aaexact/", {"importance": 3.0, "cadence": 3.0})
    assert outcome.status == "deleted: importance and cadence of ZTF26aaexact restored to 3 and 72 h on BHTOM, as they were before this request"
    request = submitted(facility, transport)
    bhtom.update_target("ZTF26aaexact", {"importance": 9.0})
    mark = len(bhtom.requests)
    outcome = perform(facility, "delete", request, transport)
    assert [c[0] for c in calls(bhtom, mark)] == ["POST"]
    assert outcome.status == "deleted: ZTF26aaexact left as it is on BHTOM: its importance or cadence changed since this request set them"


def test_delete_without_a_cursor_lowers_importance_to_0(bhtom, facility, transport):
    bhtom.add_target("Gaia22bpl", 1.0, 2.0, importance=7.0)
    request = make_request(remote_id="Gaia22bpl")
    outcome = perform(facility, "delete", request, transport)
    assert outcome.status == "deleted: importance of Gaia22bpl lowered to 0 on BHTOM (what this request changed is not known)"


# -- credentials --------------------------------------------------------------------------------------


def test_username_and_password_are_exchanged_once_for_a_token_and_the_password_dropped(bhtom, facility, transport):
    stored = exchange(facility, {"username": "observer", "password": PASSWORD}, transport)
    assert stored == {"username": "observer", "api_token": TOKEN}
    assert calls(bhtom) == [("POST", "/api/token-auth/", {"username": "observer", "password": PASSWORD})]
    mark = len(bhtom.requests)
    outcome = perform(facility, "submit", make_request(altdata=stored), transport)
    assert outcome.state is State.SUBMITTED
    assert all(PASSWORD.encode() not in r.body and PASSWORD not in json.dumps(r.headers) for r in bhtom.requests[mark:])
    # An api_token already stored needs no exchange, and makes none.
    assert exchange(facility, stored, transport) == stored and len(bhtom.requests) == mark + 3


def test_a_refused_password_is_an_altdata_error_naming_the_field_without_the_value(facility, transport):
    with pytest.raises(AltdataError) as caught:
        exchange(facility, {"username": "observer", "password": "wrong password"}, transport)
    assert [e.path for e in caught.value.errors] == ["$.password"]
    assert "Unable to log in with provided credentials." in str(caught.value) and "wrong password" not in str(caught.value)


def test_an_error_object_from_token_auth_gives_no_token(bhtom, facility, transport):
    bhtom.error_next("Token service unavailable", "/api/token-auth/")
    with pytest.raises(AltdataError, match=r"\$\.password: BHTOM gave no token .*Token service unavailable"):
        exchange(facility, {"username": "observer", "password": PASSWORD}, transport)


def test_an_unreachable_service_during_the_exchange_is_an_altdata_error(facility, transport, bhtom):
    bhtom.down()
    with pytest.raises(AltdataError, match=r"BHTOM refused or could not complete the credential exchange: connection to 127\.0\.0\.1") as caught:
        exchange(facility, {"username": "observer", "password": PASSWORD}, transport)
    assert PASSWORD not in str(caught.value)


def test_operations_on_an_allocation_still_holding_a_password_say_to_save_it_again(bhtom, facility, transport):
    with socket_guard() as attempts:
        outcome = perform(facility, "submit", make_request(altdata={"username": "observer", "password": PASSWORD}), transport)
    assert attempts == [] and outcome.state is State.FAILED
    assert "$.api_token: is missing: the username and password are exchanged for it when the allocation is saved" in outcome.status
    assert PASSWORD not in outcome.status


@pytest.mark.parametrize(
    ("altdata", "path"),
    [
        ({}, "$.api_token"),
        ({"password": PASSWORD}, "$.username"),
        ({"api_token": "has space"}, "$.api_token"),
        ({"api_token": TOKEN, "base_url": "http://10.0.0.1"}, "$.base_url"),
        ({"api_token": TOKEN, "base_url": "http://bh-tom2.astrouw.edu.pl"}, "$.base_url"),
        ({"api_token": TOKEN, "base_url": "https://bh-tom2.astrouw.edu.pl/?next=x"}, "$.base_url"),
    ],
)
def test_bad_altdata_names_the_field(altdata, path):
    with pytest.raises(AltdataError) as caught:
        BHTOMFacility().validate_altdata(altdata)
    assert path in [e.path for e in caught.value.errors]


def test_the_filter_table_maps_only_to_skyportal_bandpass_names():
    bandpasses = {"bessellux", "bessellb", "bessellv", "bessellr", "besselli", "sdssu", "sdssg", "sdssr", "sdssi", "sdssz", "gaia::g", "gaia::gbp", "gaia::grp",
                  "ztfg", "ztfr", "ztfi", "atlasc", "atlaso", "ps1::g", "ps1::r", "ps1::i", "ps1::z", "desg", "desr", "desi", "desz"}  # fmt: skip
    assert {bandpass for bandpass, _ in FILTERS.values()} <= bandpasses
    vega = {name for name, (_, offset) in FILTERS.items() if offset}
    johnson_cousins = {f"{band}(GaiaSP)" for band in "UBVRI"}
    gaia = {name for name in FILTERS if name.startswith(("G(", "BP(", "RP(", "GSA("))}
    assert vega == johnson_cousins | gaia | {"ASASSN(V)", "OGLE(I)", "KMTNET(I)"}  # every other band is AB already


# -- the documented statuses ----------------------------------------------------------------------


def _documented() -> list[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "facilities" / "bhtom.md").read_text()
    section = text[text.index("(bhtom-statuses)=") : text.index("(bhtom-photometry)=")]
    return [re.sub(r"\d+(\.\d+)?", "N", span) for span in re.findall(r"`([^`]+)`", section)]


def _is_documented(status: str, name: str) -> bool:
    """The status's wording is a documented span, its trailing notes (``; ...``) documented notes."""
    import re

    normal = re.sub(r"\d+(\.\d+)?", "N", status.replace(name, "<name>"))
    spans = _documented()
    parts = normal.split("; ")
    for cut in range(len(parts), 0, -1):
        head, notes = "; ".join(parts[:cut]), parts[cut:]
        if _matches(head, spans) and all(f"; {note}" in spans for note in notes):
            return True
    return False


def _matches(normal: str, spans: list[str]) -> bool:
    for span in spans:
        for open_end in ("<BHTOM's message>", "...", ": ..."):
            if span.endswith(open_end) and normal.startswith(span[: -len(open_end)]):
                return True
        if normal == span:
            return True
    return False


def test_every_status_these_scenarios_produce_is_documented(bhtom, facility, transport):
    seen: list[tuple[str, str]] = []

    def run(operation, request, name="ZTF26aaexact"):
        outcome = perform(facility, operation, request, transport)
        seen.append((outcome.status, name))
        return followed(request, outcome)

    request = run("submit", make_request())
    run("get", request)
    bhtom.upload("ZTF26aaexact", [(61000.1, 17.0, 0.05, "T", "V(GaiaSP)", "o"), (61000.2, 17.0, 0.05, "T", "W1(WISE)", "o")])
    request = run("get", request)
    run("update", dataclasses.replace(request, payload={**PAYLOAD, "importance": 4, "cadence_hours": 48}))
    bhtom.error_next("busy", "/targets/download-photometry/")
    run("get", request)
    ended = dataclasses.replace(Progress.decode(request.cursor), until=time.time() - 1).encode()
    run("get", dataclasses.replace(request, cursor=ended))
    run("delete", request)
    bhtom.delete_target("ZTF26aaexact")
    run("get", request)
    run("update", request)
    run("delete", request)
    run("delete", make_request())
    run("get", make_request())
    bhtom.add_target("Other", 150.0, -20.0, importance=3.0, cadence=3.0)
    other = run("submit", make_request(), "Other")
    run("update", dataclasses.replace(other, payload={**PAYLOAD, "importance": 2}), "Other")
    run("delete", other, "Other")
    bhtom.update_target("Other", {"importance": 9.5, "cadence": 0.25})
    run("submit", make_request(), "Other")
    run("submit", make_request(obj_id="Far", ra=10.0, dec=10.0, payload={**PAYLOAD, "bhtom_name": "Other"}), "Other")
    run("submit", make_request(payload={**PAYLOAD, "bhtom_name": "a/b"}))
    run("submit", make_request(altdata={"username": "u", "password": PASSWORD}))
    bhtom.error_next("busy", "/targets/getTargetList/")
    run("submit", make_request(obj_id="Fresh", ra=20.0, dec=20.0))
    missing = [status for status, name in seen if not _is_documented(status, name)]
    assert not missing, f"statuses not in docs/facilities/bhtom.md: {missing}"


def test_the_forms_say_their_url_and_name_rules_as_patterns_both_sides_read_alike():
    # The browser refuses what the package refuses: http off loopback, a name of spaces only.
    schema = BHTOMFacility.altdata_schema()["properties"]["base_url"]
    assert "format" not in schema and "https only" in schema["description"]
    assert BHTOMFacility().validate_altdata({"api_token": TOKEN, "base_url": "https://bh-tom2.astrouw.edu.pl/api"})["base_url"]
    with pytest.raises(PayloadError) as caught:
        BHTOMFacility().validate_payload({**PAYLOAD, "bhtom_name": "   "})
    (error,) = caught.value.errors
    assert error.path == "$.bhtom_name" and error.message.startswith("must not be blank")
    assert BHTOMFacility().validate_payload({**PAYLOAD, "bhtom_name": " SN 2026 abc "})["bhtom_name"] == " SN 2026 abc "


def test_follow_days_end_the_window_the_gateway_counts_its_horizon_from():
    """docs/facilities/bhtom.md: the gateway gives up at acceptance + follow_days + horizon_hours,
    because BHTOM's observing window (Facility.window_end) ends follow_days from now."""
    from facility_apis.gateway.crypto import SecretBox, generate_key
    from facility_apis.gateway.policy import Schedule
    from facility_apis.gateway.store import Store

    facility = BHTOMFacility()
    payload = facility.validate_payload({"follow_days": 10})
    before = time.time()
    end = facility.window_end(payload).timestamp()
    assert before + 10 * 86400.0 <= end <= time.time() + 10 * 86400.0
    store = Store("sqlite://", SecretBox(generate_key()), schedule=Schedule(horizon=72 * 3600.0))
    try:
        owner = store.clients.authenticate(store.clients.add("bhtom"))
        store.allocations.put(owner, 1, "bhtom", {"api_token": "bhtom-token-0123456789"}, instrument_id=1)
        request_id = store.requests.add(1, Target("ZTF26follow", 1.0, 2.0), payload, owner_id=owner, window_end=end, now=before)
        assert store.requests.view(request_id)["give_up_at"] == pytest.approx(before + 10 * 86400.0 + 72 * 3600.0, abs=5)
    finally:
        store.close()
