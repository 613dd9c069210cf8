"""ATLAS forced photometry facility: every branch of submit/get/delete, against ``responses``.

Each test asserts the exact request sent and the exact SkyPortal status produced; every outcome
goes through ``run`` (a wrapper of ``perform``), which also checks that the API token appears
nowhere in what the caller receives.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from responses import matchers, registries

from facility_apis.core.egress import EgressPolicy
from facility_apis.core.errors import ConfigurationError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import RETRY_AFTER_FAILURE, perform
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.redact import MASK
from facility_apis.core.timeutil import DATE_RULE, parse_utc, to_mjd
from facility_apis.core.transport import Transport
from facility_apis.facilities.atlas import ATLASFacility
from facility_apis.facilities.atlas import facility as atlas_module

MAY_HAVE_ARRIVED = "; the request may have reached the facility and was not sent again"

FIXTURES = Path(__file__).parent / "fixtures" / "atlas"
TOKEN = "atlasTok-5e3cb1d0a9f84c7e9b2d61f0c4a7e8d9"
BASE = "https://fallingstar-data.com/forcedphot"
QUEUE = f"{BASE}/queue/"
TASK = f"{BASE}/queue/1234567/"
RESULT = f"{BASE}/static/results/job1234567.txt"
FOREIGN_RESULT = "https://results.example.net/atlas/job1234567.txt"
PAYLOAD = {"start_date": "2026-10-01", "end_date": "2026-10-31"}
RA, DEC = 150.000125, -2.49987
MAINTENANCE_PAGE = "<!DOCTYPE html><html><head><title>Down for maintenance</title></head><body><h1>Back soon</h1>" + "<p>x</p>" * 60 + "</body></html>"
NOT_ON_CALENDAR = "must be a real calendar date from 1900-01-01 to 2099-12-31"

# What ATLAS answers a form with the default request (mjd 2026-10-01 00:00 .. 2026-11-01 00:00).
FORM = {
    "ra": "150.000125",
    "dec": "-2.49987",
    "mjd_min": "61314.0",
    "mjd_max": "61345.0",
    "use_reduced": "false",
    "send_email": "false",
}
AUTH_HEADERS = {"Authorization": f"Token {TOKEN}", "Accept": "application/json"}

THROTTLE_BODY = "Request was throttled. Expected available in {}."
TOO_MANY = "ERROR: You have too many queued tasks (500 queued + 1 requested > 500)."


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def make_request(payload=None, *, remote_id=None, altdata=None) -> FollowupRequest:
    altdata = {"api_token": TOKEN} if altdata is None else altdata
    return FollowupRequest(
        17,
        Target("ZTF26aatlas", RA, DEC),
        Allocation(3, altdata, instrument_id=11, group_ids=(5, 2)),
        dict(PAYLOAD if payload is None else payload),
        requester="observer",
        remote_id=remote_id,
    )


def task_json(**changes) -> dict:
    """A task as ATLAS's serializer shows it; queued unless ``changes`` say otherwise."""
    body = {
        "url": TASK,
        "id": 1234567,
        "user_id": 42,
        "username": "skyportal",
        "parent_task_id": None,
        "parent_task_url": None,
        "request_type": "FP",
        "timestamp": "2026-11-21T10:00:00.123456Z",
        "mpc_name": None,
        "ra": RA,
        "dec": DEC,
        "mjd_min": 61314.0,
        "mjd_max": 61345.0,
        "radec_epoch_year": None,
        "propermotion_ra": None,
        "propermotion_dec": None,
        "use_reduced": False,
        "comment": None,
        "send_email": False,
        "callback_url": None,
        "starttimestamp": None,
        "finishtimestamp": None,
        "finished": False,
        "queuepos": 3,
        "userqueuedtasks_on_submit": 1,
        "waittime": None,
        "runtime": None,
        "attempt_count": 0,
        "result_url": None,
        "error_msg": None,
        "previewimage_url": None,
        "pdfplot_url": None,
    }
    body.update(changes)
    return body


RUNNING = {"queuepos": None, "starttimestamp": "2026-11-21T10:05:12.000000Z"}
FINISHED = {
    "queuepos": None,
    "starttimestamp": "2026-11-21T10:05:12.000000Z",
    "finishtimestamp": "2026-11-21T10:07:40.000000Z",
    "finished": True,
    "waittime": 312.0,
    "runtime": 148.0,
    "attempt_count": 1,
}


# -- the secret check, applied to every outcome --------------------------------------------------


TOKEN_PIECES = [TOKEN[i : i + 12] for i in range(len(TOKEN) - 11)]


def assert_no_secret(outcome: Outcome) -> None:
    """Neither the token nor any 12-character piece of it appears anywhere the caller can see;
    recorded credential headers are masked."""
    seen = [outcome.status, outcome.detail, repr(outcome), str(outcome.remote_id)]
    for transaction in outcome.transactions:
        seen += [repr(transaction), json.dumps(transaction.as_dict())]
        for name, value in transaction.request_headers.items():
            if name.lower() == "authorization":
                assert value == MASK
    if outcome.photometry is not None:
        seen.append(repr(outcome.photometry))
    for text in seen:
        assert TOKEN not in text
        assert not [piece for piece in TOKEN_PIECES if piece in text], "a piece of the token leaked"


@pytest.fixture
def run():
    """``perform`` with a fast transport, checking every outcome for the token."""

    def _run(operation, request=None, *, facility=None, transport=None) -> Outcome:
        transport = transport or Transport(backoff=0)
        with transport:
            outcome = perform(facility or ATLASFacility(), operation, request or make_request(), transport)
        assert isinstance(outcome, Outcome)
        assert_no_secret(outcome)
        return outcome

    return _run


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def ordered():
    with responses.RequestsMock(assert_all_requests_are_fired=True, registry=registries.OrderedRegistry) as mock:
        yield mock


def submitted_form(call) -> dict[str, str]:
    return dict(parse_qsl(call.request.body, keep_blank_values=True))


# -- submit ---------------------------------------------------------------------------------------


