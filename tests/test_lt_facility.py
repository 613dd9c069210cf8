"""The Liverpool Telescope facilities with ``responses``: every answer branch of submit, the remote
validation and delete, ending in a defined state with the status an observer sees; the password
masked in every record; the forms and the allocation rules."""

import dataclasses
import logging
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import requests
import responses

from facility_apis.core.errors import AltdataError, ConfigurationError, PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import RETRY_AFTER_FAILURE, perform
from facility_apis.core.outcome import State
from facility_apis.core.redact import Redactor
from facility_apis.core.transport import Transport
from facility_apis.facilities.lt import IOIFacility, IOOFacility, SPRATFacility
from facility_apis.facilities.lt import facility as lt_facility
from facility_apis.facilities.lt.rtml import RTML_NS
from facility_apis.facilities.lt.soap import NODE_AGENT_NS, SOAP_ENV

URL = lt_facility.DEFAULT_BASE_URL
PASSWORD = "Pw-LT-5ecret-81f2"
ALTDATA = {"username": "observer", "password": PASSWORD, "LT_proposalID": "PL26A01"}
UID = "ZTF26lt_7_a1b2c3d4e5f6"
PAYLOAD = {"observation_choices": ["g", "r"], "exposure_time": 120, "exposure_counts": 2}


@pytest.fixture(autouse=True)
def fixed_uid(monkeypatch):
    monkeypatch.setattr(lt_facility.LiverpoolFacility, "new_uid", staticmethod(lambda request: UID))


def request(remote_id=None, altdata=ALTDATA, payload=PAYLOAD):
    return FollowupRequest(7, Target("ZTF26lt", 210.5, -12.25), Allocation(3, dict(altdata)), dict(payload), remote_id=remote_id)


def rtml_reply(mode, *errors, uid=UID):
    entries = "".join(f"<Entry><Error>{escape(e)}</Error></Entry>" for e in errors)
    return f'<?xml version="1.0" encoding="ISO-8859-1"?><RTML xmlns="{RTML_NS}" mode="{mode}" uid="{uid}" version="3.1a"><History>{entries}</History></RTML>'


def soap_return(text):
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><S:Envelope xmlns:S="{SOAP_ENV}"><S:Body>'
        f'<ns2:handle_rtmlResponse xmlns:ns2="{NODE_AGENT_NS}"><return>{escape(text)}</return></ns2:handle_rtmlResponse>'
        "</S:Body></S:Envelope>"
    )


def soap_fault(text):
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><S:Envelope xmlns:S="{SOAP_ENV}"><S:Body><S:Fault>'
        f"<faultcode>S:Server</faultcode><faultstring>{escape(text)}</faultstring></S:Fault></S:Body></S:Envelope>"
    )


CREDENTIALS_FAULT = "org.estar.node_agent2.NodeAgentWebServiceImpl:checkUsernamePassword:Incorrect Password for User:observer"


def run(operation, answer, *, facility_class=IOOFacility, remote_id=None, caplog=None):
    """Run ``operation`` against one canned answer: ``(status, body)`` or an exception."""
    facility = facility_class()
    with responses.RequestsMock() as mock, Transport(backoff=0, retries=1) as transport:
        if isinstance(answer, Exception):
            mock.post(URL, body=answer)
        else:
            status, body = answer
            mock.post(URL, status=status, body=body, content_type="text/xml; charset=utf-8")
        outcome = perform(facility, operation, request(remote_id), transport)
        calls = list(mock.calls)
    records = repr([t.as_dict() for t in outcome.transactions]) + repr(outcome)
    assert PASSWORD not in records
    if caplog is not None:
        assert PASSWORD not in caplog.text
    return outcome, calls


def sent(call):
    """The RTML document a recorded call carried, parsed."""
    envelope = ET.fromstring(call.request.body)
    return ET.fromstring(envelope.find(f"{{{SOAP_ENV}}}Body/{{{NODE_AGENT_NS}}}handle_rtml/arg0").text)


NOT_SOAP = "the Liverpool Telescope answered HTTP 200 with a body that is not a SOAP envelope: "
NOT_FOUND = f"Internal error during GET_PROPOSAL: Group {UID} was not found in proposal"
MAY_EXIST = f"failed: Phase 2 group {UID} may exist at the Liverpool Telescope (check the Phase 2 tool before submitting again): "


# -- submit ----------------------------------------------------------------------------------


