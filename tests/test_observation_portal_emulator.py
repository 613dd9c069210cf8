"""The Observation Portal emulator speaks the portal's protocol, as LCO's own example scripts use it
(``LCOGT/observation-portal-api-examples``: submit an imaging request group, query a proposal's
request groups), and the archive's frame listing; its clock, fates and faults."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from facility_apis.testing.observation_portal import ObservationPortalEmulator
from facility_apis.testing.observation_portal_rules import INSTRUMENTS

TOKEN, ARCHIVE_TOKEN, PROPOSAL = "emu-portal-token", "emu-archive-token", "LCO2026B-001"
AUTH = {"Authorization": f"Token {TOKEN}"}


def soon(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def example_group(**changes) -> dict:
    """The shape of LCO's submit_imaging_requestgroup.py example (two filters on a 1 m imager)."""
    target = {"name": "m83", "type": "ICRS", "ra": 204.253, "dec": -29.865, "epoch": 2000}
    constraints = {"max_airmass": 2, "min_lunar_distance": 30}
    configuration = {
        "type": "EXPOSE",
        "instrument_type": "1M0-SCICAM-SINISTRO",
        "target": target,
        "constraints": constraints,
        "acquisition_config": {},
        "guiding_config": {},
        "instrument_configs": [
            {"exposure_time": 30, "exposure_count": 1, "optical_elements": {"filter": "V"}},
            {"exposure_time": 60, "exposure_count": 1, "optical_elements": {"filter": "B"}},
        ],
    }
    request = {"configurations": [configuration], "windows": [{"start": soon(0), "end": soon(28)}], "location": {"telescope_class": "1m0"}}
    group = {"name": "Example Request 3", "proposal": PROPOSAL, "ipp_value": 1.05, "operator": "SINGLE", "observation_type": "NORMAL"}
    return {**group, "requests": [request], **changes}


@pytest.fixture
def portal():
    with ObservationPortalEmulator(
        tokens={TOKEN: "observer", "other-token": "stranger"},
        archive_tokens={ARCHIVE_TOKEN: "observer"},
        proposals={"observer": {PROPOSAL}, "stranger": {"OTHER-001"}},
        schedule_time=0.2,
        wait_time=0.2,
        run_time=0.2,
        reduce_time=0.2,
    ) as emulator:
        yield emulator


def test_the_example_submission_and_query_work_as_documented(portal):
    response = requests.post(f"{portal.url}/api/requestgroups/", headers=AUTH, json=example_group(), timeout=5)
    assert response.status_code == 201
    stored = response.json()
    assert stored["state"] == "PENDING" and stored["name"] == "Example Request 3" and stored["submitter"] == "observer"
    assert [r["state"] for r in stored["requests"]] == ["PENDING"] and isinstance(stored["requests"][0]["id"], int)
    listing = requests.get(f"{portal.url}/api/requestgroups/?proposal={PROPOSAL}", headers=AUTH, timeout=5).json()
    assert [(g["name"], g["state"]) for g in listing["results"]] == [("Example Request 3", "PENDING")] and listing["count"] == 1
    assert requests.get(f"{portal.url}/api/requestgroups/", headers={"Authorization": "Token other-token"}, timeout=5).json()["count"] == 0


def test_tokens_are_checked_as_django_rest_framework_checks_them(portal):
    url = f"{portal.url}/api/requestgroups/"
    refused = requests.post(url, headers={"Authorization": "Token nope"}, json=example_group(), timeout=5)
    anonymous = requests.post(url, json=example_group(), timeout=5)
    assert (refused.status_code, refused.json()) == (401, {"detail": "Invalid token."})
    assert (anonymous.status_code, anonymous.json()) == (401, {"detail": "Authentication credentials were not provided."})
    assert anonymous.headers["WWW-Authenticate"] == "Token"
    assert requests.get(url, timeout=5).json()["count"] == 0  # reading anonymously shows public proposals only


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"proposal": "OTHER-001"}, {"non_field_errors": ["You do not belong to the proposal you are trying to submit with"]}),
        ({"ipp_value": 3}, {"non_field_errors": ["requestgroups ipp_value must be >= 0.5, <= 2.0"]}),
        ({"name": ""}, {"name": ["Please provide a name."]}),
    ],
)
def test_group_errors_come_back_in_the_serializers_shape(portal, change, errors):
    response = requests.post(f"{portal.url}/api/requestgroups/", headers=AUTH, json=example_group(**change), timeout=5)
    assert (response.status_code, response.json()) == (400, errors)


