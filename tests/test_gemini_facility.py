"""Gemini ToO: the exact triggers, every answer branch and the status an observer sees, the user
key absent from every record, the allocation's rules (legacy names, the program's site against
the instrument's) and the deployment's servers."""

import json
import re
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses

from facility_apis.core.errors import AltdataError, ConfigurationError, PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.transport import Transport
from facility_apis.facilities.gemini import GeminiFacility
from facility_apis.facilities.gemini.facility import current_names, window_of
from facility_apis.facilities.gemini.sites import Site, instrument_site
from facility_apis.facilities.gemini.trigger import dec_text, ra_text, window
from facility_apis.testing.network import socket_guard

KEY = "k#y/+=&%key-7f3a"  # characters that must be percent-encoded in a query string
PROGRAM = "GN-2026B-Q-101"
NORTH = "https://gnodb.gemini.edu:8443/too"
SOUTH = "https://gsodb.gemini.edu:8443/too"
ALTDATA = {"user_email": "pi@example.org", "user_key": KEY, "programid": PROGRAM}
PAYLOAD = {
    "template_ids": "3",
    "start_date": "2036-11-21 10:00",
    "end_date": "2036-11-22 09:30",
    "l_exptime": 300,
    "l_elmin": 1.0,
    "l_elmax": 1.6,
    "note_title": "Finder",
    "note": "line one\nline two & more",
    "ready": True,
}


def make_request(altdata=None, payload=None, instrument_name="GMOS-N"):
    allocation = Allocation(4, dict(ALTDATA if altdata is None else altdata), instrument_name=instrument_name)
    return FollowupRequest(9, Target("ZTF26gem", 150.0, -5.25), allocation, dict(PAYLOAD if payload is None else payload), followup_request_id=9)


def run(request, facility=None, operation="submit"):
    with Transport(backoff=0, retries=1) as transport:
        return perform(facility or GeminiFacility(), operation, request, transport)


def query(call):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(call.request.url).query, keep_blank_values=True))


def no_key(outcome):
    records = json.dumps([t.as_dict() for t in outcome.transactions])
    assert KEY not in records and urllib.parse.quote(KEY, safe="") not in records and urllib.parse.quote_plus(KEY) not in records
    assert KEY not in outcome.status


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


# -- the trigger -----------------------------------------------------------------------------


def test_one_template_is_one_post_with_the_documented_parameters_and_the_key_masked(rsps):
    rsps.post(NORTH, body=f"{PROGRAM}-23")
    outcome = run(make_request())
    assert (outcome.state, outcome.remote_id) == (State.SUBMITTED, f"{PROGRAM}-23")
    assert outcome.status == f"submitted: Gemini North: template 3 triggered as {PROGRAM}-23"
    assert outcome.poll_after is None  # the servlet offers nothing to follow
    (call,) = rsps.calls
    assert call.request.method == "POST" and call.request.url.startswith(NORTH + "?") and not call.request.body
    assert query(call) == {
        "prog": PROGRAM,
        "email": "pi@example.org",
        "password": KEY,
        "obsnum": "3",
        "target": "ZTF26gem",
        "ra": "10:00:00.00",
        "dec": "-05:15:00.000",
        "noteTitle": "Finder",
        "note": "line one\nline two & more",
        "exptime": "300",
        "group": "ZTF26gem",
        "ready": "true",
        "windowDate": "2036-11-21",
        "windowTime": "10:00",
        "windowDuration": "24",
        "elevationType": "airmass",
        "elevationMin": "1",
        "elevationMax": "1.6",
    }
    no_key(outcome)
    (record,) = outcome.transactions
    assert "password=***" in record.url and record.response_body == f"{PROGRAM}-23"


