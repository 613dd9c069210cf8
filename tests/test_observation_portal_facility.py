"""Every answer of the Observation Portal and the LCO archive, and the status an observer sees for
it: submission (including a 504 or a timeout after sending, looked up by name and never sent
again), following (the group's states, its observations, the archive's frames), cancelling and
remote validation. Exact calls and whole statuses, with ``responses``; no secret in any record.

``SCENARIOS`` also drives the check that every status is documented (tests/test_docs.py style,
``test_every_status_is_documented``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.transport import Transport
from facility_apis.facilities.observation_portal import GoodmanSpectrographFacility, SinistroFacility

MAY_HAVE_ARRIVED = "; the request may have reached the facility and was not sent again"

DOCS = Path(__file__).resolve().parent.parent / "docs" / "facilities" / "observation-portal.md"
BASE = "https://observe.lco.global/api"
GROUPS = f"{BASE}/requestgroups/"
GROUP = f"{GROUPS}1234/"
OBSERVATIONS = f"{BASE}/requests/5678/observations/"
FRAMES = "https://archive-api.lco.global/frames/"
TOKEN, ARCHIVE_TOKEN = "portal-token-3f9a1c77", "archive-token-8d02e4aa"
LCO_ALTDATA = {"API_TOKEN": TOKEN, "PROPOSAL_ID": "LCO2026B-001", "API_ARCHIVE_TOKEN": ARCHIVE_TOKEN}
SOAR_ALTDATA = {"API_TOKEN": TOKEN, "PROPOSAL_ID": "SOAR2026B-004"}
PAYLOAD = {"start_date": "2099-01-10T00:00:00Z", "end_date": "2099-01-17T00:00:00Z", "observation_choices": ["gp", "rp"]}
NAME = "ZTF26aaabbbc_17"
LONG_AGO = "2026-01-01T00:00:00.000000Z"
INVALID_TOKEN = {"detail": "Invalid token."}


def group(state: str = "PENDING", *, modified: str = LONG_AGO, request_state: str | None = None, **extra: Any) -> dict[str, Any]:
    requests_ = [{"id": 5678, "state": request_state or state}]
    return {"id": 1234, "name": NAME, "proposal": "LCO2026B-001", "state": state, "modified": modified, "requests": requests_, **extra}


def observation(state: str, **extra: Any) -> dict[str, Any]:
    when = {"start": "2026-11-21T10:00:00Z", "end": "2026-11-21T10:20:00Z"}
    return {"id": 91, "request": 5678, "site": "coj", "enclosure": "clma", "telescope": "1m0a", **when, "state": state, **extra}


def frame(name: str, element: str, when: str, level: int = 91) -> dict[str, Any]:
    return {
        "id": abs(hash(name)) % 10**6, "filename": name, "url": f"https://archive-lco-global.s3.amazonaws.com/{name}?X-Amz-Signature=abc",
        "primary_optical_element": element, "observation_date": when, "reduction_level": level, "request_id": 5678,
    }  # fmt: skip


FRAME_RESULTS = [
    frame("coj1m011-fa12-20261121-0042-e91.fits.fz", "gp", "2026-11-21T10:01:00.000000Z"),
    frame("coj1m011-fa12-20261121-0041-e91.fits.fz", "gp", "2026-11-21T10:00:00.000000Z"),
    frame("coj1m011-fa12-20261121-0043-e91.fits.fz", "rp", "2026-11-21T10:02:00.000000Z"),
]


def make_request(cls: type = SinistroFacility, remote_id: str | None = None, altdata: dict[str, str] = LCO_ALTDATA, payload=None) -> FollowupRequest:
    return FollowupRequest(17, Target("ZTF26aaabbbc", 150.125, -20.5), Allocation(1, dict(altdata)), dict(payload or PAYLOAD), remote_id=remote_id)


def run(operation: str, setup: Callable[[responses.RequestsMock], Any], *, cls: type = SinistroFacility, remote_id: str | None = None, altdata=LCO_ALTDATA):
    """``(outcome, calls)`` of one operation against the answers ``setup`` registers."""
    request = make_request(cls, remote_id, altdata)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        setup(mock)
        with Transport(backoff=0, retries=1) as transport:
            outcome = perform(cls(), operation, request, transport)
        calls = list(mock.calls)
    text = repr(outcome) + json.dumps([t.as_dict() for t in outcome.transactions])
    assert TOKEN not in text and ARCHIVE_TOKEN not in text, "a token leaked into the outcome or its transactions"
    return outcome, calls


def lookup(*groups: dict[str, Any]) -> Callable[[responses.RequestsMock], Any]:
    return lambda mock: mock.get(GROUPS, json={"count": len(groups), "next": None, "previous": None, "results": list(groups)})


def both(*setups: Callable[[responses.RequestsMock], Any]) -> Callable[[responses.RequestsMock], Any]:
    return lambda mock: [setup(mock) for setup in setups]


def completed(results=FRAME_RESULTS, modified: str = LONG_AGO) -> Callable[[responses.RequestsMock], Any]:
    return both(
        lambda m: m.get(GROUP, json=group("COMPLETED", modified=modified)),
        lambda m: m.get(FRAMES, json={"count": len(results), "next": None, "previous": None, "results": results}),
    )


PAST = "Window end time must be in the future"
RECENT = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
VALIDATION_ERRORS = {
    "requests": [
        {
            "windows": [{"end": ["Window end time must be in the future"]}],
            "configurations": [{"non_field_errors": ["optical element zz of type filter is not available"]}],
        }
    ]
}

#: name → (operation, remote id, answers, the status an observer sees, cls, altdata).
SCENARIOS: dict[str, tuple[str, str | None, Callable[[responses.RequestsMock], Any], str, type, dict[str, str]]] = {}


def scenario(name: str, operation: str, remote_id: str | None, setup, status: str, cls: type = SinistroFacility, altdata=LCO_ALTDATA) -> None:
    SCENARIOS[name] = (operation, remote_id, setup, status, cls, altdata)


# -- submit ---------------------------------------------------------------------------------------
scenario("accepted", "submit", None, lambda m: m.post(GROUPS, status=201, json=group()), "submitted: Observation Portal request group 1234")
scenario(
    "field errors", "submit", None,
    lambda m: m.post(GROUPS, status=400, json={"requests": [{"windows": [{"end": [PAST]}]}], "ipp_value": ["A valid number is required."]}),
    "rejected: requests.windows.end: Window end time must be in the future; ipp_value: A valid number is required.",
)  # fmt: skip
scenario(
    "refused proposal", "submit", None,
    lambda m: m.post(GROUPS, status=400, json={"non_field_errors": ["You do not belong to the proposal you are trying to submit with"]}),
    "rejected: You do not belong to the proposal you are trying to submit with",
)  # fmt: skip
scenario(
    "refused token", "submit", None, lambda m: m.post(GROUPS, status=401, json=INVALID_TOKEN),
    "failed to submit: LCO Observation Portal refused the credentials (HTTP 401: Invalid token.)",
)  # fmt: skip
scenario(
    "forbidden", "submit", None, lambda m: m.post(GROUPS, status=403, json={"detail": "You do not have permission to perform this action."}),
    "failed to submit: LCO Observation Portal refused the credentials (HTTP 403: You do not have permission to perform this action.)",
)  # fmt: skip
scenario(
    "throttled", "submit", None,
    lambda m: m.post(GROUPS, status=429, json={"detail": "Request was throttled. Expected available in 7 seconds."}, headers={"Retry-After": "7"}),
    "failed to submit: rate limit reached at observe.lco.global; retry in 7 s",
)  # fmt: skip
scenario(
    "504 then found", "submit", None, both(lambda m: m.post(GROUPS, status=504, body="<html><title>504 Gateway Time-out</title></html>"), lookup(group())),
    "submitted: Observation Portal request group 1234 (found by name after: observe.lco.global answered HTTP 504 "
    "(temporarily unavailable)" + MAY_HAVE_ARRIVED + ")",
)  # fmt: skip
scenario(
    "504 not found", "submit", None, both(lambda m: m.post(GROUPS, status=504), lookup()),
    "failed: observe.lco.global answered HTTP 504 (temporarily unavailable)" + MAY_HAVE_ARRIVED + "; no request group named 'ZTF26aaabbbc_17' was found at the "
    "portal yet: check it before submitting again",
)  # fmt: skip
scenario(
    "timeout then found", "submit", None, both(lambda m: m.post(GROUPS, body=requests.ReadTimeout()), lookup(group())),
    "submitted: Observation Portal request group 1234 (found by name after: no answer from observe.lco.global within 30 s; the request may have "
    "reached the facility and was not sent again)",
)  # fmt: skip
scenario(
    "dropped and lookup fails", "submit", None,
    both(lambda m: m.post(GROUPS, body=requests.ConnectionError("reset")), lambda m: m.get(GROUPS, status=500, body="Server Error (500)")),
    "failed: connection to observe.lco.global failed: ConnectionError; the request may have reached the facility and was not sent "
    "again; looking it up by name failed (LCO Observation Portal answered HTTP 500: Server Error (500)): check the portal for request group "
    "'ZTF26aaabbbc_17' before submitting again",
)  # fmt: skip
scenario(
    "500 then found", "submit", None, both(lambda m: m.post(GROUPS, status=500, body="Server Error (500)"), lookup(group())),
    "submitted: Observation Portal request group 1234 (found by name after: LCO Observation Portal answered HTTP 500: Server Error (500))",
)  # fmt: skip
scenario(
    "201 unreadable then found", "submit", None, both(lambda m: m.post(GROUPS, status=201, body='{"id": 12'), lookup(group())),
    "submitted: Observation Portal request group 1234 (found by name after: LCO Observation Portal sent malformed JSON for the new request "
    "group (HTTP 201))",
)  # fmt: skip
scenario(
    "two found", "submit", None, both(lambda m: m.post(GROUPS, status=504), lookup(group(), {**group(), "id": 1240})),
    "failed: observe.lco.global answered HTTP 504 (temporarily unavailable)" + MAY_HAVE_ARRIVED + "; the portal holds several request groups named "
    "'ZTF26aaabbbc_17' (1234, 1240): check them before submitting again",
)  # fmt: skip
scenario(
    "cannot connect", "submit", None, lambda m: m.post(GROUPS, body=requests.ConnectTimeout()), "failed to submit: could not connect to observe.lco.global"
)
scenario(
    "bad payload", "submit", None, lambda m: None, "rejected: invalid payload: $.end_date: must be after start_date",
)  # payload replaced in the test below
scenario("bad altdata", "submit", None, lambda m: None, "failed to submit: invalid altdata: $.PROPOSAL_ID: is required", altdata={"API_TOKEN": TOKEN})
# -- get ------------------------------------------------------------------------------------------
scenario("not submitted", "get", None, lambda m: None, "pending submission: not submitted to the Observation Portal yet")
scenario(
    "waiting", "get", "1234", both(lambda m: m.get(GROUP, json=group()), lambda m: m.get(OBSERVATIONS, json=[])), "queued: waiting to be scheduled"
)
scenario(
    "scheduled", "get", "1234", both(lambda m: m.get(GROUP, json=group()), lambda m: m.get(OBSERVATIONS, json=[observation("PENDING")])),
    "queued: scheduled at coj 1m0a for 2026-11-21 10:00 UTC",
)  # fmt: skip
scenario(
    "observing", "get", "1234", both(lambda m: m.get(GROUP, json=group()), lambda m: m.get(OBSERVATIONS, json=[observation("IN_PROGRESS")])),
    "running: observing at coj 1m0a since 2026-11-21 10:00 UTC",
)  # fmt: skip
scenario(
    "not attempted", "get", "1234",
    both(lambda m: m.get(GROUP, json=group()), lambda m: m.get(OBSERVATIONS, json=[observation("COMPLETED", id=90), observation("NOT_ATTEMPTED")])),
    "queued: the observation at coj 1m0a on 2026-11-21 10:00 UTC was not attempted; waiting to be scheduled again",
)  # fmt: skip
scenario(
    "observation failed", "get", "1234", both(lambda m: m.get(GROUP, json=group()), lambda m: m.get(OBSERVATIONS, json=[observation("FAILED")])),
    "queued: the observation at coj 1m0a on 2026-11-21 10:00 UTC failed; waiting to be scheduled again",
)  # fmt: skip
scenario(
    "partly observed", "get", "1234",
    both(lambda m: m.get(GROUP, json=group()), lambda m: m.get(OBSERVATIONS, json=[observation("COMPLETED")]), lambda m: m.get(GROUP, json=group())),
    "queued: the observation at coj 1m0a on 2026-11-21 10:00 UTC completed too little of the request; waiting to be scheduled again",
)  # fmt: skip
scenario(
    "completed between two reads", "get", "1234",
    both(
        lambda m: m.get(GROUP, json=group()),
        lambda m: m.get(OBSERVATIONS, json=[observation("COMPLETED")]),
        lambda m: m.get(GROUP, json=group("COMPLETED")),
        lambda m: m.get(FRAMES, json={"count": 1, "next": None, "results": FRAME_RESULTS[2:]}),
    ),
    "complete: request group 1234 observed: 1 reduced frame (rp) in the LCO archive",
)  # fmt: skip
scenario(
    "completed with frames", "get", "1234", completed(),
    "complete: request group 1234 observed: 3 reduced frames (gp ×2, rp) in the LCO archive",
)  # fmt: skip
scenario(
    "completed, frames still reducing", "get", "1234", completed([], RECENT),
    "running: request group 1234 observed; waiting for its reduced frames in the LCO archive",
)  # fmt: skip
scenario(
    "completed, no frames", "get", "1234", completed([]), "complete: request group 1234 observed; the LCO archive lists no reduced frames for it"
)
scenario(
    "completed, no archive token", "get", "1234", lambda m: m.get(GROUP, json=group("COMPLETED")),
    "complete: request group 1234 observed; frames not listed (the allocation has no API_ARCHIVE_TOKEN)", altdata={"API_TOKEN": TOKEN, "PROPOSAL_ID": "P"},
)  # fmt: skip
scenario(
    "completed, archive token refused", "get", "1234",
    both(lambda m: m.get(GROUP, json=group("COMPLETED")), lambda m: m.get(FRAMES, status=401, json=INVALID_TOKEN)),
    "complete: request group 1234 observed; frames not listed: LCO science archive refused the credentials (HTTP 401: Invalid token.)",
)  # fmt: skip
scenario(
    "completed, archive failing", "get", "1234",
    both(lambda m: m.get(GROUP, json=group("COMPLETED")), lambda m: m.get(FRAMES, status=500, body="Server Error (500)")),
    "failed: LCO science archive answered HTTP 500: Server Error (500)",
)  # fmt: skip
scenario(
    "SOAR completed", "get", "1234", lambda m: m.get(GROUP, json=group("COMPLETED")), "complete: request group 1234 observed",
    cls=GoodmanSpectrographFacility, altdata=SOAR_ALTDATA,
)  # fmt: skip
scenario(
    "window expired", "get", "1234", lambda m: m.get(GROUP, json=group("WINDOW_EXPIRED")),
    "complete: no data: the window ended before the request could be observed",
)  # fmt: skip
scenario(
    "failure limit", "get", "1234", lambda m: m.get(GROUP, json=group("FAILURE_LIMIT_REACHED")),
    "complete: no data: the portal stopped trying after too many failed observations",
)  # fmt: skip
scenario("canceled there", "get", "1234", lambda m: m.get(GROUP, json=group("CANCELED")), "canceled: request group 1234 was canceled at the portal")
scenario(
    "gone", "get", "1234", lambda m: m.get(GROUP, status=404, json={"detail": "Not found."}),
    "canceled: the portal no longer shows request group 1234 (deleted, or not visible to this token)",
)  # fmt: skip
scenario(
    "unknown state", "get", "1234", lambda m: m.get(GROUP, json=group("DRAFT")),
    "failed: LCO Observation Portal reported request group 1234 in an unknown state 'DRAFT'",
)  # fmt: skip
scenario(
    "group without requests", "get", "1234", lambda m: m.get(GROUP, json={"id": 1234, "state": "PENDING", "requests": []}),
    "failed: LCO Observation Portal sent request group 1234 without a state or requests",
)  # fmt: skip
scenario(
    "token refused while following", "get", "1234", lambda m: m.get(GROUP, status=401, json=INVALID_TOKEN),
    "failed: LCO Observation Portal refused the credentials (HTTP 401: Invalid token.)",
)  # fmt: skip
scenario(
    "portal unavailable", "get", "1234", lambda m: m.get(GROUP, status=503), "failed: observe.lco.global answered HTTP 503 (temporarily unavailable)"
)
# -- delete ---------------------------------------------------------------------------------------
scenario("canceled", "delete", "1234", lambda m: m.post(f"{GROUP}cancel/", json=group("CANCELED")), "deleted: request group 1234 canceled at the portal")
scenario(
    "cancel of a completed group", "delete", "1234",
    both(
        lambda m: m.post(f"{GROUP}cancel/", status=400, json={"errors": ["Cannot transition from request state COMPLETED to CANCELED for 1234"]}),
        lambda m: m.get(GROUP, json=group("COMPLETED")),
    ),
    "failed: request group 1234 is already COMPLETED at the portal and cannot be canceled",
)  # fmt: skip
scenario(
    "cancel refused while pending", "delete", "1234",
    both(lambda m: m.post(f"{GROUP}cancel/", status=400, json={"errors": ["Not now"]}), lambda m: m.get(GROUP, json=group())),
    "failed: LCO 1 m Sinistro imager refused the delete: Not now",
)  # fmt: skip
scenario(
    "cancel of an unknown group", "delete", "1234", lambda m: m.post(f"{GROUP}cancel/", status=404, json={"detail": "Not found."}),
    "deleted: the portal does not show request group 1234 (deleted, or not visible to this token)",
)  # fmt: skip
scenario("nothing to cancel", "delete", None, lambda m: None, "deleted: nothing had been sent to the Observation Portal")
# -- remote validation ----------------------------------------------------------------------------
scenario(
    "would be accepted", "remote_validate", None,
    lambda m: m.post(f"{GROUPS}validate/", json={"request_durations": {"duration": 1512.0, "requests": [{"duration": 1512.0}]}, "errors": {}}),
    "pending submission: LCO Observation Portal would accept it: 0.42 h of telescope time",
)  # fmt: skip
scenario(
    "would be refused", "remote_validate", None, lambda m: m.post(f"{GROUPS}validate/", json={"request_durations": {}, "errors": VALIDATION_ERRORS}),
    "rejected: LCO Observation Portal would refuse it: $.end_date: Window end time must be in the future; $.requests[0].configurations[0]: "
    "optical element zz of type filter is not available",
)  # fmt: skip
scenario(
    "validation answer unreadable", "remote_validate", None, lambda m: m.post(f"{GROUPS}validate/", json={"detail": "odd"}),
    "failed to submit: LCO Observation Portal sent a validation answer without errors or request_durations",
)  # fmt: skip


def _run_scenario(name: str) -> Outcome:
    operation, remote_id, setup, _, cls, altdata = SCENARIOS[name]
    if name == "bad payload":
        request = make_request(cls, remote_id, altdata, {**PAYLOAD, "end_date": "2099-01-09T00:00:00Z"})
        with Transport() as transport:
            return perform(cls(), operation, request, transport)
    return run(operation, setup, cls=cls, remote_id=remote_id, altdata=altdata)[0]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_answer_ends_in_the_status_an_observer_reads(name):
    assert _run_scenario(name).status == SCENARIOS[name][3]


def _documented() -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("(observation-portal-statuses)=") : text.index("(observation-portal-frames)=")]
    return {re.sub(r"\d+(\.\d+)?", "N", span) for span in re.findall(r"`([^`]+)`", section)}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_status_is_documented(name):
    status = SCENARIOS[name][3]
    assert re.sub(r"\d+(\.\d+)?", "N", status) in _documented(), f"{name}: {status!r} is not in {DOCS.name}"


# -- the details behind the statuses --------------------------------------------------------------


def test_an_accepted_submission_is_sent_once_as_prepared_and_followed_by_its_id():
    outcome, calls = run("submit", SCENARIOS["accepted"][2])
    (call,) = calls
    facility = SinistroFacility()
    prepared = facility.prepare(make_request(payload=facility.validate_payload(PAYLOAD)))
    assert json.loads(call.request.body) == prepared.json
    assert call.request.headers["Authorization"] == f"Token {TOKEN}"
    assert (outcome.state, outcome.remote_id, outcome.poll_after) == (State.SUBMITTED, "1234", 300.0)
    assert outcome.transactions[0].request_headers["Authorization"] == "***"


@pytest.mark.parametrize("name", ["504 then found", "timeout then found", "500 then found", "201 unreadable then found", "504 not found", "two found"])
def test_a_submission_that_may_have_arrived_is_looked_up_by_name_and_never_sent_again(name):
    outcome, calls = run("submit", SCENARIOS[name][2])
    posts = [c for c in calls if c.request.method == "POST"]
    (get,) = [c for c in calls if c.request.method == "GET"]
    assert len(posts) == 1, "a submission that may have arrived must never be sent again"
    query = parse_qs(urlsplit(get.request.url).query)
    assert query["proposal"] == ["LCO2026B-001"] and query["name"] == [NAME] and query["limit"] == ["50"]
    created_after = datetime.fromisoformat(query["created_after"][0])
    assert timedelta(minutes=9) < datetime.now(UTC) - created_after < timedelta(minutes=11)
    assert outcome.poll_after == (300.0 if outcome.state is State.SUBMITTED else None)
    assert outcome.remote_id == ("1234" if outcome.state is State.SUBMITTED else None)


def test_a_name_matching_only_as_a_substring_is_not_taken_for_the_lost_group():
    longer = {**group(), "id": 999, "name": NAME + "0"}  # the portal's name filter matches substrings
    outcome, _ = run("submit", both(lambda m: m.post(GROUPS, status=504), lookup(longer, group())))
    assert outcome.remote_id == "1234"


def test_a_submission_that_never_left_is_retried_not_looked_up():
    outcome, calls = run("submit", SCENARIOS["cannot connect"][2])
    assert [c.request.method for c in calls] == ["POST"]  # no lookup: nothing reached the portal
    assert (outcome.state, outcome.poll_after) == (State.FAILED, 60.0)


def test_completed_frames_come_from_the_archive_by_request_id_oldest_first():
    outcome, calls = run("get", SCENARIOS["completed with frames"][2], remote_id="1234")
    archive = [c for c in calls if c.request.url.startswith(FRAMES)]
    (call,) = archive
    assert parse_qs(urlsplit(call.request.url).query) == {
        "request_id": ["5678"], "reduction_level": ["91"], "exclude_calibrations": ["true"], "limit": ["1000"],
    }  # fmt: skip
    assert call.request.headers["Authorization"] == f"Token {ARCHIVE_TOKEN}"
    assert [f.name for f in outcome.frames] == [
        "coj1m011-fa12-20261121-0041-e91.fits.fz",
        "coj1m011-fa12-20261121-0042-e91.fits.fz",
        "coj1m011-fa12-20261121-0043-e91.fits.fz",
    ]
    first = outcome.frames[0]
    assert (first.url, first.filter, first.mjd) == (FRAME_RESULTS[1]["url"], "gp", pytest.approx(61365.41666667))
    assert outcome.state is State.COMPLETED and outcome.poll_after is None


def test_the_archive_is_read_page_by_page_on_its_own_origin_only():
    second = f"{FRAMES}?request_id=5678&limit=1&offset=1"
    pages = both(
        lambda m: m.get(GROUP, json=group("COMPLETED")),
        lambda m: m.get(FRAMES, match=[responses.matchers.query_param_matcher({"request_id": "5678", "limit": "1", "offset": "1"})],
                        json={"count": 2, "next": None, "results": FRAME_RESULTS[1:2]}),
        lambda m: m.get(FRAMES, json={"count": 2, "next": second, "results": FRAME_RESULTS[:1]}),
    )  # fmt: skip
    outcome, _ = run("get", pages, remote_id="1234")
    assert [f.name for f in outcome.frames] == [FRAME_RESULTS[1]["filename"], FRAME_RESULTS[0]["filename"]]
    elsewhere = both(
        lambda m: m.get(GROUP, json=group("COMPLETED")),
        lambda m: m.get(FRAMES, json={"count": 2, "next": "https://elsewhere.example/frames/?offset=1", "results": FRAME_RESULTS[:1]}),
    )
    outcome, calls = run("get", elsewhere, remote_id="1234")
    assert outcome.status == "failed: LCO science archive named a next page off its own service: not followed"
    assert outcome.poll_after is None and not any("elsewhere" in c.request.url for c in calls)


def test_a_pending_group_asks_for_its_observations_without_canceled_ones():
    _, calls = run("get", SCENARIOS["scheduled"][2], remote_id="1234")
    (call,) = [c for c in calls if "/observations/" in c.request.url]
    assert urlsplit(call.request.url).query == "exclude_canceled=true"


def test_remote_validation_sends_exactly_the_submission_body_and_creates_nothing():
    _, calls = run("remote_validate", SCENARIOS["would be accepted"][2])
    (call,) = calls
    facility = SinistroFacility()
    assert call.request.url == f"{GROUPS}validate/"
    assert json.loads(call.request.body) == facility.prepare(make_request(payload=facility.validate_payload(PAYLOAD))).json


def test_configured_urls_are_held_to_the_egress_rule():
    from facility_apis.core.errors import ConfigurationError

    for key in ("base_url", "archive_url"):
        with pytest.raises(ConfigurationError, match=f"the configured lco_sinistro {key} is refused"):
            SinistroFacility({key: "http://10.0.0.5/portal"})
