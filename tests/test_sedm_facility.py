"""SEDM: the exact upload for each action, every answer of SEDM's intake and the status it gives
(its texts read whatever their case), the modes and advanced options enforced in Python, the
defaults filled alike for a submission and an edit, prior photometry, the notification branch."""

import email.parser
import email.policy
import json
import re
from pathlib import Path

import pytest
import requests
import responses

from facility_apis.core.errors import AltdataError, ConfigurationError, PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, HostPoint, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.transport import Transport
from facility_apis.facilities.sedm import SEDMFacility
from facility_apis.facilities.sedm.answers import Verdict, verdict
from facility_apis.facilities.sedm.document import observations, prior_photometry
from facility_apis.testing.conformance import conformance_suite

ENDPOINT = "https://sedm.example.org/add_request"
CONFIG = {"endpoint": ENDPOINT, "contact_email": "desk@example.org"}
PAYLOAD = {"observation_type": "IFU", "priority": 3, "start_date": "2036-11-21", "end_date": "2036-11-28"}
ACTIVE_OR_NONE = "it is being observed (ACTIVE) or SEDM has no such request"
HOLDS_NONE = "it holds no request now; submit it again"
PRIOR = {"g": {"jd": 2461001.0, "mag": 19.2, "obsdate": "2025-11-21"}, "r": {"jd": 2461001.8, "mag": 18.7, "obsdate": "2025-11-22"}}
POINTS = (
    HostPoint(None, None, 100.0, 2.0, mjd=61000.20, filter="ztfr", mag=18.90),
    HostPoint(None, None, 120.0, 2.0, mjd=61001.30, filter="ztfr", mag=18.70),  # the newest r
    HostPoint(None, None, None, 2.0, mjd=61002.00, filter="ztfr", mag=None),  # a limit: no magnitude
    HostPoint(None, None, 80.0, 2.0, mjd=61000.50, filter="ztfg", mag=19.20),
    HostPoint(None, None, 90.0, 2.0, mjd=61003.00, filter="atlaso", mag=18.10),  # not a ZTF band
)


def sedm_answer(message):
    return f"Content-type: text/html\n <title>{message}</title>"


def make_request(payload=None, remote_id=None, altdata=None, **changes):
    allocation = Allocation(5, dict(altdata if altdata is not None else {}), group="Transients", instrument_name="SEDM")
    fields = {"requester": "observer", "followup_request_id": 42, "remote_id": remote_id, **changes}
    return FollowupRequest(11, Target("ZTF26sedm", 210.5, 12.25, photometry=POINTS), allocation, dict(PAYLOAD if payload is None else payload), **fields)


def run(operation, request, config=CONFIG):
    with Transport(backoff=0, retries=1) as transport:
        return perform(SEDMFacility(config), operation, request, transport)


def uploaded(call):
    """The ``jsonfile`` upload of a recorded call: ``(filename, document)``."""
    content_type = call.request.headers["Content-Type"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + call.request.body)
    (part,) = message.iter_parts()
    assert part.get_param("name", header="content-disposition") == "jsonfile"
    return part.get_filename(), json.loads(part.get_payload(decode=True))


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


# -- the upload ------------------------------------------------------------------------------


def test_submit_uploads_the_documented_json_as_jsonfile(rsps):
    rsps.post(ENDPOINT, body=sedm_answer("Accepted Request"), content_type="text/html")
    outcome = run("submit", make_request())
    assert (outcome.state, outcome.remote_id, outcome.poll_after) == (State.SUBMITTED, "42", None)
    assert outcome.status == "submitted: SEDM: Accepted Request"
    (call,) = rsps.calls
    assert call.request.method == "POST" and call.request.url == ENDPOINT
    assert call.request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    filename, document = uploaded(call)
    assert filename == "jsonfile"
    assert document == {
        "Filters": "",
        "Followup": "IFU",
        "email": "desk@example.org",
        "enddate": "2036-11-28",
        "startdate": "2036-11-21",
        "prior_photometry": PRIOR,
        "priority": 3,
        "programname": "Transients",
        "requestid": 42,
        "sourceid": "ZTF26sedm",
        "sourcename": "ZTF26sedm",
        "status": "new",
        "username": "observer",
        "ra": 210.5,
        "dec": 12.25,
        "exptime": -1,
        "maxairmass": 2.8,
        "max_fwhm": 10,
    }


