"""ZTF forced photometry (IPAC): the exact calls, every answer branch and the status an observer
sees for it, with ``responses``; each status is checked against the facility's page."""

import base64
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from facility_apis.core.interface import Allocation, FollowupRequest, HostPoint, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.transport import Transport
from facility_apis.facilities.ztf_fp import ZTFForcedPhotometryFacility
from facility_apis.facilities.ztf_fp.facility import BUSY_WAIT, DEFAULT_BASE_URL, LIST_PATH, REQUEST_PATH

ROOT = Path(__file__).resolve().parent
FIXTURES = ROOT / "fixtures" / "ztf_fp"
DOC = ROOT.parent / "docs" / "facilities" / "ztf_fp.md"
REQUEST_URL = DEFAULT_BASE_URL + REQUEST_PATH
LIST_URL = DEFAULT_BASE_URL + LIST_PATH
LC_PATH = "/ztf/ops/fp/2026/11/20/field000600/forcedphotometry_req00002001_lc.txt"
ALTDATA = {
    "ipac_http_user": "ztffps-shared",
    "ipac_http_password": "Shared-Pw!9",
    "ipac_email": "observer+fp@example.org",
    "ipac_userpass": "acct-pass-5X7",
}
SECRETS = ("Shared-Pw!9", "observer+fp@example.org", "observer%2Bfp%40example.org", "acct-pass-5X7")
PAYLOAD = {"start_date": "2026-10-01", "end_date": "2026-10-31"}
#: 2026-11-21 13:30:00 UTC: the job list is next worth reading at 14:05 UTC, 2100 s later.
NOW = datetime(2026, 11, 21, 13, 30, tzinfo=UTC).timestamp()
KEY = "ra=35.2000000&dec=12.4000000&jdstart=2460950.500000&jdend=2460960.500000"


def facility(**config):
    made = ZTFForcedPhotometryFacility(config)
    made.clock = lambda: NOW
    return made


def make_request(remote_id=None, payload=None, target=None, altdata=None):
    target = target or Target("ZTF26fp", 150.0, -20.0)
    return FollowupRequest(7, target, Allocation(1, altdata or ALTDATA, instrument_id=3), payload if payload is not None else PAYLOAD, remote_id=remote_id)


def run(operation, request, made=None):
    with Transport(backoff=0, retries=1) as transport:
        return perform(made or facility(), operation, request, transport)


def page(body, title="ZTF Forced Photometry Service"):
    return f"<html><head><title>{title}</title></head><body>{body}</body></html>"


CONFIRMED = page(
    "<p>Your request has been submitted.</p><table><tr><th>RA</th><th>Dec</th><th>JD start</th><th>JD end</th></tr>"
    "<tr><td>150.0000000</td><td>-20.0000000</td><td>2461314.500000</td><td>2461345.500000</td></tr></table>"
)


COLUMNS = ("reqId", "ra", "dec", "startJD", "endJD", "created", "started", "ended", "exitcode", "status", "lightcurve")


def job_list(*rows):
    header = "<tr>" + "".join(f"<th>{n}</th>" for n in COLUMNS) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return page(f"<table border=1>{header}{body}</table>")


def row(req_id=2001, started="", ended="", exitcode="", lightcurve=""):
    return (req_id, "35.2000000", "12.4000000", "2460950.500000", "2460960.500000", "2026-11-20 10:01:02", started, ended, exitcode, "x", lightcurve)


def ended(exitcode, lightcurve=LC_PATH, req_id=2001):
    return job_list(row(req_id, "2026-11-20 10:20:00", "2026-11-20 10:31:00", exitcode, lightcurve))


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# -- the exact calls -----------------------------------------------------------------------------


def test_submit_sends_the_request_cgi_with_basic_auth_and_the_account_in_the_query(rsps):
    rsps.get(REQUEST_URL, body=CONFIRMED)
    outcome = run("submit", make_request())
    sent = rsps.calls[0].request
    parts = urlsplit(sent.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REQUEST_URL
    # 00:00 UTC of 2026-10-01 to 24:00 UTC of 2026-10-31, as Julian Dates.
    assert parse_qsl(parts.query) == [
        ("ra", "150.0000000"), ("dec", "-20.0000000"), ("jdstart", "2461314.500000"), ("jdend", "2461345.500000"),
        ("email", "observer+fp@example.org"), ("userpass", "acct-pass-5X7"),
    ]  # fmt: skip
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"ztffps-shared:Shared-Pw!9").decode()
    assert outcome.state is State.SUBMITTED
    assert outcome.remote_id == "ra=150.0000000&dec=-20.0000000&jdstart=2461314.500000&jdend=2461345.500000"
    assert outcome.poll_after == 2100  # the next refresh (14:00) plus list_delay (300 s)


