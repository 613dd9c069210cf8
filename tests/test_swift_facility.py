"""Swift: the exact remote calls of each request kind (the ToO form decoded field by field and
compared with what swifttools builds), every answer branch mapped to the status an observer sees,
the form's conditional rules, the secret kept out of every record, and the notification branch."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from urllib.parse import parse_qs

import pytest
import responses

from facility_apis.core.errors import PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.transport import Transport
from facility_apis.facilities.swift import SwiftFacility
from facility_apis.facilities.swift import too as too_module
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.slack import SlackWebhookEmulator

API = "https://www.swift.psu.edu/api/v2"
XRT = "https://www.swift.ac.uk/user_objects"
SECRET = "swift-shared-secret-5e1d9c"
ALTDATA = {"username": "swift_observer", "secret": SECRET, "XRT_UserID": "observer@example.org"}
TOO = {
    "request_type": "XRT/UVOT ToO",
    "urgency": "2",
    "obs_type": "Light Curve",
    "source_type": "Optical fast transient",
    "exposure_time": 2000,
    "exposure_counts": 3,
    "monitoring_freq": 1.5,
    "xrt_countrate": 0.01,
    "opt_mag": 18.5,
    "opt_filt": "r",
    "uvot_mode": "0x30ed - U+B+V+All UV",
    "uvot_just": "UV colours.",
    "immediate_objective": "Detect the counterpart.",
    "science_just": "A fast transient.",
    "exp_time_just": "2 ks reaches the flux.",
}
XRT_PAYLOAD = {
    "request_type": "XRT API", "T0": "2026-11-20 12:00:00", "detornot": True, "centMeth": "iterative", "detMeth": "simple", "poserr": 2, "binMeth": "counts",
}  # fmt: skip
DATA = {"request_type": "XRT/UVOT/BAT Data", "start_date": "2026-01-01", "end_date": "2026-06-30", "radius": 5}
TARGET = Target("ZTF26swift", 150.0, -20.0)


def make_request(payload=TOO, altdata=ALTDATA, remote_id=None, cursor=None) -> FollowupRequest:
    allocation = Allocation(7, dict(altdata), pi="A. Observer", instrument_id=3, instrument_name="UVOTXRT")
    return FollowupRequest(11, TARGET, allocation, dict(payload), requester="observer", remote_id=remote_id, cursor=cursor)


def run(operation, request, facility=None, egress=None):
    facility = facility or SwiftFacility(egress=egress) if egress else (facility or SwiftFacility())
    with Transport(backoff=0, retries=0, egress=egress) as transport:
        return perform(facility, operation, request, transport)


def login_ok(mock, cookie="session=abc123; Path=/; HttpOnly"):
    mock.add(responses.POST, f"{API}/login", json={"status": "Accepted"}, headers={"Set-Cookie": cookie})


def records(outcome) -> str:
    return json.dumps([t.as_dict() for t in outcome.transactions])


# -- the ToO: what is sent -------------------------------------------------------------------------


def test_the_too_is_a_login_then_the_form_swifttools_builds_decoded_field_by_field():
    with responses.RequestsMock() as mock:
        login_ok(mock)
        mock.add(responses.POST, f"{API}/swift/too", json={"status": "Accepted", "too_id": 20007})
        outcome = run("submit", make_request())
        login, post = mock.calls[0].request, mock.calls[1].request
    assert outcome.status == "submitted: Swift accepted ToO 20007" and outcome.remote_id == "20007" and outcome.poll_after == 1800
    assert json.loads(login.body) == {"username": "swift_observer", "password": SECRET}
    assert post.headers["Cookie"] == "session=abc123" and SECRET not in post.body and SECRET not in post.url
    form = {key: values[0] for key, values in parse_qs(post.body, keep_blank_values=True).items()}
    assert float(form.pop("ra")) == pytest.approx(150.0, abs=1e-5) and float(form.pop("dec")) == pytest.approx(-20.0, abs=1e-5)
    assert form == {
        "target_name": "ZTF26swift",
        "target_type": "Optical fast transient",
        "instrument": "XRT",
        "obs_type": "Light Curve",
        "urgency": "2",
        "opt_mag": "18.5",
        "opt_filt": "r",
        "xrt_countrate": "0.01",
        "uvot_mode": "0x30ed",
        "uvot_just": "UV colours.",
        "science_just": "A fast transient.",
        "immediate_objective": "Detect the counterpart.",
        "exp_time_just": "2 ks reaches the flux.",
        "exposure": "6000",
        "exp_time_per_visit": "2000.0",
        "num_of_visits": "3",
        "monitoring_freq": "1.5 days",
        "proposal": "false",
        "xrt_mode": "7",
        "tiling": "false",
        "username": "swift_observer",
        "debug": "false",
        "quiet": "true",
        "validate_only": "false",
    }


def test_the_form_is_swifttools_own_serialisation_of_the_too():
    facility, request = SwiftFacility(), make_request()
    request = FollowupRequest(request.id, TARGET, request.allocation, facility.validate_payload(TOO), requester="observer")
    built = too_module.build(request)
    expected = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in built._build_post_args().items() if v is not None}
    assert facility.prepare(request).data == expected
    assert "shared_secret" not in expected and SECRET not in json.dumps(expected)


@pytest.mark.parametrize(("days", "sent"), [(1, "1 days"), (1.5, "1.5 days"), (0.25, "0.25 days"), (0.05, "0.05 days"), (7, "7 days"), (2.3333, "2.3333 days")])
def test_a_non_integer_monitoring_cadence_is_sent_as_swift_reads_it(days, sent):
    request = make_request({**TOO, "monitoring_freq": days})
    call = SwiftFacility().prepare(FollowupRequest(1, TARGET, request.allocation, SwiftFacility().validate_payload(request.payload)))
    assert call.data["monitoring_freq"] == sent


def test_the_default_uvot_mode_needs_no_justification_and_sends_none():
    payload = {**TOO, "uvot_mode": "0x9999 - Default (Filter of the day)"}
    del payload["uvot_just"]
    facility = SwiftFacility()
    call = facility.prepare(FollowupRequest(1, TARGET, make_request().allocation, facility.validate_payload(payload)))
    assert call.data["uvot_mode"] == "0x9999" and call.data["uvot_just"] == ""  # swifttools' own empty default


# -- the form's rules, enforced in Python ---------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "path", "words"),
    [
        ({**{k: v for k, v in TOO.items() if k != "uvot_just"}}, "$.uvot_just", "is required"),
        ({**{k: v for k, v in TOO.items() if k != "opt_filt"}}, "$.opt_filt", "is required when opt_mag is given"),
        ({**TOO, "monitoring_freq": 0.01}, "$.monitoring_freq", "0.05"),
        ({**TOO, "exposure_time": 50}, "$.exposure_time", "100"),
        ({**TOO, "urgency": "0"}, "$.urgency", ""),
        ({**TOO, "exposure": 10}, "$.exposure", "not a field"),
        ({**DATA, "end_date": "2025-12-31"}, "$.end_date", "not be before"),
        ({**DATA, "start_date": "2026-02-30"}, "$.start_date", "real calendar date"),
        ({**XRT_PAYLOAD, "T0": "yesterday"}, "$.T0", "must be"),
        ({**XRT_PAYLOAD, "binMeth": "time"}, "$.binMeth", ""),
        ({"request_type": "Swift please"}, "$.request_type", ""),
    ],
)
def test_each_kind_of_request_is_checked_by_its_own_rules(payload, path, words):
    with pytest.raises(PayloadError) as caught:
        SwiftFacility().validate_payload(payload)
    assert any(e.path == path and words in e.message for e in caught.value.errors), caught.value.errors


def test_a_field_left_in_another_kind_is_accepted_and_not_sent():
    facility = SwiftFacility()
    payload = facility.validate_payload({**TOO, "start_date": "2026-01-01"})
    call = facility.prepare(FollowupRequest(1, TARGET, make_request().allocation, payload))
    assert "start_date" not in call.data and "2026-01-01" not in json.dumps(call.data)


def test_defaults_fill_the_chosen_kind_and_times_are_normalised():
    facility = SwiftFacility()
    assert facility.validate_payload({})["request_type"] == "XRT/UVOT/BAT Data"
    too = facility.validate_payload({"request_type": "XRT/UVOT ToO"})
    assert too["urgency"] == "3" and too["exposure_time"] == 4000 and too["monitoring_freq"] == 1 and "start_date" not in too
    xrt = facility.validate_payload({"request_type": "XRT API", "T0": "2026-11-20T07:30:00-05:00"})
    assert xrt["T0"] == "2026-11-20 12:30:00" and xrt["binMeth"] == "counts"


def test_the_allocation_username_and_secret_go_together_and_each_kind_asks_for_its_own():
    facility = SwiftFacility()
    assert facility.validate_altdata({}) == {}
    with pytest.raises(Exception, match=r"\$\.secret: is required when username is given"):
        facility.validate_altdata({"username": "u"})
    outcome = run("submit", make_request(altdata={"XRT_UserID": "observer@example.org"}))
    assert outcome.status == "failed to submit: invalid altdata: $.username: a ToO request needs the allocation's Swift ToO username and shared secret"
    outcome = run("submit", make_request(XRT_PAYLOAD, altdata={"username": "swift_observer", "secret": SECRET}))
    assert outcome.status.startswith("failed to submit: invalid altdata: $.XRT_UserID: an XRT product request needs")


# -- the ToO: every answer -------------------------------------------------------------------------

SUBMIT_ANSWERS = [
    ({"json": {"status": "Accepted", "too_id": 20011, "warnings": ["UVOT mode reviewed"]}}, "submitted: Swift accepted ToO 20011; warning: UVOT mode reviewed"),
    ({"json": {"status": {"status": "Accepted", "too_id": 20012, "errors": [], "warnings": []}}}, "submitted: Swift accepted ToO 20012"),
    ({"json": {"status": "Rejected", "errors": ["Target is too close to the Sun"]}}, "rejected: Target is too close to the Sun"),
    ({"status": 400, "json": {"status": {"status": "Rejected", "errors": ["Urgency 1 needs a GRB"]}}}, "rejected: Urgency 1 needs a GRB"),
    (
        {"status": 422, "json": {"detail": [{"loc": ["body", "uvot_mode"], "msg": "Unknown UVOT mode", "type": "value_error"}]}},
        "rejected: uvot_mode: Unknown UVOT mode",
    ),
    ({"status": 401, "json": {"detail": "Not authenticated"}}, "failed to submit: the Swift ToO API refused the credentials (HTTP 401: Not authenticated)"),
    (
        {"json": {"status": "Accepted"}},
        "failed: Swift accepted the ToO without naming its id; find it at https://www.swift.psu.edu/toop before submitting again",
    ),
    (
        {"json": {"status": "Queued"}},
        "failed: Swift answered 'Queued' to the ToO; check your requests at https://www.swift.psu.edu/toop before submitting again",
    ),
    (
        {"status": 200, "body": "<html><head><title>Maintenance</title></head></html>"},
        "failed: the Swift ToO API sent an HTML page (Maintenance) instead of JSON for the ToO (HTTP 200); "
        "the ToO may have reached Swift: check your requests at https://www.swift.psu.edu/toop before submitting again",
    ),
    (
        {"status": 500, "body": "Internal Server Error"},
        "failed: the Swift ToO API answered HTTP 500: Internal Server Error; "
        "the ToO may have reached Swift: check your requests at https://www.swift.psu.edu/toop before submitting again",
    ),
]


@pytest.mark.parametrize(("answer", "status"), SUBMIT_ANSWERS)
def test_every_too_answer_is_read_never_assumed(answer, status):
    with responses.RequestsMock() as mock:
        login_ok(mock)
        mock.add(responses.POST, f"{API}/swift/too", **answer)
        outcome = run("submit", make_request())
    assert outcome.status == status
    assert outcome.poll_after == (1800 if outcome.state.value == "submitted" else None)
    assert SECRET not in records(outcome) + repr(outcome)


def test_a_refused_login_stops_before_the_too_and_says_so():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{API}/login", status=401, json={"detail": "Invalid username or password"})
        outcome = run("submit", make_request())
        assert len(mock.calls) == 1
    assert outcome.status == "failed to submit: the Swift ToO API refused the credentials (HTTP 401: Invalid username or password)"


def test_the_secret_is_masked_in_the_login_record_and_cookies_are_masked_whole(caplog):
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as mock, Transport(backoff=0, retries=0) as transport:
        login_ok(mock, cookie="session=cookie-value-9a8b; Path=/")
        mock.add(responses.POST, f"{API}/swift/too", json={"status": "Accepted", "too_id": 1})
        outcome = perform(SwiftFacility(), "submit", make_request(), transport)
        assert len(transport.session.cookies) == 0, "the session never outlives the operation"
    login, post = outcome.transactions
    assert json.loads(login.request_body) == {"username": "swift_observer", "password": "***"}
    assert login.response_headers["Set-Cookie"] == "***" and post.request_headers["Cookie"] == "***"
    text = records(outcome) + caplog.text + repr(outcome)
    assert SECRET not in text and "cookie-value-9a8b" not in text


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"json": {"status": "Validated", "warnings": ["UVOT mode reviewed"]}}, "pending submission: Swift would accept the ToO; warning: UVOT mode reviewed"),
        (
            {"status": 422, "json": {"detail": [{"loc": ["body"], "msg": "Value error, Must specify UVOT justification"}]}},
            "rejected: Value error, Must specify UVOT justification",
        ),
        ({"json": {"status": "Accepted", "too_id": 5}}, "failed to submit: the Swift ToO API answered 'Accepted' to a validation"),
    ],
)
def test_remote_validation_asks_the_too_api_with_validate_only(answer, status):
    with responses.RequestsMock() as mock:
        login_ok(mock)
        mock.add(responses.POST, f"{API}/swift/too", **answer)
        outcome = run("remote_validate", make_request())
        sent = parse_qs(mock.calls[1].request.body)
    assert sent["validate_only"] == ["true"] and outcome.status == status


def window(duration, asflown):
    return {"begin": "2026-12-01T00:00:00", "end": "2026-12-01T00:30:00", "duration": duration, "asflown": asflown}


@pytest.mark.parametrize(
    ("entry", "status", "polled"),
    [
        ({"decision": None, "done": 0}, "submitted: ToO 20011 awaits the Swift team's decision", True),
        ({"decision": "Approved", "done": 0, "calendar": {"entries": [window(2000, 0), window(2000, 0)]}},
         "queued: the Swift team approved ToO 20011: 2 calendar windows, 0.0 ks observed of 4.0 ks", True),
        ({"decision": "Approved", "done": 0, "calendar": {"entries": [window(2000, 1900), window(2000, 0)]}},
         "running: the Swift team approved ToO 20011: 2 calendar windows, 1.9 ks observed of 4.0 ks", True),
        ({"decision": "Approved", "done": 1, "calendar": {"entries": [window(2000, 1900), window(2000, 2100)]}},
         "complete: ToO 20011 done: 4.0 ks observed of 4.0 ks; data at https://www.swift.psu.edu/toop", False),
        ({"decision": "Approved", "done": 1, "calendar": {"entries": []}},
         "complete: no data: ToO 20011 done: 0.0 ks observed; data at https://www.swift.psu.edu/toop", False),
        ({"decision": "Rejected", "done": 0}, "canceled: the Swift team declined ToO 20011 (Rejected)", False),
    ],
)  # fmt: skip
def test_an_accepted_too_is_followed_through_the_swift_teams_decision_and_calendar(entry, status, polled):
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{API}/swift/too", json={"entries": [{"too_id": 20011, **entry}], "status": "Accepted"})
        outcome = run("get", make_request(remote_id="20011"))
        assert mock.calls[0].request.url == f"{API}/swift/too?too_id=20011" and "Cookie" not in mock.calls[0].request.headers
    assert outcome.status == status and (outcome.poll_after == 1800) == polled


def test_a_too_missing_from_swifts_list_is_asked_about_again():
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{API}/swift/too", json={"entries": [], "status": "Accepted"})
        outcome = run("get", make_request(remote_id="20011"))
    assert outcome.status == "failed: the Swift ToO API did not list ToO 20011" and outcome.poll_after == 60


def test_deleting_an_accepted_too_says_swift_was_not_told():
    deleted = run("delete", make_request(remote_id="20011"))
    assert deleted.status.startswith("deleted: deleted here only: the Swift ToO API cannot withdraw ToO 20011")


def test_without_swifttools_the_observer_reads_what_the_deployment_must_install(monkeypatch):
    real = too_module.importlib.import_module

    def missing(name, *args):
        if name.startswith("swifttools"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(too_module.importlib, "import_module", missing)
    assert run("submit", make_request()).status == "failed to submit: Swift ToO requests need the swifttools package: install facility-apis[swift]"


# -- XRT products ----------------------------------------------------------------------------------


def product(code, text):
    return {"statusCode": code, "statusText": text, "progress": {"GotProgress": 0}}


def test_the_xrt_job_is_what_swifttools_builds_and_its_answer_gives_the_id_and_products_url():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{XRT}/run_userobject.php", json={"OK": 1, "JobID": 4321, "URL": f"{XRT}/tprods/USERPROD_4321", "jobPars": {}})
        outcome = run("submit", make_request(XRT_PAYLOAD))
        body = json.loads(mock.calls[0].request.body)
    assert outcome.status == "submitted: UKSSDC XRT products job 4321" and outcome.remote_id == "4321"
    assert outcome.cursor == f"{XRT}/tprods/USERPROD_4321" and outcome.poll_after == 120
    met = (datetime.fromisoformat("2026-11-20T12:00:00") - datetime(2001, 1, 1)).total_seconds()
    assert body["Tstart"] == met and body["UserID"] == "observer@example.org" and body["api_name"] == "xrt_prods"
    assert (body["name"], body["RA"], body["Dec"], body["cent"], body["poserr"]) == ("ZTF26swift", 150.0, -20.0, 1, 2.0)
    assert (body["centMeth"], body["detMeth"], body["binMeth"], body["pccounts"], body["wtcounts"]) == ("iterative", "simple", "counts", 20, 30)
    assert all(body[flag] == 1 for flag in ("lc", "spec", "dopsf", "doenh", "doxastrom"))


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (
            {"json": {"OK": 0, "ERROR": "Your request could not be processed.", "listErr": [{"label": "Missing parameters:", "list": ["poserr"]}]}},
            "rejected: Your request could not be processed.; Missing parameters: poserr",
        ),
        ({"json": {"OK": 0, "ERROR": "Your UserID is not registered."}}, "rejected: Your UserID is not registered."),
        (
            {"json": {"OK": 1, "JobID": 9, "URL": "https://elsewhere.example.org/p/9", "jobPars": {}}},
            "failed: the UKSSDC accepted the XRT product request but the UKSSDC XRT products service named no products URL on its own site; "
            "check your jobs there before submitting again",
        ),
        (
            {"json": {"JobID": 9}},
            "failed: the UKSSDC XRT products service answered without OK for the product request; "
            "the job may have been created: check your jobs at the UKSSDC before submitting again",
        ),
        (
            {"status": 503, "body": ""},
            "failed: www.swift.ac.uk answered HTTP 503 (temporarily unavailable); the request may have reached the facility and was not sent again",
        ),
    ],
)
def test_every_xrt_submission_answer(answer, status):
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{XRT}/run_userobject.php", **answer)
        assert run("submit", make_request(XRT_PAYLOAD)).status == status


XRT_JOB = {"remote_id": "4321", "cursor": f"{XRT}/tprods/USERPROD_4321"}
ALL_DONE = {short: product(4, "Complete") for short in ("lc", "spec", "psf", "enh", "xastrom")}


@pytest.mark.parametrize(
    ("answer", "state", "status"),
    [
        (
            {**ALL_DONE, "lc": product(3, "Running"), "spec": product(2, "Queued")},
            "running",
            "running: light curve: Running; spectrum: Queued; standard position: Complete",
        ),
        ({**ALL_DONE, "lc": product(1, "Requested"), "xastrom": product(5, "Waiting for PSF position")}, "queued", "queued: light curve: Requested"),
        (ALL_DONE, "completed", "complete: 5 products (light curve, spectrum, standard position, enhanced position, astrometric position)"),
        (
            {**ALL_DONE, "spec": product(-3, "Failed")},
            "completed",
            "complete: 4 products (light curve, standard position, enhanced position, astrometric position); not built: spectrum: Failed",
        ),
        ({s: product(-4, "Cancelled") for s in ALL_DONE}, "no_data", "complete: no data: no product could be built: light curve: Cancelled"),
    ],
)
def test_xrt_products_are_followed_until_every_product_has_ended(answer, state, status):
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{XRT}/checkProductStatus.php", json={"OK": 1, **answer})
        outcome = run("get", make_request(XRT_PAYLOAD, **XRT_JOB))
        sent = json.loads(mock.calls[0].request.body)
    assert sent["JobID"] == "4321" and sent["what"] == "lc,spec,psf,enh,xastrom" and sent["UserID"] == "observer@example.org"
    assert outcome.state.value == state and outcome.status.startswith(status)
    assert (outcome.poll_after is not None) == (state in ("running", "queued"))
    built = [short for short, entry in answer.items() if entry["statusCode"] == 4]
    assert [f.url for f in outcome.frames] == [f"{XRT}/tprods/USERPROD_4321/{short}.tar.gz" for short in built]


def test_xrt_status_trouble_is_retried_and_a_refusal_is_reported():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{XRT}/checkProductStatus.php", json={"OK": 1, "lc": product(4, "Complete")})
        missing = run("get", make_request(XRT_PAYLOAD, **XRT_JOB))
        mock.add(responses.POST, f"{XRT}/checkProductStatus.php", json={"OK": 0, "ERROR": "No job found with that JobID for your UserID."})
        refused = run("get", make_request(XRT_PAYLOAD, **XRT_JOB))
    assert missing.status == "failed: the UKSSDC XRT products service gave no status for the spectrum" and missing.poll_after == 60
    assert refused.status == "failed: Swift refused the get: No job found with that JobID for your UserID." and refused.poll_after is None


def test_an_xrt_job_is_canceled_at_the_ukssdc():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{XRT}/canceljob.php", json={"OK": 1, "status": {}, "statusCodes": {}})
        outcome = run("delete", make_request(XRT_PAYLOAD, **XRT_JOB))
        assert json.loads(mock.calls[0].request.body)["what"] == "lc,spec,psf,enh,xastrom"
    assert outcome.status == "deleted: UKSSDC XRT products job 4321 canceled"


# -- archive observations --------------------------------------------------------------------------


def snapshot(obs_id, begin, end, settle=None):
    return {"obs_id": obs_id, "begin": begin, "settle": settle or begin, "end": end, "target_name": "SN", "ra": 150.0, "dec": -20.0}


def test_archive_observations_are_counted_and_listed_with_their_archive_directories():
    entries = [
        snapshot("00012345002", "2026-03-05T01:00:00", "2026-03-05T01:20:00"),
        snapshot("00012345001", "2026-03-02T10:00:00", "2026-03-02T10:15:00", "2026-03-02T10:01:00"),
        snapshot("00012345001", "2026-03-02T11:36:00", "2026-03-02T11:50:00", "2026-03-02T11:37:00"),
    ]
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{API}/swift/obsquery", json={"entries": entries, "status": "Accepted"})
        outcome = run("submit", make_request(DATA, altdata={}))
        query = parse_qs(mock.calls[0].request.url.split("?", 1)[1])
    assert {k: v[0] for k, v in query.items()} == {
        "ra": "150.0", "dec": "-20.0", "radius": str(5 / 60), "begin": "2026-01-01 00:00:00", "end": "2026-07-01 00:00:00",
    }  # fmt: skip
    assert outcome.status == (
        "complete: 2 Swift observations within 5 arcmin from 2026-01-01 to 2026-06-30: 00012345001 (2026-03-02, 1.6 ks), 00012345002 (2026-03-05, 1.2 ks)"
    )
    assert [(f.name, f.url) for f in outcome.frames] == [
        ("00012345001", "https://heasarc.gsfc.nasa.gov/FTP/swift/data/obs/2026_03/00012345001/"),
        ("00012345002", "https://heasarc.gsfc.nasa.gov/FTP/swift/data/obs/2026_03/00012345002/"),
    ]


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"json": {"entries": [], "status": "Accepted"}}, "complete: no data: no Swift observation within 5 arcmin from 2026-01-01 to 2026-06-30"),
        ({"json": {"status": "Accepted"}}, "failed to submit: the Swift ToO API answered the observation query without entries"),
        ({"json": {"entries": [{"obs_id": None}]}}, "failed to submit: the Swift ToO API listed an observation without a readable obs_id"),
        ({"json": {"status": {"status": "Rejected", "errors": ["radius too large"]}}}, "rejected: radius too large"),
    ],
)
def test_every_archive_answer(answer, status):
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{API}/swift/obsquery", **answer)
        assert run("submit", make_request(DATA, altdata={})).status == status


def test_more_than_ten_observations_are_counted_and_the_first_ten_named():
    entries = [snapshot(f"000123450{n:02d}", f"2026-02-{n + 1:02d}T00:00:00", f"2026-02-{n + 1:02d}T00:10:00") for n in range(12)]
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{API}/swift/obsquery", json={"entries": entries})
        outcome = run("submit", make_request(DATA, altdata={}))
    assert outcome.status.startswith("complete: 12 Swift observations") and outcome.status.endswith(", and 2 more") and len(outcome.frames) == 12


# -- deployment settings and the notification branch -----------------------------------------------


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"too_api_url": "http://swift.example.org/api"}, "too_api_url is refused"),
        ({"xrt_url": "ftp://www.swift.ac.uk"}, "xrt_url is refused"),
        ({"poll_interval": 0}, "poll_interval"),
    ],
)
def test_unusable_deployment_settings_are_refused(config, words):
    with pytest.raises(Exception, match=words):
        SwiftFacility(config)


def test_an_accepted_too_is_announced_on_slack_and_a_failed_announcement_keeps_the_too():
    token = "FAKEswiftSlackToken"
    altdata = {**ALTDATA, "notification_type": "slack", "slack_workspace": "TFAKES", "slack_channel": "BFAKES", "slack_token": token}
    with SlackWebhookEmulator() as slack, responses.RequestsMock() as mock:
        mock.add_passthru(slack.url)
        slack.add_hook("TFAKES", "BFAKES", token)
        egress = loopback_egress(slack)
        facility = SwiftFacility({"notify": {"slack_base_url": slack.url}}, egress=egress)
        login_ok(mock)
        mock.add(responses.POST, f"{API}/swift/too", json={"status": "Accepted", "too_id": 20020})
        announced = run("submit", make_request(altdata=altdata), facility, egress)
        slack.set_state("TFAKES", "BFAKES", "archived")
        login_ok(mock)
        mock.add(responses.POST, f"{API}/swift/too", json={"status": "Accepted", "too_id": 20021})
        unannounced = run("submit", make_request(altdata=altdata), facility, egress)
        posts = slack.posts
    assert announced.status == "submitted: Swift accepted ToO 20020; posted to Slack"
    assert unannounced.state.value == "submitted" and unannounced.remote_id == "20021" and "the notification failed" in unannounced.status
    assert len(posts) == 1 and "ZTF26swift" in json.dumps(posts[0].blocks)
    assert token not in records(announced) + records(unannounced) and SECRET not in records(announced)


RACE = r"""
import threading
from facility_apis.facilities.swift import too, xrt
errors = []
calls = [lambda: too.swift_too_module("toorequest"), lambda: too.swift_too_module("obsquery"), xrt.prods_module] * 3
def first_use(call):
    try:
        call()
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first_use, args=(call,)) for call in calls]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors)
"""


def test_worker_threads_reaching_swifttools_together_all_get_it():
    """A gateway's worker threads first import swifttools at the same moment; unserialised, about
    one fresh interpreter in four deadlocked or saw a half-initialised module (found end to end:
    'internal error in swift.submit: _DeadlockError'). Each run is a fresh interpreter, since
    this one has swifttools imported already; a few runs catch a regression most of the time."""
    import subprocess
    import sys

    for _ in range(3):
        run_ = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=120, check=True)
        assert run_.stdout.strip() == "[]", run_.stdout