@pytest.mark.parametrize(
    ("mode", "choices", "filters", "followup"),
    [
        ("IFU", None, "", "IFU"),
        ("3-shot (gri)", None, "g,r,i", ""),
        ("4-shot (ugri)", None, "u,g,r,i", ""),
        ("4-shot+IFU", None, "u,g,r,i", "IFU"),
        ("3-shot+IFU", None, "g,r,i", "IFU"),
        ("Mix 'n Match", ["r", "IFU", "u"], "u,r", "IFU"),
        ("Mix 'n Match", ["i", "g"], "g,i", ""),
        ("Mix 'n Match", ["IFU"], "", "IFU"),
    ],
)
def test_each_mode_gives_its_filters_and_followup(mode, choices, filters, followup):
    payload = {"observation_type": mode, **({"observation_choices": choices} if choices else {})}
    assert observations(SEDMFacility().validate_payload(payload)) == (filters, followup)


def test_the_advanced_options_and_their_defaults_are_sent_alike_for_a_submission_and_an_edit(rsps):
    rsps.post(ENDPOINT, body=sedm_answer("Accepted Request"))
    rsps.post(ENDPOINT, body=sedm_answer("Accepted Edit"))
    rsps.post(ENDPOINT, body=sedm_answer("Accepted Request"))
    advanced = {**PAYLOAD, "advanced": True, "exposure_time": 120, "maximum_airmass": 2.0, "maximum_fwhm": 3}
    run("submit", make_request(advanced))
    edit = run("update", make_request(advanced, remote_id="42"))
    run("submit", make_request({**PAYLOAD, "advanced": True}))  # shown but left as they were: the defaults
    (_, new), (_, edited), (_, defaults) = (uploaded(call) for call in rsps.calls)
    assert (new["exptime"], new["maxairmass"], new["max_fwhm"]) == (120, 2.0, 3)
    assert edited == {**new, "status": "edit", "prior_photometry": {}}  # the host gives photometry for submissions only
    assert (defaults["exptime"], defaults["maxairmass"], defaults["max_fwhm"]) == (-1, 2.8, 10)
    assert edit.status == "submitted: SEDM: Accepted Edit"


def test_delete_sends_the_stored_request_with_status_delete(rsps):
    rsps.post(ENDPOINT, body=sedm_answer("Accepted Deletion"))
    outcome = run("delete", make_request(remote_id="42"))
    assert outcome.status == "deleted: SEDM: Accepted Deletion"
    _, document = uploaded(rsps.calls[0])
    assert (document["status"], document["requestid"]) == ("delete", 42)


def test_a_delete_of_a_stored_payload_the_form_now_refuses_is_still_sent(rsps):
    rsps.post(ENDPOINT, body=sedm_answer("Accepted Deletion"))
    stored = {"observation_type": "Mix 'n Match", "priority": 9, "start_date": "2036-11-21", "end_date": "2036-11-28"}  # priority 9: out of range now
    assert run("delete", make_request(stored, remote_id="42")).state is State.DELETED
    assert uploaded(rsps.calls[0])[1]["Filters"] == ""


def test_a_delete_of_a_request_never_sent_calls_nothing(rsps):
    assert run("delete", make_request()).status == "deleted: nothing had been sent to SEDM" and not rsps.calls