def test_submit_sends_exact_request_and_reports_the_task(run, rsps):
    rsps.post(
        QUEUE,
        status=201,
        json=task_json(),
        match=[
            matchers.header_matcher({**AUTH_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}),
            matchers.urlencoded_params_matcher(FORM),
        ],
    )
    outcome = run("submit")
    assert len(rsps.calls) == 1
    call = rsps.calls[0]
    assert call.request.method == "POST"
    assert call.request.url == QUEUE
    assert call.request.headers["Authorization"] == f"Token {TOKEN}"
    assert call.request.headers["Accept"] == "application/json"
    assert submitted_form(call) == FORM
    assert outcome.state is State.SUBMITTED
    assert outcome.remote_id == TASK
    assert outcome.status == "submitted: ATLAS task 1234567"
    assert outcome.poll_after == 30.0
    assert outcome.photometry is None
    [transaction] = outcome.transactions
    assert (transaction.method, transaction.url, transaction.status) == ("POST", QUEUE, 201)


def test_submit_mjd_range_is_start_midnight_to_end_inclusive(run, rsps):
    payload = {"start_date": "2026-11-21", "end_date": "2026-11-21", "use_reduced": True}
    form = dict(FORM, mjd_min=repr(to_mjd("2026-11-21")), mjd_max=repr(to_mjd("2026-11-22")), use_reduced="true")
    assert form["mjd_min"] == "61365.0" and form["mjd_max"] == "61366.0"
    rsps.post(QUEUE, status=201, json=task_json(), match=[matchers.urlencoded_params_matcher(form)])
    outcome = run("submit", make_request(payload))
    assert outcome.state is State.SUBMITTED


def test_submit_mjd_agrees_with_astropy():
    astropy_time = pytest.importorskip("astropy.time")
    request = make_request()
    facility = ATLASFacility()
    call = facility.prepare(FollowupRequest(1, request.target, request.allocation, facility.validate_payload(PAYLOAD)))
    assert float(call.data["mjd_min"]) == pytest.approx(astropy_time.Time("2026-10-01T00:00:00", scale="utc").mjd, abs=1e-6)
    assert float(call.data["mjd_max"]) == pytest.approx(astropy_time.Time("2026-11-01T00:00:00", scale="utc").mjd, abs=1e-6)


def test_submit_sends_proper_motion_fields_only_when_given(run, rsps):
    payload = dict(PAYLOAD, radec_epoch_year=2016.0, propermotion_ra=-3.5, propermotion_dec=12)
    form = dict(FORM, radec_epoch_year="2016.0", propermotion_ra="-3.5", propermotion_dec="12")
    rsps.post(QUEUE, status=201, json=task_json(), match=[matchers.urlencoded_params_matcher(form)])
    assert run("submit", make_request(payload)).state is State.SUBMITTED


def test_submit_does_not_send_snr_threshold(run, rsps):
    rsps.post(QUEUE, status=201, json=task_json(), match=[matchers.urlencoded_params_matcher(FORM)])
    assert run("submit", make_request(dict(PAYLOAD, snr_threshold=5))).state is State.SUBMITTED


def test_submit_uses_location_header_when_body_has_no_url(run, rsps):
    location = f"{BASE}/queue/7654321/"
    rsps.post(QUEUE, status=201, json={"id": 7654321}, headers={"Location": location})
    outcome = run("submit")
    assert outcome.state is State.SUBMITTED
    assert outcome.remote_id == location
    assert outcome.status == "submitted: ATLAS task 7654321"


def test_submit_uses_location_header_when_body_is_not_json(run, rsps):
    location = f"{BASE}/queue/7654322/"
    rsps.post(QUEUE, status=201, body="Created", headers={"Location": location})
    outcome = run("submit")
    assert (outcome.state, outcome.remote_id) == (State.SUBMITTED, location)


def test_submit_201_without_task_url_fails_and_says_to_check_the_queue(run, rsps):
    rsps.post(QUEUE, status=201, json={"id": 1234567})
    outcome = run("submit")
    assert outcome.state is State.FAILED
    assert outcome.remote_id is None
    assert outcome.poll_after is None
    assert outcome.status.startswith("failed: ")  # never "failed to submit": SkyPortal would offer a second one
    assert "check the ATLAS queue" in outcome.status
    assert len(rsps.calls) == 1


def test_submit_throttled_with_retry_after_header(run, rsps):
    rsps.post(QUEUE, status=429, headers={"Retry-After": "7"}, json={"detail": THROTTLE_BODY.format("7 seconds")})
    outcome = run("submit")
    assert outcome.state is State.THROTTLED
    assert outcome.poll_after == 7
    assert outcome.remote_id is None
    assert outcome.status == "failed to submit: rate limit reached at fallingstar-data.com; retry in 7 s"
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(("wording", "wait"), [("1 second", 1), ("12 seconds", 12), ("2 minutes", 120)])
def test_submit_throttled_wait_from_drf_body(run, rsps, wording, wait):
    rsps.post(QUEUE, status=429, json={"detail": THROTTLE_BODY.format(wording)})
    outcome = run("submit")
    assert outcome.state is State.THROTTLED
    assert outcome.poll_after == wait
    assert outcome.status == f"failed to submit: rate limit reached at fallingstar-data.com; retry in {wait} s"


def test_submit_over_the_queued_task_cap_is_rejected_with_atlas_reason(run, rsps):
    rsps.post(QUEUE, status=400, json={"non_field_errors": [TOO_MANY]})
    outcome = run("submit")
    assert outcome.state is State.REJECTED
    assert outcome.status == f"rejected: {TOO_MANY}"
    assert outcome.poll_after is None


def test_submit_field_errors_are_rejected_naming_the_field(run, rsps):
    rsps.post(QUEUE, status=400, json={"mjd_max": ["mjd_max must be greater than mjd_min."], "ra": ["A valid number is required."]})
    outcome = run("submit")
    assert outcome.state is State.REJECTED
    assert outcome.status == "rejected: mjd_max: mjd_max must be greater than mjd_min.; ra: A valid number is required."


def test_submit_400_with_text_body_is_rejected_with_that_text(run, rsps):
    rsps.post(QUEUE, status=400, body="Bad Request")
    outcome = run("submit")
    assert outcome.status == "rejected: Bad Request"