def test_no_account_secret_in_any_stored_url_or_transaction(rsps):
    rsps.get(REQUEST_URL, body=CONFIRMED)
    rsps.get(LIST_URL, body=ended(0))
    rsps.get(DEFAULT_BASE_URL + LC_PATH, body=(FIXTURES / "lightcurve_mixed.txt").read_text())
    submitted = run("submit", make_request())
    completed = run("get", make_request(KEY))
    records = [t.as_dict() for t in submitted.transactions + completed.transactions]
    assert len(records) == 3
    text = repr(records) + repr(submitted) + repr(completed) + submitted.status + completed.status
    for secret in SECRETS:
        assert secret not in text
    assert records[0]["request"]["url"].endswith("&email=***&userpass=***")
    assert records[1]["request"]["url"] == f"{LIST_URL}?email=***&userpass=***&option=All+recent+jobs&action=Query+Database"
    assert all(r["request"]["headers"]["Authorization"] == "***" for r in records)


def test_the_window_starts_no_earlier_than_the_survey(rsps):
    rsps.get(REQUEST_URL, body=CONFIRMED)
    run("submit", make_request(payload={"start_date": "2017-01-01", "end_date": "2018-04-01"}))
    query = dict(parse_qsl(urlsplit(rsps.calls[0].request.url).query))
    assert query["jdstart"] == "2458194.500000" and query["jdend"] == "2458210.500000"


def test_a_centroid_position_is_computed_from_the_host_photometry_and_sent(rsps):
    rsps.get(REQUEST_URL, body=CONFIRMED)
    points = (HostPoint(150.0001, -20.0, 200.0, 10.0), HostPoint(150.0003, -20.0, 200.0, 10.0), HostPoint(151.0, -21.0, 500.0, 10.0, origin="fp"))
    target = Target("ZTF26fp", 150.0, -20.0, photometry=points)
    outcome = run("submit", make_request(payload={**PAYLOAD, "position": "Flux weighted centroid"}, target=target))
    query = dict(parse_qsl(urlsplit(rsps.calls[0].request.url).query))
    assert (query["ra"], query["dec"]) == ("150.0002000", "-20.0000000")
    assert "(flux-weighted centroid)" in outcome.detail


def test_the_job_list_is_read_with_the_documented_query_and_the_light_curve_from_ipacs_server(rsps):
    rsps.get(LIST_URL, body=ended(0))
    rsps.get(DEFAULT_BASE_URL + LC_PATH, body=(FIXTURES / "lightcurve_mixed.txt").read_text())
    outcome = run("get", make_request(KEY))
    listing, curve = (call.request for call in rsps.calls)
    assert dict(parse_qsl(urlsplit(listing.url).query)) == {
        "email": "observer+fp@example.org", "userpass": "acct-pass-5X7", "option": "All recent jobs", "action": "Query Database",
    }  # fmt: skip
    assert curve.url == DEFAULT_BASE_URL + LC_PATH and curve.headers["Authorization"].startswith("Basic ")
    assert outcome.state is State.COMPLETED and len(outcome.photometry) == 7
    assert outcome.remote_id == KEY + "&reqId=2001"  # pinned once listed


def test_the_request_cgi_is_never_sent_twice(rsps):
    rsps.get(REQUEST_URL, body=requests.ReadTimeout("read timed out"))
    outcome = run("submit", make_request())
    assert len(rsps.calls) == 1 and outcome.state is State.FAILED and outcome.poll_after is None


def test_a_busy_list_pauses_for_two_minutes_and_a_pending_job_is_looked_at_after_the_next_refresh(rsps):
    rsps.get(LIST_URL, body="Error: database is busy; try again a minute later.\n")
    busy = run("get", make_request(KEY))
    assert busy.state is State.THROTTLED and busy.poll_after == BUSY_WAIT
    rsps.replace(responses.GET, LIST_URL, body=job_list(row()))
    queued = run("get", make_request(KEY))
    assert queued.state is State.QUEUED and queued.poll_after == 2100