# -- what SEDM answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "remote_id", "message", "status"),
    [
        ("submit", None, "Rejected Request", "rejected: SEDM: Rejected Request"),
        ("submit", None, "REJECTED REQUEST", "rejected: SEDM: REJECTED REQUEST"),
        ("submit", None, "'programname'", "rejected: SEDM: 'programname'"),
        ("submit", None, "accepted request", "submitted: SEDM: accepted request"),
        ("submit", None, "Invalid Formatting of Request", "failed to submit: SEDM could not read the request: Invalid Formatting of Request"),
        ("update", "42", "Rejected Edit Deletion, ACTIVE", f"submitted: SEDM kept request 42 unchanged: {ACTIVE_OR_NONE} (Rejected Edit Deletion, ACTIVE)"),
        ("update", "42", "rejected edit deletion, active", f"submitted: SEDM kept request 42 unchanged: {ACTIVE_OR_NONE} (rejected edit deletion, active)"),
        ("update", "42", "Rejected Edit", f"canceled: SEDM canceled request 42 but did not take the edited one (Rejected Edit): {HOLDS_NONE}"),
        ("update", "42", "could not convert string to float: 'x'", "rejected: SEDM: could not convert string to float: 'x'"),
        ("delete", "42", "Rejected Deletion, ACTIVE", f"submitted: SEDM did not delete request 42: {ACTIVE_OR_NONE} (Rejected Deletion, ACTIVE)"),
        ("delete", "42", "REJECTED DELETION, ACTIVE", f"submitted: SEDM did not delete request 42: {ACTIVE_OR_NONE} (REJECTED DELETION, ACTIVE)"),
        ("delete", "42", "Accepted Deletion", "deleted: SEDM: Accepted Deletion"),
    ],
)
def test_every_message_of_sedm_gives_its_status(rsps, operation, remote_id, message, status):
    rsps.post(ENDPOINT, body=sedm_answer(message), content_type="text/html; charset=utf-8")
    outcome = run(operation, make_request(remote_id=remote_id))
    assert outcome.status == status
    assert outcome.poll_after is None


def test_the_verdicts_ignore_case():
    assert [verdict(t) for t in ("ACCEPTED EDIT", "Rejected deletion, Active", "rejected EDIT", "invalid formatting of request", "Rejected Request")] == [
        Verdict.ACCEPTED, Verdict.ACTIVE, Verdict.EDIT_LOST, Verdict.INVALID, Verdict.REJECTED,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (
            {"status": 200, "body": "<html><head><title>Proxy login</title></head></html>", "content_type": "text/html"},
            "SEDM answered HTTP 200 without its verdict (an HTML page: Proxy login)",
        ),
        ({"status": 200, "body": ""}, "SEDM answered HTTP 200 without its verdict ((empty body))"),
        ({"status": 500, "body": "Internal Server Error"}, "SEDM answered HTTP 500: Internal Server Error"),
        (
            {"body": requests.ConnectionError("reset")},
            "connection to sedm.example.org failed: ConnectionError; the request may have reached the facility and was not sent again",
        ),
    ],
)
def test_a_submission_that_may_have_arrived_is_not_resent_and_says_so(rsps, answer, detail):
    rsps.post(ENDPOINT, **answer)
    outcome = run("submit", make_request())
    assert outcome.state is State.FAILED and outcome.poll_after is None and len(rsps.calls) == 1
    assert outcome.status == f"failed: SEDM may hold request 42 ({detail}): check SEDM's queue before submitting again"


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"status": 404, "body": "Not Found"}, "failed to submit: SEDM answered HTTP 404 (not found): Not Found"),
        ({"status": 400, "body": "Bad Request"}, "rejected: Bad Request"),
        ({"status": 403, "body": "Forbidden"}, "failed to submit: SEDM refused the credentials (HTTP 403: Forbidden)"),
        ({"body": requests.ConnectTimeout("timed out")}, "failed to submit: could not connect to sedm.example.org"),
    ],
)
def test_answers_that_prove_nothing_was_taken(rsps, answer, status):
    rsps.post(ENDPOINT, **answer)
    assert run("submit", make_request()).status == status


def test_an_edit_whose_answer_is_unreadable_is_tried_again_later(rsps):
    rsps.post(ENDPOINT, status=502)
    outcome = run("update", make_request(remote_id="42"))
    assert outcome.state is State.FAILED and outcome.poll_after == 60.0  # an edit repeated changes nothing more


@pytest.mark.parametrize(
    ("request_changes", "config", "status"),
    [
        ({}, {}, "failed to submit: SEDM's intake is not configured: the deployment's sedm endpoint setting names none"),
        (
            {"followup_request_id": None},
            CONFIG,
            "failed to submit: SEDM needs SkyPortal's id of the follow-up request (its robot reports under it); this request has none",
        ),
        ({"requester": None}, CONFIG, "failed to submit: SEDM needs the requester's SkyPortal user name; this request names none"),
    ],
)
def test_what_every_action_needs_is_checked_before_any_call(rsps, request_changes, config, status):
    assert run("submit", make_request(**request_changes), config=config).status == status and not rsps.calls