@pytest.mark.parametrize("status", [401, 403])
def test_submit_refused_credentials_fail(run, rsps, status):
    rsps.post(QUEUE, status=status, json={"detail": "Invalid token."})
    outcome = run("submit")
    assert outcome.state is State.FAILED
    assert outcome.status == f"failed to submit: ATLAS refused the credentials (HTTP {status}: Invalid token.)"
    assert outcome.poll_after is None


def test_submit_error_body_echoing_the_token_is_masked(run, rsps):
    rsps.post(QUEUE, status=401, json={"detail": f"Invalid token {TOKEN}."})
    outcome = run("submit")
    assert outcome.status == f"failed to submit: ATLAS refused the credentials (HTTP 401: Invalid token {MASK}.)"
    assert MASK in outcome.transactions[0].response_body


@pytest.mark.parametrize("status", [400, 500])
def test_error_body_truncation_never_leaks_part_of_the_token(rsps, status):
    rsps.post(QUEUE, status=status, body="x" * 280 + f" {TOKEN}\n", content_type="text/html")
    with Transport(backoff=0) as transport:
        outcome = perform(ATLASFacility(), "submit", make_request(), transport)
    assert TOKEN[:12] not in outcome.status
    assert_no_secret(outcome)


def test_submit_server_error_fails(run, rsps):
    rsps.post(QUEUE, status=500, body="<h1>Server Error (500)</h1>")
    outcome = run("submit")
    assert outcome.state is State.FAILED
    expected = "failed: ATLAS answered HTTP 500: an HTML page: Server Error (500); the request may have reached the facility and was not sent again"
    assert outcome.status == expected and outcome.maybe_sent
    assert outcome.poll_after is None
    assert len(rsps.calls) == 1


def test_submit_503_fails_and_post_is_not_retried(run, rsps):
    rsps.post(QUEUE, status=503)
    outcome = run("submit", transport=Transport(retries=3, backoff=0))
    assert len(rsps.calls) == 1
    assert outcome.state is State.FAILED
    assert outcome.status == "failed: fallingstar-data.com answered HTTP 503 (temporarily unavailable)" + MAY_HAVE_ARRIVED
    # The POST may have created a task: it is not to be repeated automatically.
    assert outcome.poll_after is None


def test_submit_connection_error_after_sending_fails_without_retry(run, rsps):
    rsps.post(QUEUE, body=requests.ConnectionError("connection reset by peer"))
    outcome = run("submit", transport=Transport(retries=3, backoff=0))
    assert len(rsps.calls) == 1
    assert outcome.state is State.FAILED
    assert outcome.status.startswith("failed: connection to ")
    assert "may have reached the facility" in outcome.status
    assert outcome.poll_after is None


def test_submit_connect_timeout_fails_and_may_be_retried(run, rsps):
    rsps.post(QUEUE, body=requests.ConnectTimeout("timed out"))
    outcome = run("submit")
    assert outcome.state is State.FAILED
    assert outcome.status.startswith("failed to submit: could not connect to ")
    assert outcome.poll_after == RETRY_AFTER_FAILURE


# -- base URL --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("altdata_url", "config_url", "queue"),
    [
        ("https://atlas.example.org/fp", "https://config.example.org/forcedphot", "https://atlas.example.org/fp/queue/"),
        ("https://atlas.example.org/fp/", None, "https://atlas.example.org/fp/queue/"),
        (None, "https://config.example.org/forcedphot", "https://config.example.org/forcedphot/queue/"),
        (None, "https://config.example.org/forcedphot/", "https://config.example.org/forcedphot/queue/"),
        (None, None, QUEUE),
        ("", "https://config.example.org/forcedphot", "https://config.example.org/forcedphot/queue/"),
    ],
    ids=["altdata-wins", "altdata-trailing-slash", "config", "config-trailing-slash", "default", "blank-altdata"],
)
def test_base_url_precedence(run, rsps, altdata_url, config_url, queue):
    altdata = {"api_token": TOKEN}
    if altdata_url is not None:
        altdata["base_url"] = altdata_url
    config = {"base_url": config_url} if config_url else {}
    rsps.post(queue, status=201, json=task_json(url=queue + "1/"), match=[matchers.header_matcher(AUTH_HEADERS)])
    outcome = run("submit", make_request(altdata=altdata), facility=ATLASFacility(config))
    assert rsps.calls[0].request.url == queue
    assert outcome.state is State.SUBMITTED


LOOPBACK_URLS = ["http://127.0.0.1:8000/forcedphot", "http://localhost:8000/forcedphot", "http://[::1]:8000/forcedphot", "http://127.0.0.2/fp"]


@pytest.mark.parametrize("base_url", LOOPBACK_URLS)
def test_plain_http_base_url_allowed_for_an_allowed_loopback_origin(run, rsps, base_url):
    egress = EgressPolicy((base_url,))
    rsps.post(f"{base_url}/queue/", status=201, json=task_json(url=f"{base_url}/queue/9/"))
    facility, transport = ATLASFacility(egress=egress), Transport(backoff=0, egress=egress)
    outcome = run("submit", make_request(altdata={"api_token": TOKEN, "base_url": base_url}), facility=facility, transport=transport)
    assert outcome.state is State.SUBMITTED
    assert outcome.remote_id == f"{base_url}/queue/9/"


@pytest.mark.parametrize("base_url", LOOPBACK_URLS)
def test_loopback_base_url_refused_unless_the_deployment_allows_it(run, rsps, base_url):
    outcome = run("submit", make_request(altdata={"api_token": TOKEN, "base_url": base_url}))
    assert len(rsps.calls) == 0
    assert outcome.status.startswith("failed to submit: invalid altdata: $.base_url: ") and "private or internal address" in outcome.status


@pytest.mark.parametrize("base_url", ["http://fallingstar-data.com/forcedphot", "http://10.0.0.5/forcedphot", "http://localhost.example.org/fp"])
def test_plain_http_base_url_refused_elsewhere(run, rsps, base_url):
    outcome = run("submit", make_request(altdata={"api_token": TOKEN, "base_url": base_url}))
    assert len(rsps.calls) == 0
    assert outcome.state is State.FAILED
    assert outcome.status.startswith("failed to submit: invalid altdata: $.base_url: ")
    assert "must be an https URL" in outcome.status and "plain http only to a loopback address" in outcome.status


