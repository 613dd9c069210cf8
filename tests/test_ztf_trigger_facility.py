"""ZTF triggering (Kowalski): the exact remote call, every answer branch to the status an observer
sees, and no token in any record; against the Kowalski emulator, with ``responses`` for answers
the emulator never gives."""

from __future__ import annotations

import dataclasses
import json

import pytest
import responses

from facility_apis.core.errors import AltdataError, PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.transport import Transport
from facility_apis.facilities.ztf_trigger import ZTFTriggerFacility
from facility_apis.facilities.ztf_trigger.grid import primary_fields
from facility_apis.testing.kowalski import KowalskiEmulator
from facility_apis.testing.network import loopback_egress

TOKEN = "kowalski-admin-token-3f9a"
USER_TOKEN = "kowalski-user-token-77c1"
IPAC = {"ipac_http_user": "ztffps", "ipac_http_password": "shared-pw", "ipac_email": "obs@example.org", "ipac_userpass": "acct-pw"}
TARGET = Target("ZTF26trig", 210.5, 12.25)
PAYLOAD = {
    "start_date": "2036-12-10", "end_date": "2036-12-11", "filters": ["ztfg", "ztfr"], "field_ids": [528, 1575], "queue_name": "q1", "exposure_time": 120,
}  # fmt: skip


@pytest.fixture
def kowalski():
    with KowalskiEmulator({TOKEN: "admin", USER_TOKEN: "someone"}, expired=("kowalski-old-token",)) as emulator:
        yield emulator


def request_for(payload=None, token=TOKEN, *, pi="M. Kasliwal", requester="observer", remote_id=None):
    allocation = Allocation(5, {"access_token": token}, pi=pi)
    return FollowupRequest(11, TARGET, allocation, dict(PAYLOAD if payload is None else payload), requester=requester, remote_id=remote_id)


def run(facility, operation, request, emulator=None):
    egress = loopback_egress(emulator) if emulator else None
    with Transport(backoff=0, retries=2, egress=egress) as transport:
        return perform(facility, operation, request, transport)


def facility_on(emulator):
    return ZTFTriggerFacility({"base_url": emulator.url}, egress=loopback_egress(emulator))


def assert_no_token(outcome, token=TOKEN):
    text = json.dumps([t.as_dict() for t in outcome.transactions]) + outcome.status + repr(outcome)
    assert token not in text


# -- the call ----------------------------------------------------------------------------------


def test_prepare_builds_kowalskis_put_exactly():
    facility = ZTFTriggerFacility()
    call = facility.prepare(request_for(facility.validate_payload(PAYLOAD, TARGET)))
    assert (call.method, call.url) == ("PUT", "https://kowalski.caltech.edu/api/triggers/ztf")
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    centres = {528: (208.15022, 11.75), 1575: (213.351, 15.35)}  # ztffields' grid
    targets = [
        {"request_id": n, "program_id": 2, "field_id": field, "ra": centres[field][0], "dec": centres[field][1], "filter_id": band,
         "exposure_time": 120.0, "program_pi": "M. Kasliwal/observer", "subprogram_name": "ToO_GRB"}
        for n, (band, field) in enumerate([(1, 528), (1, 1575), (2, 528), (2, 1575)], 1)
    ]  # fmt: skip
    assert call.json == {"targets": targets, "queue_name": "ToO_q1", "validity_window_mjd": [65037.0, 65039.0], "queue_type": "list", "user": "observer"}
    assert isinstance(call.json["targets"][0]["exposure_time"], float)


def test_empty_fields_come_from_the_grid_and_the_queue_name_from_the_request():
    facility = ZTFTriggerFacility()
    payload = facility.validate_payload({"program_id": "Caltech", "subprogram_name": "GW"}, TARGET)
    assert payload["field_ids"] == primary_fields(TARGET.ra, TARGET.dec) == [528] and "queue_name" not in payload
    assert payload["start_date"] < payload["end_date"]  # today and tomorrow, computed now
    body = facility.prepare(request_for(payload)).json
    assert body["queue_name"] == "ToO_ZTF26trig_11"  # the same for every attempt of request 11
    assert {t["program_id"] for t in body["targets"]} == {3} and {t["subprogram_name"] for t in body["targets"]} == {"ToO_GW"}
    assert facility.validate_payload(payload, TARGET) == payload  # filling twice changes nothing
    without_id = dataclasses.replace(request_for(payload), id=None)
    assert facility.prepare(without_id).json["queue_name"].startswith("ToO_ZTF26trig_2")  # the UTC time
    # Through the gateway: SkyPortal's id, which a gateway whose database was recreated does not reuse.
    forwarded = dataclasses.replace(request_for(payload), id=3, followup_request_id=50)
    assert facility.prepare(forwarded).json["queue_name"] == "ToO_ZTF26trig_50"