def test_the_program_comes_from_the_altdata_or_the_skyportal_group(rsps):
    rsps.post(ENDPOINT, body=sedm_answer("Accepted Request"))
    run("submit", make_request(altdata={"programname": "ZTF Bright Transient Survey"}))
    assert uploaded(rsps.calls[0])[1]["programname"] == "ZTF Bright Transient Survey"
    request = make_request()
    request = FollowupRequest(request.id, request.target, Allocation(5, {}), request.payload, requester="observer", followup_request_id=42)
    outcome = run("submit", request)
    rule = "$.programname: is required here: SEDM files each request under a program, and this host does not know the allocation's SkyPortal group name"
    assert outcome.status == f"failed to submit: invalid altdata: {rule}"


def test_the_program_is_required_at_validation_only_where_the_group_is_unknown():
    """SkyPortal's own class sends the allocation's group name: there an allocation without
    ``programname`` is fine; a host that does not know the group (the gateway) refuses it."""
    assert SEDMFacility().validate_altdata({}) == {}
    with pytest.raises(AltdataError) as caught:
        SEDMFacility().validate_altdata({"notification_type": "none"}, group_known=False)
    assert [e.path for e in caught.value.errors] == ["$.programname"]
    assert SEDMFacility().validate_altdata({"programname": "Transients"}, group_known=False) == {"programname": "Transients"}


# -- the form ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"observation_type": "Mix 'n Match"}, "$.observation_choices: is required"),
        ({"observation_type": "Mix 'n Match", "observation_choices": []}, "$.observation_choices"),
        ({"observation_type": "Mix 'n Match", "observation_choices": ["g", "g"]}, "$.observation_choices"),
        ({"observation_type": "Mix 'n Match", "observation_choices": ["z"]}, "$.observation_choices"),
        ({"observation_type": "IFU", "observation_choices": "gri"}, "$.observation_choices: must be of type array"),
        ({"advanced": True, "exposure_time": 3601}, "$.exposure_time: must be at most 3600"),
        ({"exposure_time": 3601}, "$.exposure_time: must be at most 3600"),  # held to its rule with advanced off too
        ({"advanced": True, "maximum_airmass": 0.5}, "$.maximum_airmass: must be at least 1"),
        ({"maximum_fwhm": 11}, "$.maximum_fwhm: must be at most 10"),
        ({"priority": 6}, "$.priority: must be at most 5"),
        ({"observation_type": "Spectrum"}, "$.observation_type"),
        ({"start_date": "2036-11-28", "end_date": "2036-11-21"}, "$.end_date: must not be before start_date"),
        ({"exptime": 30}, "$.exptime: is not a field of the SEDM form"),
        ({"prior_photometry": {"g": {"jd": "soon"}}}, "$.prior_photometry: must map ZTF bands"),
    ],
)
def test_form_rules_are_enforced_in_python_naming_the_field(payload, error):
    with pytest.raises(PayloadError) as caught:
        SEDMFacility().validate_payload(payload)
    assert error in str(caught.value)


def test_defaults_are_computed_per_call_and_filled_the_same_way():
    payload = SEDMFacility().validate_payload({})
    assert payload["observation_type"] == "IFU" and payload["priority"] == 1 and payload["advanced"] is False
    assert payload["start_date"] < payload["end_date"]
    assert not {"start_date", "end_date", "observation_type", "priority"} & set(SEDMFacility().request_schema()["required"])


def test_prior_photometry_is_the_newest_detection_per_ztf_band_and_kept_once_filled():
    assert prior_photometry(POINTS) == PRIOR
    assert prior_photometry(()) == {}
    facility = SEDMFacility()
    filled = facility.validate_payload(PAYLOAD, Target("x", 1.0, 2.0, photometry=POINTS))
    assert set(filled["prior_photometry"]) == {"g", "r"} and not facility.uses_host_photometry(filled)
    assert facility.validate_payload(filled, Target("x", 1.0, 2.0)) == filled  # filling twice changes nothing


# -- the allocation and the deployment ---------------------------------------------------------


@pytest.mark.parametrize("altdata", [{}, {"notification_type": "none"}, {"programname": "Transients", "notification_type": "none"}])
def test_allocations_without_notifications(altdata):
    assert SEDMFacility().validate_altdata(altdata) == altdata