@pytest.mark.parametrize(
    ("altdata", "path"),
    [({}, "$.api_token"), ({"api_token": ""}, "$.api_token"), ({"api_token": TOKEN, "password": "x"}, "$.password")],
)
def test_bad_altdata_fails_before_any_call(run, rsps, altdata, path):
    outcome = run("submit", make_request(altdata=altdata))
    assert len(rsps.calls) == 0
    assert outcome.state is State.FAILED
    assert outcome.status.startswith(f"failed to submit: invalid altdata: {path}: ")


# -- payload validation ----------------------------------------------------------------------------


def test_default_dates_are_computed_per_call(monkeypatch):
    facility = ATLASFacility()
    monkeypatch.setattr(atlas_module, "utcnow", lambda: datetime(2026, 3, 15, 23, 59, tzinfo=UTC))
    first = facility.validate_payload({})
    first_schema = facility.request_schema()["properties"]
    monkeypatch.setattr(atlas_module, "utcnow", lambda: datetime(2026, 7, 1, 0, 1, tzinfo=UTC))
    second = facility.validate_payload({})
    assert (first["start_date"], first["end_date"]) == ("2026-02-13", "2026-03-15")
    assert (first_schema["start_date"]["default"], first_schema["end_date"]["default"]) == ("2026-02-13", "2026-03-15")
    assert (second["start_date"], second["end_date"]) == ("2026-06-01", "2026-07-01")
    assert facility.request_schema()["properties"]["end_date"]["default"] == "2026-07-01"
    assert (first["use_reduced"], first["snr_threshold"]) == (False, 3)


def test_submit_without_dates_uses_the_last_30_days(run, rsps, monkeypatch):
    monkeypatch.setattr(atlas_module, "utcnow", lambda: datetime(2026, 11, 21, 18, 30, tzinfo=UTC))
    form = dict(FORM, mjd_min=repr(to_mjd("2026-10-22")), mjd_max=repr(to_mjd("2026-11-22")))
    rsps.post(QUEUE, status=201, json=task_json(), match=[matchers.urlencoded_params_matcher(form)])
    assert run("submit", make_request({})).state is State.SUBMITTED


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"start_date": "2026-10-10", "end_date": "2026-10-09"}, "rejected: invalid payload: $.end_date: must not be before start_date"),
        ({"start_date": "1899-12-31", "end_date": "2026-10-09"}, f"rejected: invalid payload: $.start_date: {NOT_ON_CALENDAR}"),
        ({"start_date": "0000-01-01", "end_date": "2026-10-09"}, f"rejected: invalid payload: $.start_date: {NOT_ON_CALENDAR}"),
        ({"start_date": "2026/10/01", "end_date": "2026-10-09"}, f"rejected: invalid payload: $.start_date: must be {DATE_RULE}"),
        ({"start_date": "2026-10-01", "end_date": "2026-02-30"}, f"rejected: invalid payload: $.end_date: {NOT_ON_CALENDAR}"),
        ({"start_date": "2026-10-01T00:00:00+", "end_date": "2026-10-09"}, f"rejected: invalid payload: $.start_date: must be {DATE_RULE}"),
        ({"start_date": 20261001, "end_date": "2026-10-09"}, "rejected: invalid payload: $.start_date: must be of type string"),
        ({**PAYLOAD, "foo": 1}, "rejected: invalid payload: $.foo: is not an allowed property"),
        ({**PAYLOAD, "snr_threshold": 0}, "rejected: invalid payload: $.snr_threshold: must be greater than 0"),
        ({**PAYLOAD, "snr_threshold": -2}, "rejected: invalid payload: $.snr_threshold: must be greater than 0"),
        ({**PAYLOAD, "snr_threshold": 100.5}, "rejected: invalid payload: $.snr_threshold: must be at most 100"),
        ({**PAYLOAD, "snr_threshold": "3"}, "rejected: invalid payload: $.snr_threshold: must be of type number"),
        ({**PAYLOAD, "use_reduced": "yes"}, "rejected: invalid payload: $.use_reduced: must be of type boolean"),
        ({**PAYLOAD, "radec_epoch_year": 1850}, "rejected: invalid payload: $.radec_epoch_year: must be at least 1900"),
        (
            {**PAYLOAD, "propermotion_ra": 5.0, "propermotion_dec": 1.0},
            "rejected: invalid payload: $.radec_epoch_year: is required when propermotion_ra is given",
        ),
        (
            {**PAYLOAD, "propermotion_ra": 5.0},
            "rejected: invalid payload: $.propermotion_dec: is required when propermotion_ra is given; "
            "$.radec_epoch_year: is required when propermotion_ra is given",
        ),
        (
            {**PAYLOAD, "propermotion_dec": 5.0, "radec_epoch_year": 2016.0},
            "rejected: invalid payload: $.propermotion_ra: is required when propermotion_dec is given",
        ),
    ],
    ids=[
        "end-before-start",
        "before-1900",
        "year-0000",
        "slashes",
        "no-such-day",
        "bad-zone",
        "not-a-string",
        "unknown-field",
        "snr-zero",
        "snr-negative",
        "snr-too-big",
        "snr-string",
        "use-reduced-string",
        "epoch-too-early",
        "pm-without-epoch",
        "pm-ra-alone",
        "pm-dec-without-ra",
    ],
)
def test_invalid_payload_is_rejected_before_any_call(run, rsps, payload, status):
    outcome = run("submit", make_request(payload))
    assert len(rsps.calls) == 0
    assert outcome.state is State.REJECTED
    assert outcome.status == status
    assert outcome.remote_id is None


@pytest.mark.parametrize(
    "payload",
    [
        {"start_date": "1900-01-01", "end_date": "1900-01-01"},
        {"start_date": "2026-10-01T00:00:00", "end_date": "2026-10-09 23:59:59.999"},
        {**PAYLOAD, "snr_threshold": 100},
        {**PAYLOAD, "snr_threshold": 0.5},
        {**PAYLOAD, "radec_epoch_year": 2000},
    ],
    ids=["first-day", "date-times", "snr-max", "snr-small", "epoch-alone"],
)
def test_valid_edge_payloads_are_submitted(run, rsps, payload):
    rsps.post(QUEUE, status=201, json=task_json())
    assert run("submit", make_request(payload)).state is State.SUBMITTED