def test_optional_parameters_are_left_out_and_ready_off_keeps_the_copy_on_hold(rsps):
    rsps.post(NORTH, body=f"{PROGRAM}-24")
    payload = {"template_ids": "3", "start_date": "2036-11-21T10:00:00Z", "end_date": "2036-11-21T11:00:00Z", "ready": False, "group_name": "GW S261121"}
    outcome = run(make_request(payload=payload))
    sent = query(rsps.calls[0])
    assert "exptime" not in sent and "noteTitle" not in sent and "note" not in sent and not any(k.startswith("gs") for k in sent)
    assert (sent["ready"], sent["group"], sent["windowDuration"]) == ("false", "GW S261121", "1")
    assert outcome.status == f"submitted: Gemini North: template 3 made On Hold (not triggered: Ready was off) as {PROGRAM}-24"


def test_a_south_program_goes_to_the_south_server(rsps):
    rsps.post(SOUTH, body="GS-2026B-Q-7-2")
    outcome = run(make_request(altdata={**ALTDATA, "programid": "GS-2026B-Q-7"}, instrument_name="GMOS-S"))
    assert outcome.remote_id == "GS-2026B-Q-7-2" and outcome.status.startswith("submitted: Gemini South: ")


def test_every_template_is_triggered_and_every_answer_kept(rsps):
    rsps.post(NORTH, body=f"{PROGRAM}-31")
    rsps.post(NORTH, body=f"{PROGRAM}-32")
    outcome = run(make_request(payload={**PAYLOAD, "template_ids": "3, 5"}))
    assert [query(c)["obsnum"] for c in rsps.calls] == ["3", "5"]
    assert outcome.remote_id == f"{PROGRAM}-31,{PROGRAM}-32"
    assert outcome.status == f"submitted: Gemini North: template 3 triggered as {PROGRAM}-31; template 5 triggered as {PROGRAM}-32"
    assert [t.response_body for t in outcome.transactions] == [f"{PROGRAM}-31", f"{PROGRAM}-32"]
    no_key(outcome)


def test_a_template_named_twice_is_refused_before_any_call_rather_than_triggered_once(rsps):
    outcome = run(make_request(payload={**PAYLOAD, "template_ids": "3, 5,3"}))
    assert len(rsps.calls) == 0
    assert outcome.status == (
        "rejected: invalid payload: $.template_ids: names template 3 more than once: name each template once "
        "(another request triggers another copy)"
    )


def test_partial_success_names_each_templates_fate(rsps):
    rsps.post(NORTH, body=f"{PROGRAM}-40")
    rsps.post(NORTH, status=400, body="template observation 5 is not On Hold")
    rsps.post(NORTH, status=500, body="Internal Server Error")
    outcome = run(make_request(payload={**PAYLOAD, "template_ids": "3,5,6"}))
    assert (outcome.state, outcome.remote_id) == (State.SUBMITTED, f"{PROGRAM}-40")
    assert outcome.status == (
        f"submitted: Gemini North: template 3 triggered as {PROGRAM}-40; template 5 refused: template observation 5 is not On Hold; "
        "template 6 may have been made (Gemini answered HTTP 500: Internal Server Error): check the Observing Tool before triggering it again"
    )
    assert len(outcome.transactions) == 3


def test_one_refused_template_is_a_rejection_in_gemini_words(rsps):
    rsps.post(NORTH, status=400, body="guide star not completely specified")
    outcome = run(make_request())
    assert outcome.status == "rejected: Gemini North refused template 3: guide star not completely specified"


def test_every_template_refused_is_a_rejection_listing_them(rsps):
    rsps.post(NORTH, status=400, body="no template observation 3 in GN-2026B-Q-101")
    rsps.post(NORTH, status=400, body="template observation 5 is not On Hold")
    outcome = run(make_request(payload={**PAYLOAD, "template_ids": "3,5"}))
    assert outcome.status == (
        "rejected: Gemini North refused every template: template 3: no template observation 3 in GN-2026B-Q-101; "
        "template 5: template observation 5 is not On Hold"
    )


def test_refused_credentials_stop_the_triggers(rsps):
    rsps.post(NORTH, status=401, body="user key not valid for this program")
    outcome = run(make_request(payload={**PAYLOAD, "template_ids": "3,5"}))
    assert outcome.status == "failed to submit: Gemini refused the credentials (HTTP 401: user key not valid for this program)"
    assert len(rsps.calls) == 1 and outcome.poll_after is None