@pytest.mark.parametrize(
    ("altdata", "error"),
    [
        ({"notification_type": "slack", "slack_workspace": "T1"}, "$.slack_channel"),
        ({"notification_type": "email", "email": "desk@example.org"}, "$.notification_type: email is not available"),
        ({"notification_type": "fax"}, "$.notification_type"),
        ({"programname": "x" * 101}, "$.programname"),
        ({"api_token": "x"}, "$.api_token: is not an allowed property"),
    ],
)
def test_bad_allocations_are_refused_naming_the_field(altdata, error):
    with pytest.raises(AltdataError) as caught:
        SEDMFacility().validate_altdata(altdata)
    assert error in str(caught.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"endpoint": "https://10.1.2.3/add_request"}, "the configured sedm endpoint is refused"),
        ({"endpoint": 5}, "the configured sedm endpoint is refused: it must be a URL"),
        ({"contact_email": "desk"}, "sedm: contact_email must be one e-mail address"),
        ({"url": ENDPOINT}, "sedm: unknown setting(s) url"),
    ],
)
def test_unusable_settings_are_refused(config, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        SEDMFacility(config)


# -- the conformance suite, with an intake configured -------------------------------------------


class ConfiguredSEDM(SEDMFacility):
    """SEDM with an intake URL, so that the fault matrix reaches the HTTP calls (the registered
    facility, without settings, fails every action before any call)."""

    def __init__(self, config=None, **options):
        super().__init__({"endpoint": ENDPOINT, **(config or {})}, **options)


TestConfiguredConformance = conformance_suite(ConfiguredSEDM)


# -- the status table of docs/facilities/sedm.md ----------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs" / "facilities" / "sedm.md"


def _documented_statuses():
    text = DOCS.read_text()
    section = text[text.index("(sedm-statuses)=") : text.index("## Differences from SkyPortal's own class")]
    return {re.sub(r"\d+", "N", span) for span in re.findall(r"`([^`]+)`", section)}


def _message(text):
    return lambda mock: mock.post(ENDPOINT, body=sedm_answer(text))


SCENARIOS = {
    "accepted": ("submit", None, _message("Accepted Request"), {}),
    "rejected": ("submit", None, _message("Rejected Request"), {}),
    "error text": ("submit", None, _message("'programname'"), {}),
    "invalid": ("submit", None, _message("Invalid Formatting of Request"), {}),
    "unreadable": ("submit", None, lambda m: m.post(ENDPOINT, body="<html><head><title>Proxy login</title></head></html>"), {}),
    "lost": ("submit", None, lambda m: m.post(ENDPOINT, body=requests.ConnectionError("reset")), {}),
    "unreachable": ("submit", None, lambda m: m.post(ENDPOINT, body=requests.ConnectTimeout("t")), {}),
    "not configured": ("submit", None, lambda m: None, {"config": {}}),
    "no id": ("submit", None, lambda m: None, {"followup_request_id": None}),
    "form": ("submit", None, lambda m: None, {"payload": {**PAYLOAD, "end_date": "2036-11-01"}}),
    "edit accepted": ("update", "42", _message("Accepted Edit"), {}),
    "edit active": ("update", "42", _message("Rejected Edit Deletion, ACTIVE"), {}),
    "edit lost": ("update", "42", _message("Rejected Edit"), {}),
    "edit unreadable": ("update", "42", lambda m: m.post(ENDPOINT, body=""), {}),
    "delete accepted": ("delete", "42", _message("Accepted Deletion"), {}),
    "delete active": ("delete", "42", _message("Rejected Deletion, ACTIVE"), {}),
    "delete unsent": ("delete", None, lambda m: None, {}),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_status_is_documented(scenario):
    operation, remote_id, setup, changes = SCENARIOS[scenario]
    config = changes.pop("config", CONFIG) if "config" in changes else CONFIG
    request = make_request(remote_id=remote_id, **{k: v for k, v in changes.items() if k != "payload"}, payload=changes.get("payload"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        setup(mock)
        status = run(operation, request, config=config).status
    assert re.sub(r"\d+", "N", status) in _documented_statuses(), f"{scenario}: {status!r} is not in docs/facilities/sedm.md"