def test_confirm_is_submitted_with_the_documents_uid_as_remote_id(caplog):
    caplog.set_level(logging.DEBUG)
    outcome, calls = run("submit", (200, soap_return(rtml_reply("confirm"))), caplog=caplog)
    assert (outcome.state, outcome.status, outcome.remote_id, outcome.poll_after) == (State.SUBMITTED, f"submitted: Liverpool Telescope group {UID}", UID, None)
    (call,) = calls
    assert sent(call).get("mode") == "request" and sent(call).get("uid") == UID
    assert call.request.headers["Username"] == "observer" and call.request.headers["Password"] == PASSWORD
    assert call.request.headers["SOAPAction"] == '""' and call.request.headers["Content-Type"] == "text/xml; charset=utf-8"
    (transaction,) = outcome.transactions
    # "Password" is not a header masked by its name: the transport masks it by its value.
    assert transaction.request_headers["Password"] == "***" and transaction.request_headers["Username"] == "observer"


def test_reject_is_rejected_with_the_rtml_error_text():
    outcome, _ = run("submit", (200, soap_return(rtml_reply("reject", "java.lang.IllegalArgumentException: Your Exposure time is too short."))))
    assert (outcome.state, outcome.status, outcome.remote_id) == (State.REJECTED, "rejected: Your Exposure time is too short.", None)


def test_reject_without_an_error_element_still_says_something():
    outcome, _ = run("submit", (200, soap_return(rtml_reply("reject"))))
    assert outcome.status == "rejected: the Liverpool Telescope rejected the request without giving a reason"


def test_an_answer_of_another_mode_may_have_created_the_group():
    outcome, _ = run("submit", (200, soap_return(rtml_reply("offer"))))
    assert outcome.status == MAY_EXIST + "the Liverpool Telescope answered the request with an RTML 'offer' document instead of confirm or reject"
    assert (outcome.state, outcome.poll_after, outcome.remote_id) == (State.FAILED, None, None)


def test_the_credentials_fault_is_a_refusal_of_the_allocation():
    outcome, _ = run("submit", (500, soap_fault(CREDENTIALS_FAULT)))
    assert outcome.status == f"failed to submit: the Liverpool Telescope refused the credentials (SOAP fault: {CREDENTIALS_FAULT})"
    assert (outcome.state, outcome.poll_after) == (State.FAILED, None)


def test_any_other_soap_fault_means_the_call_did_not_run():
    outcome, _ = run("submit", (500, soap_fault("Cannot find dispatch method for {http://node_agent2.estar.org/}handle_rtm")))
    expected = "failed to submit: the Liverpool Telescope answered with a SOAP fault (S:Server): Cannot find dispatch method for {http://node_agent2.estar.org/}handle_rtm"
    assert (outcome.state, outcome.status, outcome.poll_after) == (State.FAILED, expected, None)


@pytest.mark.parametrize(
    ("answer", "tail"),
    [
        ((200, '{"status": "ok"}'), NOT_SOAP + "status: ok"),
        ((200, ""), NOT_SOAP + "(empty body)"),
        ((200, "<html><title>Maintenance</title></html>"), NOT_SOAP + "an HTML page: Maintenance"),
        (
            (200, f'<S:Envelope xmlns:S="{SOAP_ENV}"><S:Body/></S:Envelope>'),
            "the Liverpool Telescope answered with a SOAP envelope that holds no handle_rtml result",
        ),
        ((200, soap_return("not <xml")), "the Liverpool Telescope answered with an RTML document that is not well-formed XML"),
        ((200, soap_return("<html/>")), "the Liverpool Telescope answered with an XML document that is not RTML (root element 'html')"),
        ((500, "<html><title>500 Internal Server Error</title></html>"), "the Liverpool Telescope answered HTTP 500: an HTML page: 500 Internal Server Error"),
        ((503, "busy"), "161.72.57.3:8080 answered HTTP 503 (temporarily unavailable); the request may have reached the facility and was not sent again"),
        (
            requests.ReadTimeout("read timed out"),
            "no answer from 161.72.57.3:8080 within 30 s; the request may have reached the facility and was not sent again",
        ),
    ],
    ids=["json", "empty", "html-200", "no-return", "return-not-xml", "return-not-rtml", "html-500", "503", "read-timeout"],
)
def test_an_answer_that_cannot_be_read_may_have_created_the_group_and_is_not_resubmitted(answer, tail):
    outcome, _ = run("submit", answer)
    assert outcome.status == MAY_EXIST + tail
    assert (outcome.state, outcome.poll_after, outcome.remote_id) == (State.FAILED, None, None)