def test_a_trigger_whose_answer_is_lost_is_never_resent_and_says_check_the_observing_tool(rsps):
    import requests

    rsps.post(NORTH, body=requests.ConnectionError("Connection reset by peer"))
    outcome = run(make_request(payload={**PAYLOAD, "template_ids": "3,5"}))
    assert outcome.state is State.FAILED and outcome.poll_after is None and len(rsps.calls) == 1 and outcome.maybe_sent
    assert outcome.status == (
        "failed: Gemini North: template 3 may have been made (connection to gnodb.gemini.edu:8443 failed: ConnectionError; "
        "the request may have reached the facility and was not sent again): check the Observing Tool before triggering it again; "
        "template 5 not sent: submit it in a new request"
    )


def test_a_200_without_an_observation_id_is_not_a_success(rsps):
    rsps.post(NORTH, body="<html><head><title>Login</title></head></html>", content_type="text/html")
    outcome = run(make_request())
    assert outcome.state is State.FAILED and outcome.remote_id is None and outcome.poll_after is None and outcome.maybe_sent
    assert outcome.status == (
        "failed: Gemini North: template 3 may have been made (Gemini answered HTTP 200 without a new observation id "
        "(an HTML page: Login)): check the Observing Tool before triggering it again"
    )


def test_an_id_of_another_program_is_not_taken_as_this_ones(rsps):
    rsps.post(NORTH, body="GN-2026B-Q-999-1")
    assert run(make_request()).state is State.FAILED


def test_a_missing_servlet_stops_before_anything_is_made(rsps):
    rsps.post(NORTH, status=404, body="Not Found")
    outcome = run(make_request(payload={**PAYLOAD, "template_ids": "3,5"}))
    assert outcome.status == "failed to submit: Gemini answered HTTP 404 (not found): Not Found" and len(rsps.calls) == 1


def test_a_throttle_after_a_success_is_reported_with_the_rest_unsent(rsps):
    rsps.post(NORTH, body=f"{PROGRAM}-50")
    rsps.post(NORTH, status=429, headers={"Retry-After": "30"})
    outcome = run(make_request(payload={**PAYLOAD, "template_ids": "3,5,6"}))
    assert outcome.state is State.SUBMITTED and outcome.remote_id == f"{PROGRAM}-50"
    # Nothing retries the rest: the status says what the observer does, not "retry in 30 s".
    assert outcome.status.endswith("templates 5, 6 not sent (rate limit reached at gnodb.gemini.edu:8443): submit them in a new request")
    assert "retry" not in outcome.status


def test_a_refusal_then_a_stop_fails_without_inviting_a_retry(rsps):
    rsps.post(NORTH, status=400, body="exptime must be an integer from 1 to 1200")
    rsps.post(NORTH, status=403, body="Forbidden")
    outcome = run(make_request(payload={**PAYLOAD, "template_ids": "3,5"}))
    assert outcome.state is State.FAILED and outcome.poll_after is None
    assert outcome.status == (
        "failed to submit: Gemini North: template 3 refused: exptime must be an integer from 1 to 1200; "
        "template 5 not sent (Gemini refused the credentials (HTTP 403: Forbidden))"
    )
    assert not outcome.maybe_sent


def test_a_template_the_allocation_does_not_allow_is_refused_before_any_call(rsps):
    outcome = run(make_request(altdata={**ALTDATA, "template_ids": "1,2"}, payload={**PAYLOAD, "template_ids": "1,3"}))
    assert outcome.status == "rejected: invalid payload: $.template_ids: template 3 is not one this allocation may trigger (1, 2)"
    assert len(rsps.calls) == 0


def test_absent_template_ids_in_the_allocation_allow_any(rsps):
    rsps.post(NORTH, body=f"{PROGRAM}-60")
    assert run(make_request(payload={**PAYLOAD, "template_ids": "999"})).state is State.SUBMITTED