def test_nested_errors_keep_their_positions_and_validate_stores_nothing(portal):
    body = example_group()
    request = body["requests"][0]
    request["windows"] = [{"start": soon(-3), "end": soon(-2)}]
    request["configurations"][0]["instrument_configs"][1]["exposure_time"] = -1
    answer = requests.post(f"{portal.url}/api/requestgroups/validate/", headers=AUTH, json=body, timeout=5).json()
    assert answer == {
        "request_durations": {},
        "errors": {
            "requests": [
                {
                    "configurations": [{"instrument_configs": [{}, {"exposure_time": ["Ensure this value is greater than or equal to 0."]}]}],
                    "windows": [{"end": ["Window end time must be in the future"]}],
                }
            ]
        },
    }
    good = requests.post(f"{portal.url}/api/requestgroups/validate/", headers=AUTH, json=example_group(), timeout=5).json()
    assert good["errors"] == {} and good["request_durations"]["duration"] == 90 + 120
    assert portal.request_groups() == []


def test_instrument_rules_site_and_visibility(portal):
    body = example_group()
    configuration = body["requests"][0]["configurations"][0]
    configuration["instrument_configs"][0]["optical_elements"]["filter"] = "H-Beta"
    wrong_filter = requests.post(f"{portal.url}/api/requestgroups/", headers=AUTH, json=body, timeout=5).json()
    assert wrong_filter == {"requests": [{"configurations": [{"non_field_errors": ["optical element H-Beta of type filter is not available"]}]}]}
    northern = example_group()
    northern["requests"][0]["configurations"][0]["target"]["dec"] = 70.0
    northern["requests"][0]["location"]["site"] = "coj"
    invisible = requests.post(f"{portal.url}/api/requestgroups/", headers=AUTH, json=northern, timeout=5).json()
    assert invisible["requests"][0]["non_field_errors"][0].startswith("According to the constraints of the request, the target will not be visible")


def test_a_rapid_response_window_must_have_started(portal):
    body = example_group(observation_type="RAPID_RESPONSE")
    body["requests"][0]["windows"] = [{"start": soon(0.5), "end": soon(0.9)}]
    answer = requests.post(f"{portal.url}/api/requestgroups/", headers=AUTH, json=body, timeout=5).json()
    assert answer == {"non_field_errors": ["The Rapid Response observation window start time cannot be in the future."]}