# -- get -------------------------------------------------------------------------------------------


def following(payload=None, **kw) -> FollowupRequest:
    return make_request(payload, remote_id=TASK, **kw)


def test_get_queued(run, rsps):
    rsps.get(TASK, json=task_json(queuepos=3), match=[matchers.header_matcher(AUTH_HEADERS)])
    outcome = run("get", following(), facility=ATLASFacility({"poll_interval": 45}))
    assert outcome.state is State.QUEUED
    assert outcome.status == "queued: 3 tasks ahead in the ATLAS queue"
    assert outcome.poll_after == 45.0
    assert outcome.remote_id == TASK
    assert [(c.request.method, c.request.url) for c in rsps.calls] == [("GET", TASK)]


@pytest.mark.parametrize(
    ("queuepos", "status"),
    [
        (0, "queued: next in the ATLAS queue"),
        (1, "queued: 1 task ahead in the ATLAS queue"),
        (499, "queued: 499 tasks ahead in the ATLAS queue"),
        (None, "queued: waiting in the ATLAS queue"),
        (-1, "queued: waiting in the ATLAS queue"),
        ("3", "queued: waiting in the ATLAS queue"),
    ],
)
def test_get_queue_position_wording(run, rsps, queuepos, status):
    """ATLAS counts ``queuepos`` from 0 (next to run)."""
    rsps.get(TASK, json=task_json(queuepos=queuepos))
    outcome = run("get", following())
    assert outcome.state is State.QUEUED
    assert outcome.status == status
    assert outcome.poll_after == 30.0


def test_get_running(run, rsps):
    rsps.get(TASK, json=task_json(**RUNNING))
    outcome = run("get", following(), facility=ATLASFacility({"poll_interval": 12}))
    assert outcome.state is State.RUNNING
    assert outcome.status == "running: started at 2026-11-21T10:05:12.000000Z"
    assert outcome.poll_after == 12.0


def test_get_finished_downloads_and_converts_the_result(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, body=fixture_text("result_pa_deg.txt"), content_type="text/plain", match=[matchers.header_matcher(AUTH_HEADERS)])
    outcome = run("get", following())
    assert [c.request.url for c in rsps.calls] == [TASK, RESULT]
    assert outcome.state is State.COMPLETED
    assert outcome.status == "complete: 5 points (3 detections, 2 upper limits)"
    assert outcome.poll_after is None
    photometry = outcome.photometry
    assert len(photometry) == 5
    assert photometry.filter == ["atlaso", "atlasc", "atlaso", "atlasc", "atlaso"]
    assert photometry.values("mag") == [16.099, 16.422, None, None, 16.885]
    assert photometry.origin == "fp" and photometry.magsys == "ab"


def test_get_finished_uses_the_requested_snr_threshold(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, body=fixture_text("result_pa_deg.txt"))
    outcome = run("get", following(dict(PAYLOAD, snr_threshold=50)))
    assert outcome.status == "complete: 5 points (1 detection, 4 upper limits)"


def test_get_finished_with_notes_reports_them(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, body=fixture_text("result_edge_cases.txt"))
    outcome = run("get", following())
    assert outcome.state is State.COMPLETED
    assert outcome.status == (
        "complete: 13 points (6 detections, 7 upper limits); dropped points in filters other than c/o: 2 in 't'; "
        "dropped 1 point(s) with no usable MJD or limiting magnitude"
    )


def test_a_result_url_on_another_host_is_never_called(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=FOREIGN_RESULT), match=[matchers.header_matcher(AUTH_HEADERS)])
    outcome = run("get", following())
    assert [call.request.url for call in rsps.calls] == [TASK]
    assert outcome.state is State.FAILED and outcome.poll_after is None
    assert outcome.status == "failed: ATLAS named a result URL on results.example.net, off its own service: not followed"


def test_token_is_sent_to_the_result_url_of_a_custom_base_url(run, rsps):
    base = "https://atlas.example.org/fp"
    task, result = f"{base}/queue/5/", f"{base}/static/results/job5.txt"
    rsps.get(task, json=task_json(**FINISHED, url=task, result_url=result), match=[matchers.header_matcher(AUTH_HEADERS)])
    rsps.get(result, body=fixture_text("result_no_pa_deg.txt"), match=[matchers.header_matcher(AUTH_HEADERS)])
    outcome = run("get", make_request(remote_id=task, altdata={"api_token": TOKEN, "base_url": base}))
    assert outcome.status == "complete: 4 points (3 detections, 1 upper limit)"


@pytest.mark.parametrize("which", ["result_url", "task_url"])
def test_token_is_never_sent_over_plain_http_to_the_service_host(run, rsps, which):
    http_task = TASK.replace("https://", "http://")
    http_result = RESULT.replace("https://", "http://")
    task_url = http_task if which == "task_url" else TASK
    result_url = http_result if which == "result_url" else RESULT
    if which == "result_url":
        rsps.get(task_url, json=task_json(**FINISHED, url=task_url, result_url=result_url))
    outcome = run("get", following() if which == "result_url" else make_request(remote_id=http_task))
    assert all(not call.request.url.startswith("http://") for call in rsps.calls)
    assert outcome.state is State.FAILED and "off its own service" in outcome.status


def test_get_finished_with_error_is_terminal_no_data(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, error_msg="No data returned"))
    outcome = run("get", following())
    assert len(rsps.calls) == 1
    assert outcome.state is State.NO_DATA
    assert outcome.status == "complete: no data: No data returned"
    assert outcome.poll_after is None
    assert outcome.photometry is None


def test_get_finished_without_result_or_error_is_no_data(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED))
    outcome = run("get", following())
    assert len(rsps.calls) == 1
    assert outcome.status == "complete: no data: ATLAS finished the task without a result"


def test_get_header_only_result_is_no_data(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, body=fixture_text("header_only.txt"))
    outcome = run("get", following())
    assert outcome.state is State.NO_DATA
    assert outcome.status == "complete: no data: the result file holds no measurements"
    assert outcome.photometry is not None and len(outcome.photometry) == 0