@pytest.mark.parametrize(
    ("payload", "path", "rule"),
    [
        ({"field_ids": [699, 5000]}, "$.field_ids", "5000 is not a ZTF field id"),
        ({"start_date": "2036-12-12", "end_date": "2036-12-11"}, "$.end_date", "must not be before start_date"),
        ({"start_date": "2026-01-01", "end_date": "2026-01-02"}, "$.end_date", "must not be in the past"),
        ({"start_date": "2036-12-01", "end_date": "2037-02-01"}, "$.end_date", "at most 30 days"),
        ({"exposure_time": "300"}, "$.exposure_time", "number"),
        ({"filters": ["ztfg", "ztfg"]}, "$.filters", "must not repeat an item"),
        ({"queue_name": "has space"}, "$.queue_name", "must be 1 to 60 letters, digits, '_', '.' and '-'"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(payload, path, rule):
    with pytest.raises(PayloadError) as caught:
        ZTFTriggerFacility().validate_payload({**PAYLOAD, **payload}, TARGET)
    assert any(e.path == path and rule in e.message for e in caught.value.errors), caught.value.errors


def test_a_source_outside_the_primary_grid_needs_field_ids():
    with pytest.raises(PayloadError, match=r"\$\.field_ids: no field of ZTF's primary grid holds the source"):
        ZTFTriggerFacility().validate_payload({}, Target("south", 10.0, -89.0))


def test_given_fields_must_hold_the_source_or_ztf_observes_the_wrong_sky():
    """Fields 699 and 700 (centred at Dec +40.55) for a source at Dec +12.25: refused, naming the
    fields that hold it; one of them right and one wrong is refused too (found by a newcomer)."""
    with pytest.raises(PayloadError) as caught:
        ZTFTriggerFacility().validate_payload({**PAYLOAD, "field_ids": [699, 700]}, TARGET)
    expected = "699, 700 do not hold the source (RA 210.50000, Dec +12.25000): the fields holding it are 528, 1575"
    assert [(e.path, e.message) for e in caught.value.errors] == [("$.field_ids", expected)]
    with pytest.raises(PayloadError, match=r"\$\.field_ids: 700 does not hold the source"):
        ZTFTriggerFacility().validate_payload({**PAYLOAD, "field_ids": [528, 700]}, TARGET)
    assert ZTFTriggerFacility().validate_payload({**PAYLOAD, "field_ids": [1575]}, TARGET)["field_ids"] == [1575]


@pytest.mark.parametrize(("pi", "requester", "program_pi", "user"), [("PI", "obs", "PI/obs", "obs"), (None, "obs", "obs", "obs"), ("PI", None, "PI", "PI")])
def test_the_pi_comes_from_the_allocation_or_the_requester(pi, requester, program_pi, user):
    facility = ZTFTriggerFacility()
    body = facility.prepare(request_for(facility.validate_payload(PAYLOAD, TARGET), pi=pi, requester=requester)).json
    assert {t["program_pi"] for t in body["targets"]} == {program_pi} and body["user"] == user


def test_without_pi_or_requester_the_request_is_rejected_before_any_call(kowalski):
    outcome = run(facility_on(kowalski), "submit", request_for(pi=None, requester=None), kowalski)
    assert outcome.status == "rejected: invalid payload: $: ZTF triggering needs the allocation's PI or the requester's name (Kowalski's program_pi and user)"
    assert kowalski.requests == []


def test_the_instrument_narrows_the_filter_choices():
    facility = ZTFTriggerFacility()
    form = facility.instrument_form(facility.request_schema(), name="ZTF", filters=("ztfr", "ztfi", "sdssu"))
    assert form["properties"]["filters"]["items"]["enum"] == ["ztfr", "ztfi"] and form["properties"]["filters"]["default"] == ["ztfr", "ztfi"]


# -- altdata: alone or shared with ZTF forced photometry ------------------------------------------


def test_altdata_the_token_alone_or_with_all_four_ipac_fields():
    facility = ZTFTriggerFacility()
    assert facility.validate_altdata({"access_token": TOKEN}) == {"access_token": TOKEN}
    assert facility.validate_altdata({"access_token": TOKEN, **IPAC}) == {"access_token": TOKEN, **IPAC}
    with pytest.raises(AltdataError) as caught:
        facility.validate_altdata({"access_token": TOKEN, "ipac_email": "obs@example.org"})
    assert {e.path for e in caught.value.errors} == {"$.ipac_http_user", "$.ipac_http_password", "$.ipac_userpass"}
    with pytest.raises(AltdataError, match=r"\$\.access_token: is required"):
        facility.validate_altdata(IPAC)
    assert set(ZTFTriggerFacility.secret_fields()) == {"access_token", "ipac_http_password", "ipac_email", "ipac_userpass"}


# -- answers -----------------------------------------------------------------------------------


def test_an_accepted_queue_is_submitted_with_its_name_as_remote_id(kowalski):
    outcome = run(facility_on(kowalski), "submit", request_for(), kowalski)
    assert outcome.status == "submitted: ZTF queue ToO_q1 accepted by Kowalski: 4 exposures of 120 s (ztfg, ztfr on fields 528, 1575), MJD 65037 to 65039"
    assert outcome.remote_id == "ToO_q1" and outcome.poll_after is None
    (sent,) = kowalski.requests
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}" and json.loads(sent.body)["queue_name"] == "ToO_q1"
    assert [t.request_headers["Authorization"] for t in outcome.transactions] == ["***"]
    assert_no_token(outcome)


def test_a_lost_answer_is_sent_again_and_the_held_queue_recognised(kowalski):
    kowalski.lose_answer_next()
    outcome = run(facility_on(kowalski), "submit", request_for(), kowalski)
    assert outcome.status == (
        "submitted: ZTF queue ToO_q1 was already in ZTF's scheduler with these exposures (an earlier attempt of this request reached Kowalski)"
    )
    assert [r.method for r in kowalski.requests] == ["PUT", "PUT", "GET"] and list(kowalski.queues) == ["ToO_q1"]


def test_a_name_taken_by_another_queue_is_rejected(kowalski):
    run(facility_on(kowalski), "submit", request_for(), kowalski)
    outcome = run(facility_on(kowalski), "submit", request_for({**PAYLOAD, "filters": ["ztfi"]}), kowalski)
    assert outcome.status == "rejected: Kowalski already holds a queue named ToO_q1 with other exposures: choose another queue name"
    assert json.loads(kowalski.queues["ToO_q1"]["queue"])[0]["filter_id"] == 1  # the first queue is untouched


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("unknown-token", "failed to submit: Kowalski refused the access token (token is invalid)"),
        ("kowalski-old-token", "failed to submit: Kowalski refused the access token (token has expired)"),
        (USER_TOKEN, "failed to submit: Kowalski refused the credentials (HTTP 403: Forbidden)"),
    ],
)
def test_refused_tokens_fail_without_a_retry(kowalski, token, status):
    outcome = run(facility_on(kowalski), "submit", request_for(token=token), kowalski)
    assert outcome.status == status and outcome.poll_after is None
    assert_no_token(outcome, token)


