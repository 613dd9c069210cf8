"""WINTER and SPRING on the observatory's ToO API: the exact post, every answer to the status an
observer sees (a validate-only answer reads as validated, never submitted), the delete by schedule
name, the program key masked in every stored query string and body, and the optional Slack and
e-mail notification."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime

import pytest
import responses

from facility_apis.core.errors import AltdataError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.transport import Transport
from facility_apis.facilities.winter import SPRINGFacility, WINTERFacility
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.slack import SlackWebhookEmulator
from facility_apis.testing.smtp import SMTPEmulator
from facility_apis.testing.winter import WinterToOEmulator

KEY = "program-key-5e1b77"
PASSWORD = "winter-pw-a0c3"
ALTDATA = {"program_name": "2026A000", "program_api_key": KEY, "username": "observer", "password": PASSWORD}
SECRETS = (KEY, PASSWORD, base64.b64encode(f"observer:{PASSWORD}".encode()).decode())
TARGET = Target("ZTF26wntr", 48.3986122, -2.1517241)
PAYLOAD = {"start_date": "2036-12-10", "end_date": "2036-12-12", "filter": "J"}
CAMERAS = [WINTERFacility, SPRINGFacility]


@pytest.fixture
def winter():
    with WinterToOEmulator({"observer": PASSWORD}, {"2026A000": KEY}) as emulator:
        yield emulator


def request_for(payload=None, altdata=ALTDATA, remote_id=None, cursor=None):
    payload = dict(PAYLOAD if payload is None else payload)
    return FollowupRequest(13, TARGET, Allocation(7, dict(altdata), pi="PI"), payload, requester="observer", remote_id=remote_id, cursor=cursor)


def run(facility, operation, request, *servers):
    with Transport(backoff=0, retries=1, egress=loopback_egress(*servers) if servers else None) as transport:
        return perform(facility, operation, request, transport)


def on(cls, emulator, **config):
    return cls({"base_url": emulator.url, **config}, egress=loopback_egress(emulator, *config.pop("_also", ())))


def no_secret(outcome):
    text = json.dumps([t.as_dict() for t in outcome.transactions]) + outcome.status + repr(outcome)
    return all(secret not in text for secret in SECRETS)


@pytest.mark.parametrize(("cls", "path", "sequence"), [(WINTERFacility, "/too/winter", (8, 960.0, 90.0)), (SPRINGFacility, "/too/spring", (30, 900.0, 60.0))])
def test_prepare_builds_the_post_exactly_with_the_cameras_defaults(cls, path, sequence):
    facility = cls({"base_url": "https://winter.example.org"})
    call = facility.prepare(request_for(facility.validate_payload(PAYLOAD, TARGET)))
    assert (call.method, call.url) == ("POST", f"https://winter.example.org{path}")
    assert call.params == {"program_name": "2026A000", "program_api_key": KEY, "submit_trigger": "True"}
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(f"observer:{PASSWORD}".encode()).decode()
    dithers, total, step = sequence
    assert call.json == [
        {"ra_deg": 48.3986122, "dec_deg": -2.1517241, "use_field_grid": False, "filters": ["J"], "target_priority": 50.0, "target_name": "ZTF26wntr",
         "total_exposure_time": total, "n_repetitions": 1, "n_dither": dithers, "dither_distance": step, "start_time_mjd": 65037.0,
         "end_time_mjd": 65040.0, "max_airmass": 2.0}
    ]  # fmt: skip


@pytest.mark.parametrize(("band", "dithers", "exposure"), [("Y", 8, 120), ("J", 8, 120), ("Hs", 15, 60), ("dark", 5, 120)])
def test_winter_fills_each_filters_sequence_unless_given(band, dithers, exposure):
    facility = WINTERFacility()
    filled = facility.validate_payload({"filter": band})
    assert (filled["n_dither"], filled["exposure_time"]) == (dithers, exposure)
    assert facility.validate_payload({"filter": band, "n_dither": 3, "exposure_time": 10})["n_dither"] == 3


def test_forms_say_the_rules_and_refuse_what_the_observatory_would():
    facility = WINTERFacility()
    bad = [
        ({"exposure_time": 301}, "$.exposure_time"),
        ({"exposure_time": 0.1}, "$.exposure_time"),
        ({"maximum_airmass": 6}, "$.maximum_airmass"),
        ({"filter": "K"}, "$.filter"),
        ({"end_date": "2026-01-01", "start_date": "2025-12-30"}, "$.end_date"),
        ({"n_dither": 0}, "$.n_dither"),
    ]
    for payload, path in bad:
        with pytest.raises(Exception) as caught:
            facility.validate_payload({**PAYLOAD, **payload})
        assert path in str(caught.value)
    description = facility.request_schema()["properties"]["exposure_time"]["description"]
    assert "WINTER's defaults: Y: 8 × 120 s; J: 8 × 120 s; Hs: 15 × 60 s; dark: 5 × 120 s." in description
    assert SPRINGFacility().request_schema()["properties"]["dither_distance"]["default"] == 60.0


def test_all_four_altdata_fields_are_required_and_two_are_secret():
    for missing in ALTDATA:
        with pytest.raises(AltdataError, match=rf"\$\.{missing}: is required"):
            WINTERFacility().validate_altdata({k: v for k, v in ALTDATA.items() if k != missing})
    assert {"program_api_key", "password", "slack_token"} <= WINTERFacility.secret_fields()


@pytest.mark.parametrize("cls", CAMERAS)
def test_a_trigger_is_submitted_under_its_schedule_name_and_deleted_by_it(cls, winter):
    facility = on(cls, winter)
    outcome = run(facility, "submit", request_for(), winter)
    assert outcome.state.value == "submitted" and outcome.remote_id in winter.schedules
    assert outcome.status == f"submitted: {cls.title} queued schedule {outcome.remote_id} ({'8 × 120' if cls is WINTERFacility else '30 × 30'} s in J)"
    assert outcome.transactions[0].url.endswith("program_name=2026A000&program_api_key=***&submit_trigger=True")
    assert no_secret(outcome)
    deleted = run(facility, "delete", request_for(remote_id=outcome.remote_id), winter)
    assert deleted.status == f"deleted: {cls.title} deleted schedule {outcome.remote_id} (Deleted {outcome.remote_id})"
    assert winter.schedules == {} and no_secret(deleted)
    assert deleted.transactions[0].url.endswith(f"program_name=2026A000&program_api_key=***&schedule_name={outcome.remote_id}")
    again = run(facility, "delete", request_for(remote_id=outcome.remote_id), winter)
    assert again.status == f"deleted: {cls.title} no longer has schedule {outcome.remote_id} (already deleted, or its window ended)"
    assert run(facility, "delete", request_for(), winter).status == f"deleted: nothing had been sent to {cls.title}"


@pytest.mark.parametrize("cls", CAMERAS)
def test_validate_only_reads_as_validated_never_submitted(cls, winter):
    outcome = run(on(cls, winter), "submit", request_for({**PAYLOAD, "validate_only": True}), winter)
    assert outcome.state.value == "pending" and outcome.remote_id is None and "submitted" not in outcome.status
    assert outcome.status.startswith(f"pending submission: validated by {cls.title} only, nothing queued (")
    assert outcome.status.endswith("Schedule was not saved to disk and has no assigned name. (validate only was asked)")
    assert outcome.transactions[0].url.endswith("submit_trigger=False") and winter.schedules == {} and len(winter.validations) == 1
    checked = run(on(cls, winter), "remote_validate", request_for(), winter)
    assert checked.state.value == "pending" and winter.schedules == {}


def test_a_trigger_answered_as_a_validation_is_not_taken_for_a_submission(winter):
    winter.only_validate_next()
    outcome = run(on(WINTERFacility, winter), "submit", request_for(), winter)
    assert outcome.status.startswith("failed to submit: WINTER only validated the request and queued nothing: Request passed validation! Triggering was set")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, '{"msg": "ok"}', "failed: WINTER's answer names no schedule (ok); it may or may not have been queued: check the program's queue before submitting again"),  # noqa: E501
        (200, "", "failed to submit: WINTER sent an empty body instead of JSON for the ToO request (HTTP 200)"),
        (200, "<html><title>502</title></html>", "failed to submit: WINTER sent an HTML page (502) instead of JSON for the ToO request (HTTP 200)"),
        (422, '{"detail": [{"loc": ["body", 0, "filters"], "msg": "field required"}]}', "rejected: loc: body 0 filters; field required"),
        (500, "Internal Server Error", "failed: WINTER answered HTTP 500: Internal Server Error"
            "; the request may have reached the facility and was not sent again"),
    ],
)
def test_other_answers(status, body, expected):
    with responses.RequestsMock() as mock:
        mock.add("POST", "https://winter.example.org/too/winter", status=status, body=body)
        outcome = run(WINTERFacility({"base_url": "https://winter.example.org"}), "submit", request_for())
    assert outcome.status == expected and no_secret(outcome)


def test_refusals_and_wrong_keys(winter):
    winter.reject_next("Target is not visible from Palomar in the requested window")
    assert run(on(WINTERFacility, winter), "submit", request_for(), winter).status == "rejected: Target is not visible from Palomar in the requested window"
    wrong = run(on(WINTERFacility, winter), "submit", request_for(altdata={**ALTDATA, "program_api_key": "other-key-000"}), winter)
    assert wrong.status == "failed to submit: WINTER refused the credentials (HTTP 401: Invalid program name or program API key)"
    assert "other-key-000" not in json.dumps([t.as_dict() for t in wrong.transactions])


def test_the_published_plain_http_address_never_carries_the_credentials():
    outcome = run(WINTERFacility(), "submit", request_for())
    assert outcome.status.startswith("failed to submit: WINTER's ToO API is configured at http://winter.caltech.edu:82, where the login and program key")
    assert outcome.transactions == ()


def test_a_long_source_id_is_refused_not_cut():
    request = dataclasses.replace(request_for(), target=Target("x" * 31, 1.0, 1.0))
    outcome = run(WINTERFacility({"base_url": "https://winter.example.org"}), "submit", request)
    assert outcome.status == "rejected: invalid payload: $: the observatory takes target names of at most 30 characters; this source's id is longer"


def test_slack_notices_of_the_trigger_and_its_cancellation(winter):
    with SlackWebhookEmulator() as slack:
        slack.add_hook("TW", "BW", "FAKEwinterSlackToken")
        facility = WINTERFacility({"base_url": winter.url, "notify": {"slack_base_url": slack.url}}, egress=loopback_egress(winter, slack))
        altdata = {**ALTDATA, "notification_type": "slack", "slack_workspace": "TW", "slack_channel": "BW", "slack_token": "FAKEwinterSlackToken"}
        submitted = run(facility, "submit", request_for(altdata=altdata), winter, slack)
        assert submitted.status.endswith("; posted to Slack") and submitted.cursor.startswith("notice-")
        deleted = run(facility, "delete", request_for(altdata=altdata, remote_id=submitted.remote_id, cursor=submitted.cursor), winter, slack)
        assert deleted.status.endswith("; posted to Slack")
        posts = slack.posts
    assert [p.text.split(":")[0] for p in posts] == ["New follow-up request", "Cancelled follow-up request"]
    text = json.dumps([t.as_dict() for t in (*submitted.transactions, *deleted.transactions)])
    assert "FAKEwinterSlackToken" not in text and KEY not in text


def test_an_email_notice_and_a_failed_notice_never_fail_the_trigger(winter):
    with SMTPEmulator() as smtp:
        facility = WINTERFacility({"base_url": winter.url, "notify": {"smtp": smtp.config()}}, egress=loopback_egress(winter))
        altdata = {**ALTDATA, "notification_type": "email", "email": "pi@example.org"}
        outcome = run(facility, "submit", request_for(altdata=altdata), winter)
        assert outcome.status.endswith("; e-mailed to pi@example.org") and len(smtp.messages) == 1
        assert "ZTF26wntr" in smtp.messages[0].message["Subject"]
    failed = run(facility, "submit", request_for(altdata=altdata), winter)  # the SMTP server is gone
    assert failed.state.value == "submitted" and "; the notification failed: " in failed.status


@pytest.mark.parametrize("cls", [WINTERFacility, SPRINGFacility])
def test_the_observing_window_ends_with_the_end_date_so_the_gateways_horizon_counts_from_there(cls):
    """docs/facilities/winter.md: a week-long schedule is not cut short by ``horizon_hours``."""
    payload = cls().validate_payload(PAYLOAD, TARGET)
    assert cls().window_end(payload) == datetime(2036, 12, 13, tzinfo=UTC)
    assert not cls.implements()["get"]