def test_get_result_in_unknown_filters_only_is_no_data(run, rsps):
    text = fixture_text("result_pa_deg.txt").replace(" o ", " t ").replace(" c ", " t ")
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, body=text)
    outcome = run("get", following())
    assert outcome.state is State.NO_DATA
    assert outcome.status == "complete: no data: dropped points in filters other than c/o: 5 in 't'"


def test_get_deleted_task_is_canceled(run, rsps):
    rsps.get(TASK, status=404, json={"detail": "Not found."})
    outcome = run("get", following())
    assert outcome.state is State.CANCELED
    assert outcome.status == "canceled: the task no longer exists at ATLAS (deleted, or purged after it finished)"
    assert outcome.poll_after is None


def test_get_not_json_task_fails_and_retries_later(run, rsps):
    rsps.get(TASK, body="<html>maintenance</html>", content_type="text/html")
    outcome = run("get", following())
    assert outcome.state is State.FAILED
    assert outcome.status == "failed: ATLAS sent an HTML page (maintenance) instead of JSON for the task (HTTP 200)"
    assert outcome.poll_after == RETRY_AFTER_FAILURE
    assert outcome.remote_id == TASK


def test_get_task_not_an_object_fails(run, rsps):
    rsps.get(TASK, json=[task_json()])
    outcome = run("get", following())
    assert outcome.status == "failed: ATLAS sent an array where a JSON object was expected for the task"
    assert outcome.poll_after == RETRY_AFTER_FAILURE


def test_get_unexpected_status_fails_and_retries_later(run, rsps):
    rsps.get(TASK, status=403, json={"detail": "You do not have permission to perform this action."})
    outcome = run("get", following())
    assert outcome.state is State.FAILED
    assert outcome.status == "failed: ATLAS refused the credentials (HTTP 403: You do not have permission to perform this action.)"
    assert outcome.poll_after == RETRY_AFTER_FAILURE


def test_get_transient_error_is_retried_by_the_transport(run, ordered):
    ordered.get(TASK, status=503)
    ordered.get(TASK, json=task_json(queuepos=1))
    outcome = run("get", following(), transport=Transport(retries=2, backoff=0))
    assert len(ordered.calls) == 2
    assert outcome.state is State.QUEUED
    assert outcome.status == "queued: 1 task ahead in the ATLAS queue"


def test_get_persistent_transient_error_fails_and_retries_later(run, ordered):
    ordered.get(TASK, status=503)
    ordered.get(TASK, status=502)
    outcome = run("get", following(), transport=Transport(retries=1, backoff=0))
    assert len(ordered.calls) == 2
    assert outcome.state is State.FAILED
    assert outcome.status == "failed: fallingstar-data.com answered HTTP 502 (temporarily unavailable)"
    assert outcome.poll_after == RETRY_AFTER_FAILURE


def test_get_connection_error_fails_and_retries_later(run, rsps):
    rsps.get(TASK, body=requests.ConnectionError("connection reset by peer"))
    outcome = run("get", following(), transport=Transport(retries=0, backoff=0))
    assert outcome.state is State.FAILED
    assert outcome.status.startswith("failed: connection to ")
    assert outcome.poll_after == RETRY_AFTER_FAILURE


def test_get_throttled(run, rsps):
    rsps.get(TASK, status=429, json={"detail": THROTTLE_BODY.format("12 seconds")})
    outcome = run("get", following())
    assert outcome.state is State.THROTTLED
    assert outcome.poll_after == 12
    assert outcome.status == "throttled: rate limit reached at fallingstar-data.com; retry in 12 s"


EXPIRED = "failed: ATLAS no longer has the task's result file (HTTP 404); it deletes the results of API tasks 31 days after they finish"


def test_an_expired_result_file_is_a_permanent_failure_said_in_words(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, status=404, body="Not Found")
    outcome = run("get", following())
    assert outcome.state is State.FAILED
    assert outcome.status == EXPIRED
    assert outcome.poll_after is None  # no later poll can bring it back (issue 9, item 8)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda text: text.replace("mag5sig", "limmag", 1), "failed: ATLAS result file lacks the column(s) mag5sig"),
        (lambda text: text.replace("###", "", 1), "failed: ATLAS result file has no header line starting with '#'"),
        (lambda text: text + "60990.1 17.5\n", "failed: ATLAS result row"),
    ],
    ids=["old-layout-without-mag5sig", "no-header", "short-row"],
)
def test_a_result_file_that_cannot_be_read_is_a_permanent_failure(run, rsps, change, status):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, body=change(fixture_text("result_pa_deg.txt")))
    outcome = run("get", following())
    assert outcome.state is State.FAILED and outcome.status.startswith(status)
    assert outcome.poll_after is None


def test_an_html_page_in_place_of_the_result_file_is_transient_and_shown_by_its_title(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, body=MAINTENANCE_PAGE, content_type="text/html")
    outcome = run("get", following())
    assert outcome.status == "failed: ATLAS sent an HTML page (Down for maintenance) instead of the result file (HTTP 200)"
    assert outcome.poll_after == RETRY_AFTER_FAILURE


@pytest.mark.parametrize(("use_reduced", "origin"), [(False, "fp"), (True, "fp_reduced")])
def test_reduced_and_difference_image_photometry_are_marked_apart(run, rsps, use_reduced, origin):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT, use_reduced=use_reduced))
    rsps.get(RESULT, body=fixture_text("result_pa_deg.txt"))
    outcome = run("get", following({**PAYLOAD, "use_reduced": use_reduced}))
    assert outcome.photometry.origin == origin
    bodies = [json.loads(upload) for upload in outcome.photometry.uploads("ZTF26x", 1, (1,))]
    assert len(bodies) == 1 and bodies[0]["origin"] == origin


def test_get_before_submission_is_pending(run, rsps):
    outcome = run("get", make_request())
    assert len(rsps.calls) == 0
    assert outcome.state is State.PENDING
    assert outcome.status == "pending submission: not submitted to ATLAS yet"