def test_a_group_moves_with_the_clock_and_its_frames_appear_after_reduction(portal):
    portal.schedule_time = portal.wait_time = portal.run_time = 0.5  # phases long enough for every state to be read
    stored = requests.post(f"{portal.url}/api/requestgroups/", headers=AUTH, json=example_group(), timeout=5).json()
    group_url, request_id = f"{portal.url}/api/requestgroups/{stored['id']}/", stored["requests"][0]["id"]
    observations_url = f"{portal.url}/api/requests/{request_id}/observations/"
    states: list[str] = []
    observed: list[list[str]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (states[-1:] == ["COMPLETED"] and observed[-1:] == [["COMPLETED"]]):
        for seen, value in (
            (observed, [o["state"] for o in requests.get(observations_url, headers=AUTH, timeout=5).json()]),
            (states, requests.get(group_url, headers=AUTH, timeout=5).json()["state"]),
        ):
            if not seen or seen[-1] != value:
                seen.append(value)
        time.sleep(0.02)
    assert states == ["PENDING", "COMPLETED"]
    assert observed == [[], ["PENDING"], ["IN_PROGRESS"], ["COMPLETED"]]
    frames_url = f"{portal.archive_url}/frames/"
    query = {"request_id": request_id, "reduction_level": 91}
    assert requests.get(frames_url, params=query, headers={"Authorization": f"Token {ARCHIVE_TOKEN}"}, timeout=5).json()["count"] == 0
    time.sleep(0.3)
    listing = requests.get(frames_url, params={**query, "limit": 1}, headers={"Authorization": f"Token {ARCHIVE_TOKEN}"}, timeout=5).json()
    assert listing["count"] == 2 and len(listing["results"]) == 1 and listing["next"].startswith(frames_url)
    rest = requests.get(listing["next"], headers={"Authorization": f"Token {ARCHIVE_TOKEN}"}, timeout=5).json()
    frames = listing["results"] + rest["results"]
    assert sorted(f["primary_optical_element"] for f in frames) == ["B", "V"] and {f["reduction_level"] for f in frames} == {91}
    assert all(f["filename"].endswith("-e91.fits.fz") and f["request_id"] == request_id for f in frames)
    assert requests.get(frames[0]["url"], timeout=5).status_code == 200
    assert requests.get(frames[0]["url"].replace("Signature=", "Signature=0"), timeout=5).status_code == 403
    assert requests.get(frames_url, params=query, timeout=5).json()["count"] == 0  # proprietary: not for anonymous readers
    raw = requests.get(frames_url, params={**query, "reduction_level": 0}, headers={"Authorization": f"Token {ARCHIVE_TOKEN}"}, timeout=5)
    assert raw.json()["count"] == 2


def test_cancel_only_from_pending_and_again_without_change(portal):
    pending = requests.post(f"{portal.url}/api/requestgroups/", headers=AUTH, json=example_group(), timeout=5).json()
    cancel = f"{portal.url}/api/requestgroups/{pending['id']}/cancel/"
    first, again = requests.post(cancel, headers=AUTH, timeout=5), requests.post(cancel, headers=AUTH, timeout=5)
    assert (first.status_code, first.json()["state"], again.status_code) == (200, "CANCELED", 200)
    time.sleep(0.7)
    assert requests.get(f"{portal.url}/api/requestgroups/{pending['id']}/", headers=AUTH, timeout=5).json()["state"] == "CANCELED"
    done = requests.post(f"{portal.url}/api/requestgroups/", headers=AUTH, json=example_group(), timeout=5).json()
    time.sleep(0.7)
    refused = requests.post(f"{portal.url}/api/requestgroups/{done['id']}/cancel/", headers=AUTH, timeout=5)
    assert (refused.status_code, refused.json()) == (400, {"errors": [f"Cannot transition from request state COMPLETED to CANCELED for {done['id']}"]})
    stranger = requests.post(cancel, headers={"Authorization": "Token other-token"}, timeout=5)
    assert (stranger.status_code, stranger.json()) == (404, {"detail": "Not found."})


@pytest.mark.parametrize(
    ("fate", "group_state", "observations"),
    [
        ("WINDOW_EXPIRED", "WINDOW_EXPIRED", []),
        ("FAILURE_LIMIT_REACHED", "FAILURE_LIMIT_REACHED", ["FAILED"]),
        ("NOT_ATTEMPTED", "COMPLETED", ["NOT_ATTEMPTED", "COMPLETED"]),
    ],
)
def test_fates(portal, fate, group_state, observations):
    portal.next_fate(fate)
    stored = requests.post(f"{portal.url}/api/requestgroups/", headers=AUTH, json=example_group(), timeout=5).json()
    time.sleep(1.5)
    assert requests.get(f"{portal.url}/api/requestgroups/{stored['id']}/", headers=AUTH, timeout=5).json()["state"] == group_state
    shown = requests.get(f"{portal.url}/api/requests/{stored['requests'][0]['id']}/observations/", headers=AUTH, timeout=5).json()
    assert [o["state"] for o in shown] == observations


def test_a_lost_answer_still_stores_the_group_and_the_throttle_answers_429(portal):
    portal.lose_answer_next()
    lost = requests.post(f"{portal.url}/api/requestgroups/", headers=AUTH, json=example_group(), timeout=5)
    assert lost.status_code == 504 and "504 Gateway Time-out" in lost.text
    found = requests.get(f"{portal.url}/api/requestgroups/", params={"name": "example", "proposal": PROPOSAL}, headers=AUTH, timeout=5).json()
    assert [g["name"] for g in found["results"]] == ["Example Request 3"]  # the name filter matches substrings, ignoring case
    portal.throttle_next(1, wait=3)
    throttled = requests.get(f"{portal.url}/api/requestgroups/", headers=AUTH, timeout=5)
    detail = {"detail": "Request was throttled. Expected available in 3 seconds."}
    assert (throttled.status_code, throttled.headers["Retry-After"], throttled.json()) == (429, "3", detail)


def test_spectral_can_be_left_out_as_lco_no_longer_lists_it():
    without = {code: instrument for code, instrument in INSTRUMENTS.items() if code != "2M0-SCICAM-SPECTRAL"}
    with ObservationPortalEmulator(tokens={TOKEN: "observer"}, proposals={"observer": {PROPOSAL}}, instruments=without) as emulator:
        body = example_group()
        body["requests"][0]["configurations"][0]["instrument_type"] = "2M0-SCICAM-SPECTRAL"
        answer = requests.post(f"{emulator.url}/api/requestgroups/", headers=AUTH, json=body, timeout=5).json()
    (message,) = answer["requests"][0]["configurations"][0]["instrument_type"]
    assert message.startswith("Invalid instrument type 2M0-SCICAM-SPECTRAL. Valid instruments may include: 1M0-SCICAM-SINISTRO")