def test_prepare_is_the_first_trigger_and_sends_nothing():
    with socket_guard() as attempts:
        call = GeminiFacility().prepare(make_request(payload=GeminiFacility().validate_payload({**PAYLOAD, "template_ids": "4,5"})))
    assert attempts == [] and call.method == "POST" and call.params["obsnum"] == "4" and call.url == NORTH


# -- the form --------------------------------------------------------------------------------


def test_defaults_open_a_24_hour_window_now(monkeypatch):
    import facility_apis.facilities.gemini.facility as module

    monkeypatch.setattr(module, "utcnow", lambda: datetime(2036, 11, 21, 10, 17, 44, tzinfo=UTC))
    payload = GeminiFacility().validate_payload({"template_ids": "1"})
    assert (payload["start_date"], payload["end_date"]) == ("2036-11-21 10:17", "2036-11-22 10:17")
    assert (payload["l_exptime"], payload["l_elmin"], payload["l_elmax"], payload["ready"]) == (0, 1.0, 1.6, True)
    assert not {"start_date", "end_date"} & set(GeminiFacility().request_schema()["required"])


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"end_date": "2036-11-21 10:00"}, "$.end_date: must be after start_date (to the minute)"),
        ({"end_date": "2036-11-21 09:00"}, "$.end_date: must be after start_date (to the minute)"),
        ({"l_elmin": 1.6, "l_elmax": 1.6}, "$.l_elmax: must be above the minimum airmass"),
        ({"template_ids": ",".join(str(n) for n in range(1, 22))}, "$.template_ids: must list at most 20 templates"),
        ({"template_ids": "1;2"}, "$.template_ids: must be template numbers separated by commas, like 3, 5"),
        ({"template_ids": "3, 5,3"}, "$.template_ids: names template 3 more than once: name each template once"),
        ({"template_ids": "3,5,3,5"}, "$.template_ids: names templates 3, 5 more than once"),
        ({"l_exptime": 1201}, "$.l_exptime: must be at most 1200"),
        ({"l_exptime": 2.5}, "$.l_exptime"),
        ({"start_date": "2026-02-30 10:00"}, "$.start_date: must look like 2026-12-01"),
        ({"l_elmax": 3.5}, "$.l_elmax"),
    ],
)
def test_form_rules_name_the_field(change, error):
    with pytest.raises(PayloadError) as caught:
        GeminiFacility().validate_payload({**PAYLOAD, **change})
    assert error in str(caught.value)


def test_window_spellings_and_its_length_in_whole_hours_rounded_up():
    start, end = window_of({"start_date": "2036-11-21T23:30:00-05:00", "end_date": "2036-11-23"})
    assert (start, end) == (datetime(2036, 11, 22, 4, 30, tzinfo=UTC), datetime(2036, 11, 23, tzinfo=UTC))
    assert window(start, end) == {"windowDate": "2036-11-22", "windowTime": "04:30", "windowDuration": "20"}
    start, end = window_of({"start_date": "2036-11-21 10:00:59", "end_date": "2036-11-21 12:00:30.5"})
    assert window(start, end) == {"windowDate": "2036-11-21", "windowTime": "10:00", "windowDuration": "2"}
    assert window(datetime(2026, 1, 1, 0, 0), datetime(2026, 1, 1, 2, 1))["windowDuration"] == "3"


def test_sexagesimal_as_the_servlet_reads_it():
    assert (ra_text(359.9999999), dec_text(4.5175638), dec_text(-0.0001)) == ("00:00:00.00", "04:31:03.230", "-00:00:00.360")


# -- the allocation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "legacy",
    [
        {"user_email": "pi@example.org", "user_password": KEY, "programid": PROGRAM},
        {"email": "pi@example.org", "password": KEY, "progid": PROGRAM},
        {"user_email": "pi@example.org", "user_key": KEY, "user_password": KEY, "programid": PROGRAM},
    ],
)
def test_legacy_names_are_stored_under_the_current_ones(legacy):
    assert GeminiFacility().validate_altdata(legacy) == ALTDATA