def test_the_schedulers_refusal_is_a_rejection(kowalski):
    kowalski.reject_next("fields 699 and 700 are below the horizon all night")
    outcome = run(facility_on(kowalski), "submit", request_for(), kowalski)
    assert outcome.status == "rejected: ZTF trigger attempt rejected: fields 699 and 700 are below the horizon all night"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, '{"status": "error", "message": "odd"}', "failed to submit: Kowalski answered HTTP 200 without success for the trigger: odd"),
        (200, "<html><title>Down</title></html>", "failed to submit: Kowalski sent an HTML page (Down) instead of JSON for the trigger (HTTP 200)"),
        (200, "", "failed to submit: Kowalski sent an empty body instead of JSON for the trigger (HTTP 200)"),
        (500, "Internal Server Error", "failed to submit: Kowalski answered HTTP 500: Internal Server Error"),
        (401, '{"status": "error", "message": "Unauthorized"}', "failed to submit: Kowalski refused the credentials (HTTP 401: Unauthorized)"),
    ],
)
def test_other_answers_end_in_a_clear_failure(status, body, expected):
    with responses.RequestsMock() as mock:
        mock.add("PUT", "https://kowalski.caltech.edu/api/triggers/ztf", status=status, body=body)
        outcome = run(ZTFTriggerFacility(), "submit", request_for())
    assert outcome.status == expected and outcome.remote_id is None