def test_refresh_timing_follows_the_configured_period():
    made = facility(list_period=600, list_delay=30)
    assert made._next_look() == (30.0, "13:30 UTC")  # refreshed at 13:30:00, worth reading at 13:30:30
    made.clock = lambda: NOW + 45  # 13:30:45: the next refresh is at 13:40
    assert made._next_look() == (585.0, "13:40 UTC")


# -- every answer branch, and its status on the page --------------------------------------------------


def _centroid_target(flux=10.0):
    return Target("ZTF26fp", 150.0, -20.0, photometry=(HostPoint(150.0, -20.0, flux, 10.0),))


def scenarios():
    lc = (FIXTURES / "lightcurve_mixed.txt").read_text()
    header_only = (FIXTURES / "lightcurve_header_only.txt").read_text()
    lc_url = DEFAULT_BASE_URL + LC_PATH
    echoed_other = CONFIRMED.replace("150.0000000", "150.0010000")
    return {
        # submit
        "confirmed": ("submit", {}, lambda m: m.get(REQUEST_URL, body=CONFIRMED)),
        "confirmed centroid": (
            "submit",
            {"payload": {**PAYLOAD, "position": "Flux weighted centroid"}, "target": _centroid_target(flux=90.0)},
            lambda m: m.get(REQUEST_URL, body=CONFIRMED),
        ),
        "echoed other values": ("submit", {}, lambda m: m.get(REQUEST_URL, body=echoed_other)),
        "busy on submit": ("submit", {}, lambda m: m.get(REQUEST_URL, body="Error: database is busy; try again a minute later.")),
        "pending limit": ("submit", {}, lambda m: m.get(REQUEST_URL, body=page("<p>Error: you have reached the maximum of 100 pending requests.</p>"))),
        "unconfirmed page": ("submit", {}, lambda m: m.get(REQUEST_URL, body=page("<p>Error: the e-mail address or user password is not valid.</p>"))),
        "unconfirmed empty": ("submit", {}, lambda m: m.get(REQUEST_URL, body="")),
        "401 on submit": ("submit", {}, lambda m: m.get(REQUEST_URL, status=401, body=page("<h1>Unauthorized</h1>", "401 Unauthorized"))),
        "500 on submit": ("submit", {}, lambda m: m.get(REQUEST_URL, status=500, body="Internal Server Error")),
        "503 on submit": ("submit", {}, lambda m: m.get(REQUEST_URL, status=503)),
        "timeout on submit": ("submit", {}, lambda m: m.get(REQUEST_URL, body=requests.ReadTimeout("x"))),
        "refused connection": ("submit", {}, lambda m: m.get(REQUEST_URL, body=requests.ConnectTimeout("connect timed out"))),
        "window before survey": ("submit", {"payload": {"start_date": "2017-01-01", "end_date": "2018-03-16"}}, lambda m: None),
        "end before start": ("submit", {"payload": {"start_date": "2026-10-10", "end_date": "2026-10-01"}}, lambda m: None),
        "centroid without photometry": ("submit", {"payload": {**PAYLOAD, "position": "Flux weighted centroid (ZTF alert photometry only)"}}, lambda m: None),
        "centroid without qualifying points": (
            "submit",
            {"payload": {**PAYLOAD, "position": "Flux weighted centroid"}, "target": _centroid_target()},
            lambda m: None,
        ),
        "missing credential": ("submit", {"altdata": {k: v for k, v in ALTDATA.items() if k != "ipac_userpass"}}, lambda m: None),
        # get
        "zero records": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body="Zero records returned\n")),
        "not listed yet": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=job_list((1999, "1.0", *row()[2:])))),
        "queued": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=job_list(row()))),
        "running": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=job_list(row(started="2026-11-20 10:20:00")))),
        "complete": ("get", {"remote_id": KEY}, lambda m: (m.get(LIST_URL, body=ended(0)), m.get(lc_url, body=lc))),
        "complete flagged": ("get", {"remote_id": KEY}, lambda m: (m.get(LIST_URL, body=ended(56)), m.get(lc_url, body=lc))),
        "complete reset start": ("get", {"remote_id": KEY}, lambda m: (m.get(LIST_URL, body=ended(62)), m.get(lc_url, body=lc))),
        "no epoch kept": ("get", {"remote_id": KEY}, lambda m: (m.get(LIST_URL, body=ended(0)), m.get(lc_url, body=header_only))),
        "exit 63": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=ended(63, ""))),
        "exit 65": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=ended(65, ""))),
        "exit 64": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=ended(64, ""))),
        "exit 255": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=ended(255, ""))),
        "ended without light curve": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=ended(0, "null"))),
        "unknown exit code": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=ended(77, ""))),
        "busy list": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body="Error: database is busy; try again a minute later.")),
        "no job table": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=page("<p>The service is down for maintenance.</p>"))),
        "pinned job gone": ("get", {"remote_id": KEY + "&reqId=1500"}, lambda m: m.get(LIST_URL, body=job_list(row()))),
        "light curve off origin": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=ended(0, "https://files.example.net/lc.txt"))),
        "light curve missing": ("get", {"remote_id": KEY}, lambda m: (m.get(LIST_URL, body=ended(0)), m.get(lc_url, status=404, body="Not Found"))),
        "light curve malformed": ("get", {"remote_id": KEY}, lambda m: (m.get(LIST_URL, body=ended(0)), m.get(lc_url, body="# nothing here\n"))),
        "401 on list": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, status=401, body=page("<h1>Unauthorized</h1>", "401 Unauthorized"))),
        "list unreachable": ("get", {"remote_id": KEY}, lambda m: m.get(LIST_URL, body=requests.ConnectTimeout("connect timed out"))),
        "not a job key": ("get", {"remote_id": "https://fallingstar-data.com/forcedphot/queue/1/"}, lambda m: None),
    }