# -- delete ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [{"queuepos": 2}, RUNNING], ids=["queued", "running"])
def test_delete_unfinished_task_cancels_it(run, rsps, state):
    rsps.get(TASK, json=task_json(**state), match=[matchers.header_matcher(AUTH_HEADERS)])
    rsps.delete(TASK, status=204, match=[matchers.header_matcher(AUTH_HEADERS)])
    outcome = run("delete", following())
    assert [(c.request.method, c.request.url) for c in rsps.calls] == [("GET", TASK), ("DELETE", TASK)]
    assert outcome.state is State.DELETED
    assert outcome.status == "deleted: task canceled at ATLAS"
    assert outcome.photometry is None
    assert outcome.remote_id == TASK


def test_delete_finished_task_fetches_results_first(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, body=fixture_text("result_pa_deg.txt"))
    rsps.delete(TASK, status=204)
    outcome = run("delete", following())
    assert [(c.request.method, c.request.url) for c in rsps.calls] == [("GET", TASK), ("GET", RESULT), ("DELETE", TASK)]
    assert outcome.state is State.DELETED
    assert outcome.status == "deleted: task deleted at ATLAS after its results were fetched: 5 points (3 detections, 2 upper limits)"
    assert outcome.photometry is not None and len(outcome.photometry) == 5


def test_delete_finished_task_with_error_deletes_it(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, error_msg="No data returned"))
    rsps.delete(TASK, status=204)
    outcome = run("delete", following())
    assert [c.request.method for c in rsps.calls] == ["GET", "DELETE"]
    assert outcome.status == "deleted: finished task deleted at ATLAS"
    assert outcome.photometry is None


def test_delete_waits_while_the_results_cannot_be_fetched_for_now(run, rsps):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, status=500, body="Server Error")
    outcome = run("delete", following())
    assert [c.request.method for c in rsps.calls] == ["GET", "GET"]
    assert outcome.state is State.FAILED
    assert outcome.status == "failed: ATLAS answered HTTP 500: Server Error"


@pytest.mark.parametrize(
    ("result", "why"),
    [((404, "Not Found"), "ATLAS no longer has the task's result file (HTTP 404)"), ((200, "no header here"), "no header line")],
    ids=["expired", "unreadable"],
)
def test_results_that_can_never_be_fetched_never_block_the_delete(run, rsps, result, why):
    rsps.get(TASK, json=task_json(**FINISHED, result_url=RESULT))
    rsps.get(RESULT, status=result[0], body=result[1])
    rsps.delete(TASK, status=204)
    outcome = run("delete", following())
    assert [c.request.method for c in rsps.calls] == ["GET", "GET", "DELETE"]
    assert outcome.state is State.DELETED
    assert outcome.status.startswith("deleted: finished task deleted at ATLAS; its results could not be fetched first: ") and why in outcome.status


def test_a_delete_answered_by_an_html_page_is_not_taken_for_done(run, rsps):
    rsps.get(TASK, json=task_json(queuepos=1))
    rsps.delete(TASK, status=200, body=MAINTENANCE_PAGE, content_type="text/html")
    outcome = run("delete", following())
    assert outcome.state is State.FAILED and outcome.poll_after == RETRY_AFTER_FAILURE
    assert outcome.status == "failed: ATLAS sent an HTML page (Down for maintenance) instead of its answer to the delete (HTTP 200)"


def test_delete_already_gone_makes_no_delete_call(run, rsps):
    rsps.get(TASK, status=404, json={"detail": "Not found."})
    outcome = run("delete", following())
    assert len(rsps.calls) == 1
    assert outcome.state is State.DELETED
    assert outcome.status == "deleted: the task was already gone at ATLAS"


def test_delete_answered_404_counts_as_deleted(run, rsps):
    rsps.get(TASK, json=task_json())
    rsps.delete(TASK, status=404, json={"detail": "Not found."})
    outcome = run("delete", following())
    assert outcome.status == "deleted: task canceled at ATLAS"


def test_delete_not_submitted_makes_no_call(run, rsps):
    outcome = run("delete", make_request())
    assert len(rsps.calls) == 0
    assert outcome.state is State.DELETED
    assert outcome.status == "deleted: nothing had been sent to ATLAS"
    assert outcome.transactions == ()


def test_delete_refused_fails(run, rsps):
    rsps.get(TASK, json=task_json())
    rsps.delete(TASK, status=403, json={"detail": "You do not have permission to perform this action."})
    outcome = run("delete", following())
    assert outcome.state is State.FAILED
    assert outcome.status == "failed: ATLAS refused the credentials (HTTP 403: You do not have permission to perform this action.)"
    assert outcome.poll_after == RETRY_AFTER_FAILURE


# -- the secret helper itself ----------------------------------------------------------------------


def test_secret_helper_catches_a_leak():
    with pytest.raises(AssertionError):
        assert_no_secret(Outcome(State.FAILED, f"oops {TOKEN}"))


def test_recorded_transactions_mask_the_token(run, rsps):
    rsps.post(QUEUE, status=201, json=task_json())
    outcome = run("submit")
    [transaction] = outcome.transactions
    assert transaction.request_headers["Authorization"] == MASK
    assert transaction.as_dict()["request"]["headers"]["Authorization"] == MASK


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://atlas.example.org/forcedphot", "credentials may travel only over https"),
        ("ftp://127.0.0.1/x", "only http and https"),
        ("https://10.0.0.8/fp", "private or internal"),
    ],
)
def test_configured_base_url_must_obey_the_egress_rule(url, rule):
    with pytest.raises(ConfigurationError, match=rule):
        ATLASFacility({"base_url": url})


def test_configured_loopback_http_is_allowed_when_the_deployment_allows_it():
    facility = ATLASFacility({"base_url": "http://127.0.0.1:8000/forcedphot/"}, egress=EgressPolicy(("http://127.0.0.1:8000",)))
    assert facility.base_url({}) == "http://127.0.0.1:8000/forcedphot"


# -- a callback is a hint (issue 9, item 9) --------------------------------------------------------


def with_callback(url: str) -> FollowupRequest:
    return dataclasses.replace(make_request(), callback_url=url)