def test_remote_validation_uses_the_test_endpoint_and_queues_nothing(kowalski):
    outcome = run(facility_on(kowalski), "remote_validate", request_for(), kowalski)
    assert outcome.status.startswith("pending submission: Kowalski's test endpoint accepted the form of queue ToO_q1 (4 exposures")
    assert [r.path for r in kowalski.requests] == ["/api/triggers/ztf.test"] and kowalski.queues == {}


def test_find_follows_a_queue_that_arrived_and_resubmits_one_that_did_not(kowalski):
    facility = facility_on(kowalski)
    assert run(facility, "find", request_for(), kowalski).status == "pending submission: ZTF queue ToO_q1 is not in ZTF's scheduler: submitting it again"
    run(facility, "submit", request_for(), kowalski)
    found = run(facility, "find", request_for(), kowalski)
    assert found.state.value == "submitted" and found.remote_id == "ToO_q1"


def test_delete_removes_a_held_queue_and_knows_a_gone_one(kowalski):
    facility = facility_on(kowalski)
    run(facility, "submit", request_for(), kowalski)
    held = request_for(remote_id="ToO_q1")
    assert run(facility, "delete", held, kowalski).status == "deleted: queue ToO_q1 removed from ZTF's scheduler"
    deletes = [r for r in kowalski.requests if r.method == "DELETE"]
    assert [json.loads(r.body) for r in deletes] == [{"queue_name": "ToO_q1", "user": "observer"}] and kowalski.queues == {}
    gone = run(facility, "delete", held, kowalski)
    assert gone.status == "deleted: queue ToO_q1 was no longer in ZTF's scheduler (its window ended, or it was removed)"
    assert len([r for r in kowalski.requests if r.method == "DELETE"]) == 1
    assert run(facility, "delete", request_for(), kowalski).status == "deleted: nothing had been sent to ZTF"


def test_a_refused_delete_keeps_the_request(kowalski):
    facility = facility_on(kowalski)
    run(facility, "submit", request_for(), kowalski)
    kowalski.faults.add("status", method="DELETE", status=400, body={"status": "error", "message": "ZTF queue delete attempt rejected: scheduler busy"})
    outcome = run(facility, "delete", request_for(remote_id="ToO_q1"), kowalski)
    assert outcome.status == "failed: ZTF triggering (Kowalski) refused the delete: ZTF queue delete attempt rejected: scheduler busy"
    assert "ToO_q1" in kowalski.queues


def test_a_queue_list_that_is_not_a_list_fails_the_lookup(kowalski):
    with responses.RequestsMock() as mock:
        mock.add("GET", "https://kowalski.caltech.edu/api/triggers/ztf", json={"status": "success", "message": "retrieved", "data": {"queue_name": ["x"]}})
        outcome = run(ZTFTriggerFacility(), "find", request_for())
    assert outcome.status == "failed to submit: Kowalski's queue list is not a list of queues" and outcome.poll_after == 60


def test_the_dry_run_shows_the_put_with_the_token_masked(capsys, tmp_path):
    from facility_apis.cli import main

    (tmp_path / "alt.json").write_text(json.dumps({"access_token": TOKEN}))
    (tmp_path / "payload.json").write_text(json.dumps(PAYLOAD))
    args = ["submit", "ztf_trigger", "--ra", "210.5", "--dec", "12.25", "--target-id", "ZTF26trig", "--altdata", str(tmp_path / "alt.json")]
    code = main([*args, "--payload", str(tmp_path / "payload.json"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and "PUT https://kowalski.caltech.edu/api/triggers/ztf" in out and '"queue_name": "ToO_q1"' in out
    assert TOKEN not in out and "Authorization: ***" in out


def test_a_configured_plain_http_kowalski_is_refused():
    from facility_apis.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="credentials may travel only over https"):
        ZTFTriggerFacility({"base_url": "http://kowalski.example.org"})


def test_secrets_never_reach_a_record_even_with_ipac_fields(kowalski):
    request = dataclasses.replace(request_for(), allocation=Allocation(5, {"access_token": TOKEN, **IPAC}, pi="PI"))
    outcome = run(facility_on(kowalski), "submit", request, kowalski)
    text = json.dumps([t.as_dict() for t in outcome.transactions]) + outcome.status
    assert outcome.state.value == "submitted" and all(secret not in text for secret in (TOKEN, "shared-pw", "obs@example.org", "acct-pw"))