def test_a_legacy_name_that_disagrees_with_the_current_one_is_refused_without_either_value():
    with pytest.raises(AltdataError) as caught:
        GeminiFacility().validate_altdata({**ALTDATA, "user_password": "another-key"})
    assert str(caught.value) == "invalid altdata: $.user_password: is the legacy name of user_key: give one of them, not both"
    assert KEY not in str(caught.value) and "another-key" not in str(caught.value)


def test_legacy_key_names_are_secrets_too(rsps):
    assert {"user_key", "user_password", "password"} <= GeminiFacility.secret_fields()
    rsps.post(NORTH, body=f"{PROGRAM}-70")
    outcome = run(make_request(altdata={"user_email": "pi@example.org", "user_password": KEY, "programid": PROGRAM}))
    assert outcome.state is State.SUBMITTED and query(rsps.calls[0])["password"] == KEY
    no_key(outcome)


def test_template_ids_stored_by_skyportals_own_class_as_a_list_are_read():
    assert GeminiFacility().validate_altdata({**ALTDATA, "template_ids": [1, 2, 3]})["template_ids"] == "1,2,3"
    assert current_names({"template_ids": [1, True]}) == {"template_ids": [1, True]}  # left to the schema to refuse


@pytest.mark.parametrize(
    ("programid", "instrument", "error"),
    [
        ("GN-2026B-Q-101", "GMOS-N", None),
        ("GS-2026B-Q-101", "GMOS-S", None),
        ("GS-2026B-Q-101", "Gemini North", "$.programid: must be a Gemini North program (GN-...): the allocation's instrument Gemini North is at Gemini North"),
        ("GN-2026B-Q-101", "GMOS-S", "$.programid: must be a Gemini South program (GS-...): the allocation's instrument GMOS-S is at Gemini South"),
        ("GS-2026B-Q-101", "GN GMOS", "$.programid: must be a Gemini North program"),
        ("GN-2026B-Q-101", "GMOS", None),  # no site in the name: the program decides
    ],
)
def test_the_programs_site_must_be_the_instruments(programid, instrument, error):
    altdata = {**ALTDATA, "programid": programid}
    if error is None:
        GeminiFacility().validate_altdata(altdata, instrument_name=instrument)
    else:
        with pytest.raises(AltdataError, match=re.escape(error)):
            GeminiFacility().validate_altdata(altdata, instrument_name=instrument)


@pytest.mark.parametrize(
    ("name", "site"),
    [
        ("GMOS-N", Site.NORTH), ("gemini_s", Site.SOUTH), ("GeminiNorth", Site.NORTH), ("Gemini South GMOS", Site.SOUTH),
        ("GNIRS", None), ("GSAOI", None), ("Gemini", None), ("North-South", None),
    ],
)
def test_instrument_names_and_their_site(name, site):
    assert instrument_site(name) is site


def test_a_mismatched_allocation_fails_its_requests_before_any_call(rsps):
    outcome = run(make_request(instrument_name="GMOS-S"))
    assert outcome.status.startswith("failed to submit: invalid altdata: $.programid: must be a Gemini South program") and len(rsps.calls) == 0


def test_skyportal_refuses_a_mismatched_allocation_when_it_is_saved():
    from facility_apis.skyportal import configure
    from facility_apis.skyportal.adapter import make_api_class

    configure()
    api = make_api_class("GEMINIAPI", GeminiFacility)
    # SkyPortal's POST /api/allocation: validate_altdata(altdata, instrument=instrument.to_dict()); the return value is stored
    stored = api.validate_altdata({"user_email": "pi@example.org", "user_password": KEY, "progid": PROGRAM}, instrument={"id": 3, "name": "GMOS-N"})
    assert stored == ALTDATA
    with pytest.raises(AltdataError, match=r"\$\.programid: must be a Gemini South program"):
        api.validate_altdata(ALTDATA, instrument={"id": 4, "name": "GMOS-S"})


# -- deployment settings ---------------------------------------------------------------------