@pytest.mark.parametrize(
    ("answer", "status", "poll_after"),
    [
        ((404, "Not Found"), "failed to submit: the Liverpool Telescope answered HTTP 404 (not found): Not Found", None),
        ((401, "Unauthorized"), "failed to submit: the Liverpool Telescope refused the credentials (HTTP 401: Unauthorized)", None),
        ((301, ""), "failed to submit: the Liverpool Telescope answered with a redirect (HTTP 301), which is not followed", None),
        ((400, "Bad Request"), "rejected: Bad Request", None),
        ((429, ""), "failed to submit: rate limit reached at 161.72.57.3:8080; retry in 10 s", 10.0),
        (requests.ConnectTimeout("connect timed out"), "failed to submit: could not connect to 161.72.57.3:8080", RETRY_AFTER_FAILURE),
    ],
    ids=["404", "401", "301", "400", "429", "connect-timeout"],
)
def test_an_answer_that_proves_nothing_was_queued_says_so_plainly(answer, status, poll_after):
    outcome, _ = run("submit", answer)
    assert (outcome.status, outcome.poll_after, outcome.remote_id) == (status, poll_after, None)
    assert "may exist" not in outcome.status


# -- remote validation (inquiry) -----------------------------------------------------------------


def test_an_offer_means_lt_would_accept_and_nothing_was_queued():
    outcome, (call,) = run("remote_validate", (200, soap_return(rtml_reply("offer"))))
    assert outcome.status == "pending submission: the Liverpool Telescope would accept this request (it answered with an offer); nothing was queued"
    assert outcome.state is State.PENDING and sent(call).get("mode") == "inquiry"


def test_an_inquiry_rejected_gives_lts_reason():
    outcome, _ = run("remote_validate", (200, soap_return(rtml_reply("reject", "Device configuration error: IO:I cannot bin 2x2"))))
    assert outcome.status == "rejected: Device configuration error: IO:I cannot bin 2x2"


def test_an_inquiry_answered_otherwise_is_a_failure_not_an_acceptance():
    outcome, _ = run("remote_validate", (200, soap_return(rtml_reply("confirm"))))
    assert outcome.state is State.FAILED
    assert outcome.status == "failed to submit: the Liverpool Telescope answered the inquiry with an RTML 'confirm' document instead of offer or reject"


# -- delete (abort) ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["confirm", "abort"])  # RTML 3.1a says confirm; LT's TEA answers abort
def test_an_abort_accepted_is_deleted(mode):
    outcome, (call,) = run("delete", (200, soap_return(rtml_reply(mode))), remote_id=UID)
    assert (outcome.state, outcome.status, outcome.remote_id) == (State.DELETED, f"deleted: aborted at the Liverpool Telescope: group {UID} expires now", UID)
    document = sent(call)
    assert document.tag == f"{{{RTML_NS}}}RTML" and (document.get("mode"), document.get("uid")) == ("abort", UID)
    assert document.find(f"{{{RTML_NS}}}Project").get("ProjectID") == "PL26A01"


def test_an_abort_rejected_keeps_the_request_and_says_why():
    outcome, _ = run("delete", (200, soap_return(rtml_reply("reject", NOT_FOUND))), remote_id=UID)
    assert (outcome.state, outcome.remote_id) == (State.SUBMITTED, UID)
    assert outcome.status == f"submitted: the Liverpool Telescope refused to abort group {UID}: {NOT_FOUND}"


def test_an_abort_answered_otherwise_is_a_failure_retried_later():
    outcome, _ = run("delete", (200, soap_return(rtml_reply("offer"))), remote_id=UID)
    assert (outcome.state, outcome.poll_after) == (State.FAILED, RETRY_AFTER_FAILURE)
    assert outcome.status == "failed: the Liverpool Telescope answered the abort with an RTML 'offer' document instead of confirm or reject"


def test_an_abort_with_a_soap_fault_or_a_non_xml_body_fails_with_a_clear_detail():
    outcome, _ = run("delete", (500, soap_fault(CREDENTIALS_FAULT)), remote_id=UID)
    assert outcome.status == f"failed: the Liverpool Telescope refused the credentials (SOAP fault: {CREDENTIALS_FAULT})"
    outcome, _ = run("delete", (200, "Service Unavailable"), remote_id=UID)
    assert outcome.status == "failed: " + NOT_SOAP + "Service Unavailable"