@pytest.mark.parametrize("url", ["http://gateway.example.org/api/callbacks/1/sig", "https://gw.example.org/" + "x" * 500])
def test_a_callback_atlas_cannot_take_is_left_out(run, rsps, url):
    rsps.post(QUEUE, status=201, json=task_json())
    outcome = run("submit", with_callback(url))
    assert outcome.state is State.SUBMITTED
    assert "callback_url" not in submitted_form(rsps.calls[0])


def test_a_callback_refused_alone_costs_nothing_the_request_is_sent_without_it(run, ordered):
    ordered.post(QUEUE, status=400, json={"callback_url": ["The callback URL must resolve to a public address."]})
    ordered.post(QUEUE, status=201, json=task_json())
    outcome = run("submit", with_callback("https://gw.internal.example/api/callbacks/1/sig"))
    assert outcome.status == "submitted: ATLAS task 1234567"
    first, second = (submitted_form(call) for call in ordered.calls)
    assert first["callback_url"] == "https://gw.internal.example/api/callbacks/1/sig" and "callback_url" not in second
    assert {k: v for k, v in first.items() if k != "callback_url"} == second


def test_a_refusal_of_more_than_the_callback_is_not_sent_again(run, rsps):
    rsps.post(QUEUE, status=400, json={"callback_url": ["Enter a valid URL."], "dec": ["Ensure this value is less than or equal to 90."]})
    outcome = run("submit", with_callback("https://gw.example.org/cb"))
    assert outcome.state is State.REJECTED and len(rsps.calls) == 1


# -- HTML pages on every path (issue 9, item 11) --------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 500, 503])
def test_an_html_page_answering_a_submission_never_reaches_the_status_as_markup(run, rsps, status):
    rsps.post(QUEUE, status=status, body=MAINTENANCE_PAGE, content_type="text/html")
    outcome = run("submit", transport=Transport(backoff=0, retries=0))
    assert outcome.state is State.FAILED and outcome.poll_after is None
    assert "<" not in outcome.status and len(outcome.status) < 250
    assert any(words in outcome.status for words in ("Down for maintenance", "cannot be followed", "HTTP 503"))


def test_an_html_page_answering_a_poll_is_transient_and_shown_by_its_title(run, rsps):
    rsps.get(TASK, body=MAINTENANCE_PAGE, content_type="text/html")
    outcome = run("get", following())
    assert outcome.status == "failed: ATLAS sent an HTML page (Down for maintenance) instead of JSON for the task (HTTP 200)"
    assert outcome.poll_after == RETRY_AFTER_FAILURE


# -- finding an interrupted submission (issue 9, item 6) -------------------------------------------

LIST = f"{QUEUE}?ordering=-id&pagesize=100"
ATTEMPT = parse_utc("2026-11-21T10:00:00Z").timestamp()


def interrupted(payload=None) -> FollowupRequest:
    return dataclasses.replace(make_request(payload), attempted_at=ATTEMPT)


def listed(task_id: int, stamp: str, **changes) -> dict:
    return task_json(id=task_id, url=f"{QUEUE}{task_id}/", timestamp=stamp, **changes)


def test_find_carries_on_with_the_task_the_interrupted_submission_made(run, rsps):
    tasks = [
        listed(12, "2026-11-21T10:00:01.5Z", ra=RA + 1),  # another target
        listed(11, "2026-11-21T10:00:00.9Z"),  # ours
        listed(10, "2026-11-20T08:00:00Z"),  # same request, a day earlier: not this attempt
    ]
    rsps.get(LIST, json={"next": None, "previous": None, "results": tasks}, match=[matchers.header_matcher(AUTH_HEADERS)])
    outcome = run("find", interrupted())
    assert outcome.state is State.SUBMITTED and outcome.remote_id == f"{QUEUE}11/"
    assert outcome.status == "submitted: ATLAS task 11 (found in ATLAS's list after an interrupted submission)"
    assert outcome.poll_after == ATLASFacility().poll_interval


def test_find_reads_on_through_pages_until_the_list_is_older_than_the_attempt(run, ordered):
    second = f"{QUEUE}?cursor=cD0xMQ%3D%3D&ordering=-id&pagesize=100"
    ordered.get(LIST, json={"next": second, "results": [listed(13, "2026-11-21T11:00:00Z", ra=1.0)]})
    ordered.get(second, json={"next": f"{QUEUE}?cursor=more", "results": [listed(12, "2026-11-21T10:30:00Z", dec=1.0), listed(9, "2026-11-20T00:00:00Z")]})
    outcome = run("find", interrupted())
    assert outcome.state is State.PENDING  # certainly absent: the list went past the attempt
    assert outcome.status == "pending submission: the interrupted submission never reached ATLAS (no such task in its list): submitting it again"
    assert len(ordered.calls) == 2


def test_find_never_takes_an_unordered_list_for_proof_of_absence(run, ordered):
    """Were ATLAS to ignore the ordering asked for, an old page first proves nothing."""
    pages = [f"{QUEUE}?cursor={n}" for n in range(1, 10)]
    ordered.get(LIST, json={"next": pages[0], "results": [listed(1, "2026-01-01T00:00:00Z"), listed(2, "2026-01-02T00:00:00Z")]})
    for index, page in enumerate(pages):
        following_page = pages[index + 1] if index + 1 < len(pages) else f"{QUEUE}?cursor=10"
        ordered.get(page, json={"next": following_page, "results": [listed(3 + index, "2026-01-03T00:00:00Z")]})
    outcome = run("find", interrupted())
    assert outcome.state is State.FAILED and outcome.poll_after is None
    assert outcome.status.startswith("failed: could not tell whether the interrupted submission reached ATLAS")


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 200, "body": MAINTENANCE_PAGE, "content_type": "text/html"},
        {"status": 200, "body": ""},
        {"status": 200, "json": {"detail": "odd"}},
        {"status": 500, "body": "Internal Server Error"},
    ],
    ids=["html", "empty", "no-results", "500"],
)
def test_a_faulty_task_list_is_never_taken_for_absence(run, rsps, answer):
    rsps.get(LIST, **answer)
    outcome = run("find", interrupted())
    assert outcome.state is State.FAILED and outcome.poll_after == RETRY_AFTER_FAILURE
    assert "<" not in outcome.status