def test_production_servers_by_default_and_test_servers_only_when_asked():
    assert GeminiFacility().servers == {Site.NORTH: "https://gnodb.gemini.edu:8443", Site.SOUTH: "https://gsodb.gemini.edu:8443"}
    assert GeminiFacility({"test_servers": True}).servers == {Site.NORTH: "https://gnodbtest.gemini.edu:8443", Site.SOUTH: "https://gsodbtest.gemini.edu:8443"}
    assert GeminiFacility({"north_url": "https://odb.example.org/"}).servers[Site.NORTH] == "https://odb.example.org"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"test_server": True}, "gemini: unknown setting(s) test_server"),
        ({"test_servers": "yes"}, "gemini: test_servers must be true or false"),
        ({"north_url": "http://odb.example.org"}, "the configured gemini north_url is refused"),
        ({"south_url": "https://10.0.0.5:8443"}, "the configured gemini south_url is refused"),
        ({"offset_stars": {"url": "https://sp.example.org/api/sources/offsets"}}, "offset_stars.url must be a URL with {obj_id}"),
        ({"offset_stars": {"url": "https://sp.example.org/api/sources/{obj_id}/offsets", "probe": "XWFS"}}, "offset_stars.probe must be one of"),
        ({"offset_stars": {"url": "https://sp.example.org/api/sources/{obj_id}/offsets", "token": "a b"}}, "offset_stars.token must be printable ASCII"),
        ({"offset_stars": {"url": "https://sp.example.org/{obj_id}", "token": "t", "token_file": "/x"}}, "give token or token_file, not both"),
        ({"offset_stars": {"url": "https://sp.example.org/{obj_id}", "token_file": "/nonexistent/token"}}, "offset_stars.token_file cannot be read"),
    ],
)
def test_unusable_settings_are_refused_when_the_facility_is_made(config, message):
    with pytest.raises(ConfigurationError) as caught:
        GeminiFacility(config)
    assert message in str(caught.value)


# -- the status table of docs/facilities/gemini.md -------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs" / "facilities" / "gemini.md"
OFFSETS = "https://sp.example.org/api/sources/ZTF26gem/offsets"


def _documented_statuses() -> set[str]:
    text = DOCS.read_text()
    section = text[text.index("(gemini-statuses)=") : text.index("## Differences from SkyPortal's own class")]
    return {re.sub(r"\d+", "N", span) for span in re.findall(r"`([^`]+)`", section)}


def _answers(*answers):
    def setup(mock):
        for answer in answers:
            if isinstance(answer, Exception):
                mock.post(NORTH, body=answer)
            else:
                status, body = answer
                mock.post(NORTH, status=status, body=body, headers={"Retry-After": "30"} if status == 429 else {})

    return setup


