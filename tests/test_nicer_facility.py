"""NICER: the exact calls of ARK's login and two-step form (credentials in the POST body only, one
cookie session), every page ARK can answer mapped to the status an observer sees, the yes/no
options' fields required only when chosen, and the password kept out of every record."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

import pytest
import responses

from facility_apis.core.errors import PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.transport import Transport
from facility_apis.facilities.nicer import NICERFacility
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.nicer import ARKNicerEmulator

BASE = "https://heasarc.gsfc.nasa.gov"
LOGIN, FORM = f"{BASE}/ark/LOGIN", f"{BASE}/ark/nicertoo/form.html"
PASSWORD = "nicer pass&word=9c2f"
ALTDATA = {"username": "nicer_observer", "password": PASSWORD}
PAYLOAD = {
    "Urgency": "Within a Week",
    "ProposalNumber": "7123",
    "JustificationToO": "A new X-ray transient.",
    "TargetCategory": "X-Ray Binaries",
    "ObservationTime": 6,
    "JustificationExposure": "6 ks for a pulsation search.",
    "ExpectedCountRate": 5.5,
    "MonitoringProgram": "N",
    "PhaseDependentObservation": "Y",
    "PhaseDependentEpoch": "2026-11-01T12:00:00Z",
    "PhaseDependentPeriod": 0.25,
    "PhaseMinimum": 0.9,
    "PhaseMaximum": 0.1,
    "SpecificTimeRangeObservation": "Y",
    "TimeRangeStart": "2036-12-01",
    "TimeRangeEnd": "2036-12-08 06:00",
    "CoordinatedObservation": "Y",
    "CoordinatingObservatory": "NuSTAR",
    "CoordinatedObservationDescription": "Simultaneous hard X-ray coverage.",
    "UninterruptedObservation": "N",
}
TARGET = Target("ZTF26nicer", 83.633, 22.0145)
LOGIN_PAGE = '<html><head><title>ARK Login</title></head><body><form><input name="credential_0"><input name="credential_1"></form></body></html>'
VERIFIED = '<html><body><span class="ok">Form verified successfully.</span><input type="hidden" name="RPS_VERIFIED"></body></html>'
FAILED = (
    '<html><body><span class="error">Attempted verification detected the following problems:<ul>'
    "<li>Declination: out of range</li><li>Target Name: this field is required</li></ul></span></body></html>"
)
CONFIRMED = "<html><body><h1>Your NICER ToO request was submitted successfully.</h1></body></html>"


def make_request(payload=PAYLOAD, altdata=ALTDATA, remote_id=None) -> FollowupRequest:
    allocation = Allocation(4, dict(altdata), pi="A. Observer", instrument_id=2, instrument_name="NICER")
    return FollowupRequest(12, TARGET, allocation, dict(payload), requester="observer", remote_id=remote_id)


def run(operation, request, facility=None, egress=None):
    with Transport(backoff=0, retries=0, egress=egress) as transport:
        return perform(facility or NICERFacility(), operation, request, transport)


def login_ok(mock):
    mock.add(responses.POST, LOGIN, status=302, headers={"Location": "/ark/nicertoo/form.html", "Set-Cookie": "ARK_SESSION=s3ss10n; Path=/; HttpOnly"})


def form(request) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(request.body, keep_blank_values=True).items()}


def test_login_verify_submit_in_one_session_with_the_credentials_in_the_body_only(caplog):
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as mock, Transport(backoff=0, retries=0) as transport:
        login_ok(mock)
        mock.add(responses.POST, FORM, body=VERIFIED)
        mock.add(responses.POST, FORM, body=CONFIRMED)
        outcome = perform(NICERFacility(), "submit", make_request(), transport)
        login, verify, submit = (call.request for call in mock.calls)
        assert len(transport.session.cookies) == 0
    assert outcome.status == "submitted: ARK confirmed the NICER ToO request; it is listed on your ARK Recent Activity page (https://heasarc.gsfc.nasa.gov/ark/user/)"
    assert outcome.remote_id.startswith("ZTF26nicer ") and outcome.poll_after is None
    assert login.url == LOGIN and "?" not in login.url and PASSWORD not in login.url
    assert form(login) == {"destination": "/ark/nicertoo/form.html", "credential_0": "nicer_observer", "credential_1": PASSWORD}
    assert verify.headers["Cookie"] == submit.headers["Cookie"] == "ARK_SESSION=s3ss10n"
    sent = form(verify)
    assert {k: sent.pop(k) for k in ("RPS_VERIFY.x", "RPS_VERIFY.y")} == {"RPS_VERIFY.x": "49", "RPS_VERIFY.y": "15"}
    assert sent == {
        "RPS_DHTML": "", "RPS_BEGIN": "", "COVER": "", "RPS_CLOSED_3": "", "RPS_END": "",
        "Urgency": "Within a Week",
        "NICER Proposal Number": "7123",
        "Justification for Target of Opportunity": "A new X-ray transient.",
        "Target Name": "ZTF26nicer",
        "Target Category": "X-Ray Binaries",
        "Right Ascension": "83.633",
        "Declination": "22.0145",
        "Total Observation Time": "6",
        "Justification for Exposure": "6 ks for a pulsation search.",
        "Monitoring Program": "N",
        "Phase Dependent Observation": "Y",
        "Phase Dependent Epoch": "61345.5",
        "Phase Dependent Period": "0.25",
        "Minimum Phase": "0.9",
        "Maximum Phase": "0.1",
        "Specific Time Range Observation": "Y",
        "Specific Time Range Start": "65028.0",
        "Specific Time Range End": "65035.25",
        "Coordinated Observation": "Y",
        "Coordinating Observatory": "NuSTAR",
        "Coordinated Observation Description": "Simultaneous hard X-ray coverage.",
        "Uninterrupted Observation": "N",
        "Expected 0.3-10keV Count Rate": "5.5",
    }  # fmt: skip
    submitted = form(submit)
    assert {k: submitted.pop(k) for k in ("RPS_VERIFIED", "RPS_SUBMIT.x", "RPS_SUBMIT.y", "RPS_OPENED_3")} == {
        "RPS_VERIFIED": "", "RPS_SUBMIT.x": "45", "RPS_SUBMIT.y": "4", "RPS_OPENED_3": "",
    }  # fmt: skip
    assert submitted == sent
    login_record = outcome.transactions[0]
    assert "credential_1=***" in login_record.request_body and login_record.response_headers["Set-Cookie"] == "***"
    assert all(t.request_headers.get("Cookie") == "***" for t in outcome.transactions[1:])
    everything = json.dumps([t.as_dict() for t in outcome.transactions]) + caplog.text + repr(outcome)
    assert "nicer+pass" not in everything and PASSWORD not in everything and "s3ss10n" not in everything


PAGES = [
    # (login answer, verification answer, submission answer, status)
    ({"status": 200, "body": LOGIN_PAGE}, None, None, "failed to submit: HEASARC ARK refused the login (check the allocation's username and password)"),
    ({"status": 200, "body": "<html><head><title>ARK is down for maintenance</title></head></html>"}, None, None,
     "failed to submit: HEASARC ARK answered the login with HTTP 200 and no session: ARK is down for maintenance"),
    (None, {"body": FAILED}, None,
     "rejected: NICER's form did not verify: the following problems: Declination: out of range Target Name: this field is required"),
    (None, {"status": 403, "body": LOGIN_PAGE}, None,
     "failed to submit: HEASARC ARK asked to log in again at the verification (the session was not accepted)"),
    (None, {"body": "<html><head><title>NICER ToO form</title></head><body>Please fill in the form.</body></html>"}, None,
     "failed to submit: HEASARC ARK answered the verification with a page this package does not recognise (NICER ToO form); nothing was submitted"),
    (None, {"status": 500, "body": "<html><head><title>500 Internal Server Error</title></head></html>"}, None,
     "failed to submit: HEASARC ARK answered the verification with HTTP 500: 500 Internal Server Error"),
    (None, None, {"body": "<html><head><title>Thank you</title></head><body>Your request is in the queue.</body></html>"},
     "failed: ARK answered the submission with HTTP 200 and a page this package does not recognise (Thank you); the request may have "
     "been submitted: check your ARK Recent Activity page (https://heasarc.gsfc.nasa.gov/ark/user/) before submitting again"),
    (None, None, {"body": ""},
     "failed: ARK answered the submission with HTTP 200 and a page this package does not recognise (an empty page); the request may have "
     "been submitted: check your ARK Recent Activity page (https://heasarc.gsfc.nasa.gov/ark/user/) before submitting again"),
    (None, None, {"status": 500, "body": "<html><head><title>Error</title></head><body>submitted successfully?</body></html>"},
     "failed: ARK answered the submission with HTTP 500 and a page this package does not recognise (Error); the request may have "
     "been submitted: check your ARK Recent Activity page (https://heasarc.gsfc.nasa.gov/ark/user/) before submitting again"),
]  # fmt: skip


@pytest.mark.parametrize(("login", "verify", "submit", "status"), PAGES)
def test_every_page_ark_can_answer_ends_in_a_status_that_says_what_happened(login, verify, submit, status):
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, LOGIN, **login) if login else login_ok(mock)
        if login is None:
            mock.add(responses.POST, FORM, **(verify or {"body": VERIFIED}))
        if login is None and verify is None:
            mock.add(responses.POST, FORM, **submit)
        outcome = run("submit", make_request())
        posts = len(mock.calls)
    assert outcome.status == status and outcome.poll_after is None
    assert posts == (1 if login else 2 if verify else 3), "nothing is submitted without a verified form"


def test_the_verification_alone_is_the_remote_validation():
    with responses.RequestsMock() as mock:
        login_ok(mock)
        mock.add(responses.POST, FORM, body=VERIFIED)
        outcome = run("remote_validate", make_request())
        assert len(mock.calls) == 2 and "RPS_SUBMIT.x" not in mock.calls[1].request.body
        mock.add(responses.POST, FORM, body=FAILED)
        login_ok(mock)
        refused = run("remote_validate", make_request())
    assert outcome.status == "pending submission: ARK verified the NICER ToO form (nothing was submitted)"
    assert refused.status.startswith("rejected: NICER's form did not verify: the following problems: Declination")


def test_a_confirmation_phrase_can_be_configured():
    facility = NICERFacility({"confirmation_markers": ["Request received"]})
    with responses.RequestsMock() as mock:
        login_ok(mock)
        mock.add(responses.POST, FORM, body=VERIFIED)
        mock.add(responses.POST, FORM, body="<html><body>Request received. Thank you.</body></html>")
        assert run("submit", make_request(), facility).state.value == "submitted"
    with pytest.raises(Exception, match="confirmation_markers"):
        NICERFacility({"confirmation_markers": "Request received"})


@pytest.mark.parametrize(
    ("option", "needed"),
    [
        ("MonitoringProgram", {"MonitoringCriteria"}),
        ("PhaseDependentObservation", {"PhaseDependentEpoch", "PhaseDependentPeriod", "PhaseMinimum", "PhaseMaximum"}),
        ("CoordinatedObservation", {"CoordinatingObservatory", "CoordinatedObservationDescription"}),
        ("UninterruptedObservation", {"UninterruptedObservationJustification"}),
    ],
)
def test_an_options_fields_are_required_only_when_it_is_chosen(option, needed):
    facility = NICERFacility()
    assert facility.validate_payload({option: "N"})[option] == "N"
    with pytest.raises(PayloadError) as caught:
        facility.validate_payload({option: "Y"})
    assert {e.path[2:] for e in caught.value.errors} == needed and all("is required" in e.message for e in caught.value.errors)


def test_a_missing_options_fields_are_refused_before_anything_is_sent():
    with responses.RequestsMock() as mock:
        payload = {k: v for k, v in PAYLOAD.items() if k not in ("CoordinatingObservatory", "CoordinatedObservationDescription")}
        outcome = run("submit", make_request(payload))
        assert len(mock.calls) == 0
    assert outcome.status == "rejected: invalid payload: $.CoordinatedObservationDescription: is required; $.CoordinatingObservatory: is required"


def test_a_time_range_that_has_ended_is_refused_before_anything_is_sent():
    with responses.RequestsMock() as mock:
        outcome = run("submit", make_request({**PAYLOAD, "TimeRangeStart": "2020-01-01", "TimeRangeEnd": "2020-01-08 06:00"}))
        assert len(mock.calls) == 0
    expected = (
        "rejected: invalid payload: $.TimeRangeEnd: is in the past: "
        "the observing window closed at 2020-01-08 06:00 UTC; choose a window that has not ended"
    )
    assert outcome.status == expected


def test_a_time_range_has_defaults_a_week_long_and_must_end_after_it_starts():
    facility = NICERFacility()
    chosen = facility.validate_payload({"SpecificTimeRangeObservation": "Y"})
    assert chosen["TimeRangeStart"] < chosen["TimeRangeEnd"]
    with pytest.raises(PayloadError, match=r"\$\.TimeRangeEnd: must be after TimeRangeStart"):
        facility.validate_payload({"SpecificTimeRangeObservation": "Y", "TimeRangeStart": "2026-12-08", "TimeRangeEnd": "2026-12-01"})
    with pytest.raises(PayloadError, match=r"\$\.PhaseDependentEpoch: must be a real calendar date"):
        facility.validate_payload({**PAYLOAD, "PhaseDependentEpoch": "2026-02-30 00:00"})
    with pytest.raises(PayloadError, match=r"\$\.Phase: is not a field of this form"):
        facility.validate_payload({**PAYLOAD, "Phase": 0.5})


def test_the_untouched_form_is_a_valid_request():
    payload = NICERFacility().validate_payload({})
    options = ("MonitoringProgram", "PhaseDependentObservation", "SpecificTimeRangeObservation", "CoordinatedObservation", "UninterruptedObservation")
    assert payload["Urgency"] == "Next Day" and payload["ObservationTime"] == 10 and all(payload[key] == "N" for key in options)


def test_delete_never_pretends_ark_withdrew_the_request():
    assert run("delete", make_request()).status == "deleted: nothing had been sent to NICER"
    assert run("delete", make_request(remote_id="ZTF26nicer 2026-11-30T12:00:00Z")).status.startswith("deleted: deleted here only: ARK cannot withdraw")


def test_a_password_with_spaces_is_accepted_and_a_line_break_is_not():
    facility = NICERFacility()
    assert facility.validate_altdata(ALTDATA) == ALTDATA
    with pytest.raises(Exception, match=r"\$\.password"):
        facility.validate_altdata({**ALTDATA, "password": "two\nlines"})


# -- against the emulator --------------------------------------------------------------------------


def test_against_the_emulator_the_session_is_never_shared_between_allocations():
    with ARKNicerEmulator({"alice": "alice pass", "bob": "bob pass"}) as ark:
        egress = loopback_egress(ark)
        facility = NICERFacility({"base_url": ark.base_url}, egress=egress)
        with Transport(backoff=0, retries=0, egress=egress) as transport:  # one transport, as a gateway worker thread keeps
            first = perform(facility, "submit", make_request(altdata={"username": "alice", "password": "alice pass"}), transport)
            second = perform(facility, "submit", make_request(altdata={"username": "bob", "password": "wrong password"}), transport)
    assert first.state.value == "submitted"
    assert second.status == "failed to submit: HEASARC ARK refused the login (check the allocation's username and password)"
    assert len(ark.submissions) == 1 and ark.logins == [("alice", "body")]
    logins = [r for r in ark.requests if r.path == "/ark/LOGIN"]
    assert "Cookie" not in logins[1].headers, "alice's session cookie must not ride along on bob's login"
    assert [r.path for r in ark.requests].count("/ark/nicertoo/form.html") == 2, "nothing was posted after bob's refused login"