EXPECTED_STATES = {
    "confirmed": State.SUBMITTED, "confirmed centroid": State.SUBMITTED, "echoed other values": State.SUBMITTED,
    "busy on submit": State.THROTTLED, "pending limit": State.THROTTLED, "unconfirmed page": State.FAILED, "unconfirmed empty": State.FAILED,
    "401 on submit": State.FAILED, "500 on submit": State.FAILED, "503 on submit": State.FAILED, "timeout on submit": State.FAILED,
    "refused connection": State.FAILED, "window before survey": State.REJECTED, "end before start": State.REJECTED,
    "centroid without photometry": State.REJECTED, "centroid without qualifying points": State.REJECTED, "missing credential": State.FAILED,
    "zero records": State.SUBMITTED, "not listed yet": State.SUBMITTED, "queued": State.QUEUED, "running": State.RUNNING,
    "complete": State.COMPLETED, "complete flagged": State.COMPLETED, "complete reset start": State.COMPLETED, "no epoch kept": State.NO_DATA,
    "exit 63": State.NO_DATA, "exit 65": State.NO_DATA, "exit 64": State.FAILED, "exit 255": State.FAILED,
    "ended without light curve": State.FAILED, "unknown exit code": State.FAILED, "busy list": State.THROTTLED, "no job table": State.FAILED,
    "pinned job gone": State.FAILED, "light curve off origin": State.FAILED, "light curve missing": State.FAILED,
    "light curve malformed": State.FAILED, "401 on list": State.FAILED, "list unreachable": State.FAILED, "not a job key": State.FAILED,
}  # fmt: skip
#: Which failures are tried again later (``poll_after``), and which end the request.
RETRIED = {"refused connection", "busy on submit", "pending limit", "no job table", "light curve missing", "401 on list", "list unreachable", "busy list"}


def _status_spans() -> set[str]:
    text = DOC.read_text()
    section = text[text.index("(ztf_fp-statuses)=") : text.index("(ztf_fp-photometry)=")]
    return {re.sub(r"\d+", "N", span) for span in re.findall(r"`([^`]+)`", section)}


@pytest.mark.parametrize("scenario", list(scenarios()))
def test_every_answer_ends_in_its_state_with_a_documented_status(scenario):
    operation, parts, setup = scenarios()[scenario]
    request = make_request(**parts)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        setup(mock)
        outcome = run(operation, request)
    assert outcome.state is EXPECTED_STATES[scenario], outcome.status
    if outcome.state in (State.FAILED, State.THROTTLED):
        assert (outcome.poll_after is not None) == (scenario in RETRIED), (scenario, outcome.poll_after)
    assert re.sub(r"\d+", "N", outcome.status) in _status_spans(), f"{scenario}: {outcome.status!r} is not in {DOC.name}"
    for secret in SECRETS:
        assert secret not in outcome.status + repr([t.as_dict() for t in outcome.transactions])


def test_every_scenario_has_an_expected_state():
    assert set(scenarios()) == set(EXPECTED_STATES)