def _scenarios():
    import requests

    offsets = {"offset_stars": {"url": "https://sp.example.org/api/sources/{obj_id}/offsets", "token": "t0k"}}
    starlist = [{"name": "ZTF26gem", "ra": 150.0, "dec": -5.25}, {"name": "ZTF26gs1_o1", "ra": 150.01, "dec": -5.24, "mag": 14.2}]
    star = {"status": "success", "data": {"starlist_info": starlist}}
    return {
        "one": ({}, {}, {}, _answers((200, f"{PROGRAM}-23"))),
        "two": ({}, {"template_ids": "3,5"}, {}, _answers((200, f"{PROGRAM}-31"), (200, f"{PROGRAM}-32"))),
        "on hold": ({}, {"ready": False}, {}, _answers((200, f"{PROGRAM}-24"))),
        "guide star": ({}, {}, offsets, lambda m: (m.get(OFFSETS, json=star), _answers((200, f"{PROGRAM}-41"))(m))),
        "partial": (
            {}, {"template_ids": "3,5,6"}, {},
            _answers((200, f"{PROGRAM}-40"), (400, "template observation 5 is not On Hold"), (500, "Internal Server Error")),
        ),
        "rest unsent": ({}, {"template_ids": "3,5,6"}, {}, _answers((200, f"{PROGRAM}-50"), (429, ""))),
        "refused": ({}, {}, {}, _answers((400, "guide star not completely specified"))),
        "all refused": (
            {}, {"template_ids": "3,5"}, {},
            _answers((400, "no template observation 3 in GN-2026B-Q-101"), (400, "template observation 5 is not On Hold")),
        ),
        "not allowed": ({"template_ids": "1,2"}, {"template_ids": "3"}, {}, _answers()),
        "window": ({}, {"end_date": PAYLOAD["start_date"]}, {}, _answers()),
        "no star": ({}, {}, offsets, lambda m: m.get(OFFSETS, json={"status": "success", "data": {"starlist_info": []}})),
        "site": ({"programid": "GN-2026B-Q-101"}, {}, {}, _answers()),
        "credentials": ({}, {}, {}, _answers((401, "user key not valid for this program"))),
        "html 200": ({}, {}, {}, _answers((200, "<html><head><title>Login</title></head></html>"))),
        "lost": ({}, {}, {}, _answers(requests.ConnectionError("reset"))),
        "lost then unsent": ({}, {"template_ids": "3,5"}, {}, _answers(requests.ConnectionError("reset"))),
        "repeated": ({}, {"template_ids": "3,3"}, {}, _answers()),
        "refused then stop": ({}, {"template_ids": "3,5"}, {}, _answers((400, "exptime must be an integer from 1 to 1200"), (403, "Forbidden"))),
        "throttled": ({}, {}, {}, _answers((429, ""))),
        "unreachable": ({}, {}, {}, _answers(requests.ConnectTimeout("timed out"))),
        "no servlet": ({}, {}, {}, _answers((404, "Not Found"))),
        "offsets failed": ({}, {}, offsets, lambda m: m.get(OFFSETS, status=500, body="Internal Server Error")),
    }


@pytest.mark.parametrize("scenario", list(_scenarios()))
def test_every_status_is_documented(scenario):
    altdata_change, payload_change, config, setup = _scenarios()[scenario]
    instrument = "GMOS-S" if scenario == "site" else "GMOS-N"
    request = make_request(altdata={**ALTDATA, **altdata_change}, payload={**PAYLOAD, **payload_change}, instrument_name=instrument)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        setup(mock)
        status = run(request, GeminiFacility(config)).status
    assert re.sub(r"\d+", "N", status) in _documented_statuses(), f"{scenario}: {status!r} is not in docs/facilities/gemini.md"


def test_without_templates_named_the_allocations_only_template_is_triggered(rsps):
    rsps.post(NORTH, body=f"{PROGRAM}-80")
    payload = {k: v for k, v in PAYLOAD.items() if k != "template_ids"}
    outcome = run(make_request(altdata={**ALTDATA, "template_ids": "7"}, payload=payload))
    assert query(rsps.calls[0])["obsnum"] == "7" and outcome.status == f"submitted: Gemini North: template 7 triggered as {PROGRAM}-80"


@pytest.mark.parametrize(
    ("allowed", "rule"),
    [
        ({"template_ids": "1,2"}, "$.template_ids: must name the templates to trigger: this allocation allows several (1, 2)"),
        ({}, "$.template_ids: must name the templates to trigger: this allocation does not name its templates"),
    ],
)
def test_without_templates_named_an_allocation_of_several_or_any_is_refused_before_any_call(rsps, allowed, rule):
    payload = {k: v for k, v in PAYLOAD.items() if k != "template_ids"}
    outcome = run(make_request(altdata={**ALTDATA, **allowed}, payload=payload))
    assert outcome.status == f"rejected: invalid payload: {rule}" and len(rsps.calls) == 0


def test_the_offset_star_token_may_come_from_a_file(tmp_path):
    path = tmp_path / "offsets.token"
    path.write_text("file-token-0a1b\n")
    facility = GeminiFacility({"offset_stars": {"url": "https://sp.example.org/api/sources/{obj_id}/offsets", "token_file": str(path)}})
    assert facility.offset_stars.token == "file-token-0a1b" and "file-token" not in repr(facility.offset_stars)