def test_nothing_sent_means_nothing_to_abort():
    with responses.RequestsMock() as mock, Transport() as transport:
        outcome = perform(IOOFacility(), "delete", request(None), transport)
        assert len(mock.calls) == 0
    assert outcome.status == "deleted: nothing had been sent to the Liverpool Telescope"


def test_a_recorded_id_that_is_no_uid_of_ours_is_never_sent():
    with responses.RequestsMock() as mock, Transport() as transport:
        outcome = perform(IOOFacility(), "delete", request("ZTF26lt-7-1700000000"), transport)
        assert len(mock.calls) == 0
    assert outcome.status.startswith("failed: the recorded group name 'ZTF26lt-7-1700000000' is not an RTML uid this package sent")
    assert outcome.poll_after is None


# -- secrets -------------------------------------------------------------------------------------


def test_the_password_is_masked_by_value_in_any_header_and_body():
    redactor = Redactor([PASSWORD])
    headers = redactor.headers({"Password": PASSWORD, "X-Other": f"a {PASSWORD} b", "Username": "observer"})
    assert headers == {"Password": "***", "X-Other": "a *** b", "Username": "observer"}


def test_the_dry_run_masks_the_password():
    facility = IOOFacility()
    with Transport(secrets=facility.secrets(ALTDATA)) as transport:
        text = transport.render(facility.prepare(request(payload=facility.validate_payload(PAYLOAD))))
    assert PASSWORD not in text and "Password: ***" in text and "Username: observer" in text


def test_a_password_that_cannot_travel_in_a_header_is_refused_at_the_allocation_without_echoing_it():
    with pytest.raises(AltdataError) as caught:
        IOOFacility().validate_altdata({**ALTDATA, "password": "has space\n"})
    assert [e.path for e in caught.value.errors] == ["$.password"] and "has space" not in str(caught.value)
    with pytest.raises(AltdataError) as caught:
        IOOFacility().validate_altdata({"username": "observer", "password": PASSWORD})
    assert [e.path for e in caught.value.errors] == ["$.LT_proposalID"]
    assert IOOFacility.secret_fields() == {"password"}


# -- configuration and egress ----------------------------------------------------------------------


def test_the_default_endpoint_is_https_and_plain_http_off_loopback_is_refused():
    assert IOOFacility().base_url.startswith("https://")
    with pytest.raises(ConfigurationError, match="refused"):
        IOOFacility({"base_url": "http://161.72.57.3:8080/node_agent2/node_agent"})
    with pytest.raises(ConfigurationError, match="private or internal"):
        IOOFacility({"base_url": "https://10.0.0.5/node_agent2/node_agent"})


# -- forms -----------------------------------------------------------------------------------------


def test_every_field_the_document_needs_is_required_or_defaulted():
    for cls in (IOOFacility, IOIFacility, SPRATFacility):
        schema = cls().request_schema()
        assert set(schema["required"]) == set(schema["properties"])
        filled = cls().validate_payload({"observation_choices": ["H"]} if cls is IOIFacility else {})
        assert set(filled) == set(schema["properties"])


def test_the_window_defaults_are_computed_per_call(monkeypatch):
    moments = iter([datetime(2026, 11, 21, 12, tzinfo=UTC), datetime(2026, 11, 22, 6, tzinfo=UTC)])
    monkeypatch.setattr(lt_facility, "utcnow", lambda: next(moments))
    first, second = IOOFacility().request_defaults(), IOOFacility().request_defaults()
    assert first == {"start_date": "2026-11-21T12:00:00Z", "end_date": "2026-11-28T12:00:00Z"}
    assert second == {"start_date": "2026-11-22T06:00:00Z", "end_date": "2026-11-29T06:00:00Z"}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"end_date": "2030-01-01T00:00:00Z", "start_date": "2030-01-02T00:00:00Z"}, "$.end_date"),
        ({"start_date": "2020-01-01T00:00:00Z", "end_date": "2020-01-02T00:00:00Z"}, "$.end_date"),
        ({"end_date": "2030-01-01"}, "$.end_date"),
        ({"exposure_time": 0.5}, "$.exposure_time"),
        ({"exposure_counts": 0}, "$.exposure_counts"),
        ({"observation_choices": []}, "$.observation_choices"),
        ({"observation_choices": ["g", "g"]}, "$.observation_choices"),
        ({"observation_choices": ["H"]}, "$.observation_choices[0]"),
        ({"maximum_airmass": 3.5}, "$.maximum_airmass"),
        ({"maximum_seeing": 0}, "$.maximum_seeing"),
        ({"sky_brightness": -1}, "$.sky_brightness"),
        ({"priority": 1}, "$.priority"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(change, path):
    with pytest.raises(PayloadError) as caught:
        IOOFacility().validate_payload({**PAYLOAD, **change})
    assert path in [e.path for e in caught.value.errors]


def test_an_accepted_window_is_kept_as_given():
    start = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    filled = IOOFacility().validate_payload({**PAYLOAD, "start_date": start, "end_date": end})
    assert (filled["start_date"], filled["end_date"]) == (start, end)


def test_the_window_skyportal_puts_in_the_form_is_taken_as_utc(monkeypatch):
    # SkyPortal's request form replaces the window defaults with "YYYY-MM-DD HH:MM:SS" (UTC, no zone).
    monkeypatch.setattr(lt_facility, "utcnow", lambda: datetime(2026, 11, 21, 12, tzinfo=UTC))
    facility = IOOFacility()
    filled = facility.validate_payload({**PAYLOAD, "start_date": "2026-11-21 12:00:00", "end_date": "2026-11-28 13:00:00"})
    constraints = facility._constraints(filled)
    assert (constraints.start, constraints.end) == (datetime(2026, 11, 21, 12, tzinfo=UTC), datetime(2026, 11, 28, 13, tzinfo=UTC))
    schema = facility.request_schema()["properties"]
    assert all("format" not in schema[key] and schema[key]["pattern"] == lt_facility.INSTANT_PATTERN for key in lt_facility.WINDOW_FIELDS)


@pytest.mark.parametrize("end", ["2030-02-30 12:00:00", "2030-01-01T00:00:00Z\n"])
def test_an_impossible_window_end_is_refused_in_words(end):
    with pytest.raises(PayloadError) as caught:
        IOOFacility().validate_payload({**PAYLOAD, "start_date": "2030-01-01 00:00:00", "end_date": end})
    (error,) = caught.value.errors
    assert error.path == "$.end_date" and "[0-9]" not in error.message
    assert error.message.startswith(("must look like 2026-12-01 10:00:00", "must be a date and time"))


def test_the_ioo_form_offers_the_instruments_sdss_filters():
    facility = IOOFacility()
    narrowed = facility.instrument_form(facility.request_schema(), name="IO:O", filters=("sdssg", "sdssr", "bessellv"))
    assert narrowed["properties"]["observation_choices"]["items"]["enum"] == ["g", "r"]
    unchanged = facility.instrument_form(facility.request_schema(), name="IO:O", filters=())
    assert unchanged["properties"]["observation_choices"]["items"]["enum"] == ["u", "g", "r", "i", "z"]


def test_the_form_order_puts_the_instrument_first():
    assert SPRATFacility.ui_schema()["ui:order"][:3] == ["observation_type", "exposure_time", "exposure_counts"]


def test_skyportal_knows_them_by_its_own_class_names():
    from facility_apis.skyportal import api_classes

    classes = api_classes()
    for class_name, facility in (("IOOAPI", "lt_ioo"), ("IOIAPI", "lt_ioi"), ("SPRATAPI", "lt_sprat")):
        api = classes[class_name]
        assert api.facility_class.name == facility
        implemented = api.implements()
        assert (implemented["submit"], implemented["delete"], implemented["get"]) == (True, True, False)
    form = classes["IOOAPI"].frontend_render_info({"name": "IO:O", "filters": ["sdssr"]}, None)["formSchema"]
    assert form["properties"]["observation_choices"]["items"]["enum"] == ["r"]


def test_a_resubmission_sends_a_new_uid(monkeypatch):
    monkeypatch.undo()
    facility = IOOFacility()
    req = dataclasses.replace(request(), payload=facility.validate_payload(PAYLOAD))
    first, second = (ET.fromstring(ET.fromstring(facility.prepare(req).data).find(f".//{{{NODE_AGENT_NS}}}handle_rtml/arg0").text).get("uid") for _ in range(2))
    assert first != second


# -- the status table of docs/facilities/lt.md ------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOCUMENTED = IOOFacility.example_remote_id


def _documented_statuses() -> set[str]:
    text = (DOCS / "facilities" / "lt.md").read_text(encoding="utf-8")
    section = text[text.index("(lt-statuses)=") : text.index("## Differences from SkyPortal")]
    return {re.sub(r"\d+", "N", span) for span in re.findall(r"`([^`]+)`", section)}


STATUS_SCENARIOS = {
    "confirm": ("submit", None, (200, soap_return(rtml_reply("confirm")))),
    "reject": ("submit", None, (200, soap_return(rtml_reply("reject", "java.lang.IllegalArgumentException: Your Exposure time is too short.")))),
    "reject without error": ("submit", None, (200, soap_return(rtml_reply("reject")))),
    "credentials fault": ("submit", None, (500, soap_fault(CREDENTIALS_FAULT))),
    "other fault": ("submit", None, (500, soap_fault("java.lang.RuntimeException: node agent restarting"))),
    "garbled": ("submit", None, (200, "Proxy Error")),
    "connect": ("submit", None, requests.ConnectTimeout("connect timed out")),
    "throttled": ("submit", None, (429, "")),
    "404": ("submit", None, (404, "Not Found")),
    "4xx": ("submit", None, (400, "Bad Request")),
    "offer": ("remote_validate", None, (200, soap_return(rtml_reply("offer")))),
    "inquiry rejected": ("remote_validate", None, (200, soap_return(rtml_reply("reject", "Device configuration error: IO:O filter wheel offline")))),
    "inquiry rejected silently": ("remote_validate", None, (200, soap_return(rtml_reply("reject")))),
    "inquiry confirmed": ("remote_validate", None, (200, soap_return(rtml_reply("confirm")))),
    "aborted": ("delete", DOCUMENTED, (200, soap_return(rtml_reply("abort")))),
    "abort refused": ("delete", DOCUMENTED, (200, soap_return(rtml_reply("reject", NOT_FOUND.replace(UID, DOCUMENTED))))),
    "abort offered": ("delete", DOCUMENTED, (200, soap_return(rtml_reply("offer")))),
    "abort credentials": ("delete", DOCUMENTED, (500, soap_fault(CREDENTIALS_FAULT))),
    "foreign uid": ("delete", "ZTF26lt-7-1700000000", (200, "")),
}


@pytest.mark.parametrize("scenario", list(STATUS_SCENARIOS))
def test_every_status_is_documented(scenario, monkeypatch):
    monkeypatch.setattr(lt_facility.LiverpoolFacility, "new_uid", staticmethod(lambda request: DOCUMENTED))
    operation, remote_id, answer = STATUS_SCENARIOS[scenario]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, Transport(backoff=0, retries=0) as transport:
        if isinstance(answer, Exception):
            mock.post(URL, body=answer)
        else:
            mock.post(URL, status=answer[0], body=answer[1], content_type="text/xml")
        status = perform(IOOFacility(), operation, request(remote_id), transport).status
    assert re.sub(r"\d+", "N", status) in _documented_statuses(), f"{scenario}: {status!r} is not in docs/facilities/lt.md"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (
            {"payload": {**PAYLOAD, "start_date": "2030-01-02T00:00:00Z", "end_date": "2030-01-01T00:00:00Z"}},
            "rejected: invalid payload: $.end_date: must be after start_date",
        ),
        ({"altdata": {"username": "observer", "password": PASSWORD}}, "failed to submit: invalid altdata: $.LT_proposalID: is required"),
        ({"remote_id": None}, "deleted: nothing had been sent to the Liverpool Telescope"),
    ],
)
def test_the_documented_statuses_of_bad_input_and_nothing_to_do(change, status):
    operation = "delete" if "remote_id" in change else "submit"
    with responses.RequestsMock() as mock, Transport() as transport:
        outcome = perform(IOOFacility(), operation, request(**change), transport)
        assert len(mock.calls) == 0
    assert outcome.status == status and status in _documented_statuses()


def test_an_internal_error_status_is_documented(monkeypatch):
    def broken(self, payload):
        raise KeyError("x")

    monkeypatch.setattr(IOOFacility, "exposures", broken)
    with Transport() as transport:
        status = perform(IOOFacility(), "submit", request(), transport).status
    assert status == "failed to submit: internal error in lt_ioo.submit: KeyError" and status in _documented_statuses()
