"""MMA observation plans: the allocation (legacy keys, every refusal), the request, the exact queue
calls and the status of every answer (``responses``)."""

import dataclasses
import json
import logging

import pytest
import requests
import responses

from facility_apis.core.egress import EgressPolicy
from facility_apis.core.errors import AltdataError, ConfigurationError, PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Kind, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.plan import PLAN_KEY
from facility_apis.core.transport import Transport
from facility_apis.facilities.mma import MMAFacility
from facility_apis.facilities.mma.sftp import fingerprint
from facility_apis.testing.network import socket_guard

TOKEN = "qu3ue-t0ken-7f3a9c"
QUEUE = "https://queue.example.org"
API = {"allocation_type": "API", "endpoint": QUEUE, "api_token": TOKEN}
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
SCP = {"allocation_type": "scp", "host": "ssh.example.org", "username": "obsplans", "password": "pass w0rd", "directory": "/data/in", "host_key": HOST_KEY}


def example_plan():
    return MMAFacility().request_schema()["examples"][0][PLAN_KEY]


def request_for(altdata, remote_id=None, plan=None):
    allocation = Allocation(6, altdata, pi="A. PI", instrument_name="ZTF")
    payload = {PLAN_KEY: plan or example_plan()}
    return FollowupRequest(21, Target("2025-08-18T01:02:03", 171.0, 2.6), allocation, payload, requester="observer", remote_id=remote_id)


def run(operation, request, facility=None):
    with Transport(backoff=0, retries=1) as transport:
        return perform(facility or MMAFacility(), operation, request, transport)


def test_metadata_is_skyportals_mma():
    assert (MMAFacility.name, MMAFacility.skyportal_class, MMAFacility.kind) == ("mma", "MMAAPI", Kind.OBSERVATION_PLAN)
    assert MMAFacility.implements()["submit"] and MMAFacility.implements()["delete"] and not MMAFacility.implements()["get"]


# -- the allocation ---------------------------------------------------------------------------


def test_one_schema_whose_branches_are_what_the_code_reads():
    schema = MMAFacility.altdata_schema()
    branches = {branch["properties"]["allocation_type"]["enum"][0]: branch for branch in schema["dependencies"]["allocation_type"]["oneOf"]}
    assert schema["properties"]["allocation_type"]["enum"] == ["API", "scp", "slack", "email"] == list(branches)
    assert set(branches["API"]["properties"]) == {"allocation_type", "endpoint", "api_token"}
    assert set(branches["scp"]["properties"]) == {
        "allocation_type",
        "host",
        "port",
        "username",
        "password",
        "private_key",
        "directory",
        "host_key",
        "file_format",
    }
    assert set(branches["slack"]["properties"]) == {"allocation_type", "slack_workspace", "slack_channel", "slack_token"}
    assert set(branches["email"]["properties"]) == {"allocation_type", "email"}
    assert MMAFacility.secret_fields() == {"api_token", "password", "private_key", "slack_token", "access_token"}


@pytest.mark.parametrize(
    ("held", "read"),
    [
        # SkyPortal's MMA code's API keys (what working allocations hold today).
        (
            {"protocol": "https", "host": "queue.example.org", "port": "8443", "access_token": TOKEN},
            {"allocation_type": "API", "endpoint": "https://queue.example.org:8443", "api_token": TOKEN},
        ),
        (
            {"type": "API", "protocol": "https", "host": "queue.example.org", "access_token": TOKEN},
            {"allocation_type": "API", "endpoint": "https://queue.example.org", "api_token": TOKEN},
        ),
        # Its form's keys are this form's; where both are held (an edit merges keys), the form's win.
        (
            {
                "allocation_type": "API",
                "endpoint": QUEUE,
                "api_token": TOKEN,
                "protocol": "http",
                "host": "old.example.org",
                "port": "80",
                "access_token": "old",
            },
            API,
        ),
        # scp with the code's discriminator and the form's text port.
        ({**{k: v for k, v in SCP.items() if k != "allocation_type"}, "type": "scp", "port": "2222"}, {**SCP, "port": 2222}),
        # An allocation switched from API to scp keeps the old keys it cannot remove; they are dropped.
        ({**SCP, "protocol": "https", "access_token": "old"}, SCP),
    ],
)
def test_skyportals_legacy_keys_are_read_as_the_forms(held, read):
    assert MMAFacility().validate_altdata(held) == read


def test_a_legacy_token_is_a_secret_wherever_it_is_held():
    assert MMAFacility.secrets({"protocol": "https", "host": "q.example.org", "access_token": TOKEN}) == [TOKEN]


@pytest.mark.parametrize(
    ("altdata", "path", "words"),
    [
        ({"allocation_type": "API", "endpoint": "http://queue.example.org", "api_token": TOKEN}, "$.endpoint", "https"),
        ({"allocation_type": "API", "endpoint": "https://10.0.0.5", "api_token": TOKEN}, "$.endpoint", "private or internal"),
        ({"allocation_type": "API", "endpoint": QUEUE}, "$.api_token", "required"),
        ({k: v for k, v in SCP.items() if k != "password"}, "$.password", "or private_key"),
        ({**SCP, "host": "192.168.1.20"}, "$.host", "private or internal"),
        ({**SCP, "host_key": "ssh-ed25519 AAAAnotakey"}, "$.host_key", "public host key"),
        ({**SCP, "host_key": "ecdsa-sha1 AAAA"}, "$.host_key", ""),
        (
            {**SCP, "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n"},
            "$.private_key",
            "unencrypted private key",
        ),
        ({**SCP, "directory": "/data/../etc"}, "$.directory", ""),
        ({k: v for k, v in SCP.items() if k != "host_key"}, "$.host_key", "required"),
        (
            {"allocation_type": "slack", "slack_workspace": "T1", "slack_channel": "B1", "slack_token": "FAKEmmaSlackToken"},
            "$.allocation_type",
            "notify.skyportal_url",
        ),
        ({"allocation_type": "email", "email": "desk@example.org"}, "$.allocation_type", "SMTP"),
        ({"allocation_type": "ftp"}, "$.allocation_type", ""),
        ({**API, "emails": "x"}, "$.emails", "not an allowed property"),
    ],
)
def test_a_wrong_allocation_is_refused_when_saved_naming_the_field(altdata, path, words):
    with socket_guard() as attempts, pytest.raises(AltdataError) as caught:
        MMAFacility().validate_altdata(altdata)
    errors = {e.path: e.message for e in caught.value.errors}
    assert path in errors and words in errors[path]
    assert attempts == [], "checking an allocation connects nowhere"
    assert TOKEN not in str(caught.value) and "pass w0rd" not in str(caught.value)


def test_a_private_key_and_a_fingerprint_are_accepted():
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    altdata = {**{k: v for k, v in SCP.items() if k != "password"}, "private_key": key, "host_key": fingerprint(HOST_KEY)}
    assert MMAFacility().validate_altdata(altdata)["private_key"] == key


def test_deployment_settings_are_checked():
    with pytest.raises(ConfigurationError, match="ssh_timeout"):
        MMAFacility({"ssh_timeout": 0})
    with pytest.raises(ConfigurationError, match=r"mma: unknown setting\(s\) base_url; known: notify, ssh_timeout"):
        MMAFacility({"base_url": QUEUE})


# -- the request -------------------------------------------------------------------------------


def test_the_request_is_the_plan_and_its_rules_name_the_field():
    facility = MMAFacility()
    schema = facility.request_schema()
    assert list(schema["properties"]) == [PLAN_KEY] and schema["required"] == [PLAN_KEY]
    with pytest.raises(PayloadError) as caught:
        facility.validate_payload({PLAN_KEY: {**example_plan(), "validity_window_mjd": [61001, 61000]}})
    assert [e.path for e in caught.value.errors] == ["$.observation_plan.validity_window_mjd"]


def test_a_plan_whose_window_has_closed_is_not_delivered():
    """A plan valid on 2025-11-21 (MJD 61000.25 to 61000.75) can no longer be observed: rejected
    on its window before any call (a newcomer's trial delivered it)."""
    closed = {**example_plan(), "validity_window_mjd": [61000.25, 61000.75]}
    with responses.RequestsMock() as mocked:
        outcome = run("submit", request_for(API, plan=closed))
        assert len(mocked.calls) == 0
    expected = (
        "rejected: invalid payload: $.observation_plan.validity_window_mjd: is in the past: "
        "the observing window closed at 2025-11-21 18:00 UTC; choose a window that has not ended"
    )
    assert outcome.status == expected


# -- the queue API -----------------------------------------------------------------------------


def test_prepare_builds_skyportals_put_and_sends_nothing():
    facility = MMAFacility()
    request = request_for(facility.validate_altdata(API))
    with socket_guard() as attempts:
        call = facility.prepare(request)
    assert attempts == []
    assert (call.method, call.url, call.repeatable) == ("PUT", f"{QUEUE}/api/obsplans", False)
    assert call.headers["Authorization"] == f"token {TOKEN}" and call.headers["Content-Type"] == "application/json"
    body = json.loads(call.data)
    plan = example_plan()
    assert body == {key: plan[key] for key in ("targets", "queue_name", "validity_window_mjd", "queue_type", "user")}
    rendered = Transport(secrets=[TOKEN]).render(call)
    assert TOKEN not in rendered and "Authorization: ***" in rendered


def test_an_endpoint_already_naming_the_path_is_used_as_it_is():
    altdata = {**API, "endpoint": f"{QUEUE}/api/obsplans/"}
    assert MMAFacility().prepare(request_for(altdata)).url == f"{QUEUE}/api/obsplans"


def test_the_dry_run_of_scp_shows_the_file_where_it_goes_and_of_email_the_message_secrets_masked():
    with socket_guard() as attempts:
        call = MMAFacility().prepare(request_for(SCP))
        assert attempts == []
    assert (call.protocol, call.destination) == ("SFTP", "sftp://ssh.example.org:22")
    plan = json.loads(call.body)
    assert call.headers["User"] == "obsplans" and call.headers["Path"] == f"/data/in/{plan['queue_name']}.json"
    rendered = Transport(secrets=["pass w0rd"]).render(call)
    assert rendered.startswith("SFTP sftp://ssh.example.org:22\nUser: obsplans\n") and "pass w0rd" not in rendered
    email = MMAFacility({"notify": {"smtp": {"host": "mail.example.org", "from_address": "plans@example.org"}}})
    call = email.prepare(request_for({"allocation_type": "email", "email": "pi@example.org"}))
    assert (call.protocol, call.destination, call.headers["To"]) == ("SMTP", "smtp://mail.example.org:587", "pi@example.org")
    queue_name = example_plan()["queue_name"]
    assert call.headers["Attachments"] == f"{queue_name}.json, {queue_name}.csv" and queue_name in call.body


@responses.activate
def test_an_accepted_plan_is_submitted_with_its_queue_as_remote_id_and_no_secret_anywhere(caplog):
    caplog.set_level(logging.DEBUG)
    responses.put(f"{QUEUE}/api/obsplans", json={"status": "success", "message": "submitted"})
    outcome = run("submit", request_for(API))
    assert outcome.state is State.SUBMITTED and outcome.poll_after is None
    assert outcome.remote_id == "api:ToO_S250818k_ZTF_night1"
    assert outcome.detail == "queued as ToO_S250818k_ZTF_night1 at queue.example.org (3 planned observations)"
    stored = json.dumps([t.as_dict() for t in outcome.transactions])
    assert TOKEN not in stored and TOKEN not in caplog.text and TOKEN not in outcome.status


@pytest.mark.parametrize(
    ("status", "body", "state", "words"),
    [
        (400, {"status": "error", "message": "targets[0].filter_id: missing"}, State.REJECTED, "targets[0].filter_id: missing"),
        (413, {"status": "error", "message": "Request Entity Too Large"}, State.REJECTED, "Request Entity Too Large"),
        (401, {"status": "error", "message": "Unauthorized"}, State.FAILED, "refused"),
        (500, "Internal Server Error", State.FAILED, "500"),
        (200, "<html><title>Welcome to nginx</title></html>", State.FAILED, "may have been queued and was not sent again"),
        (200, {"status": "error", "message": "odd"}, State.FAILED, "without its success envelope"),
    ],
)
@responses.activate
def test_every_answer_to_the_put_ends_in_a_defined_state(status, body, state, words):
    responses.put(f"{QUEUE}/api/obsplans", status=status, **({"json": body} if isinstance(body, dict) else {"body": body}))
    outcome = run("submit", request_for(API))
    assert outcome.state is state and words in outcome.detail and outcome.remote_id is None
    assert outcome.poll_after is None


@responses.activate
def test_a_put_whose_answer_was_lost_is_not_sent_again():
    responses.put(f"{QUEUE}/api/obsplans", body=requests.ReadTimeout("read timed out"))
    outcome = run("submit", request_for(API))
    assert outcome.state is State.FAILED and outcome.poll_after is None
    assert "may have reached the facility and was not sent again" in outcome.detail
    assert len(responses.calls) == 1


@responses.activate
def test_a_taken_name_holding_the_same_plan_is_our_earlier_delivery():
    plan = example_plan()
    held = {key: plan[key] for key in ("targets", "queue_name", "validity_window_mjd", "queue_type", "user")}
    responses.put(f"{QUEUE}/api/obsplans", status=409, json={"status": "error", "message": "Submitted queue ToO_S250818k_ZTF_night1 already exists"})
    responses.get(f"{QUEUE}/api/obsplans", json={"status": "success", "data": [held]})
    outcome = run("submit", request_for(API))
    assert outcome.state is State.SUBMITTED and "by an earlier attempt" in outcome.detail
    assert responses.calls[1].request.params == {"queue_name": "ToO_S250818k_ZTF_night1", "user": "observer"}


@responses.activate
def test_a_taken_name_holding_another_plan_is_a_rejection_saying_what_to_do():
    other = {**example_plan(), "targets": example_plan()["targets"][:1]}
    other.pop("event")
    responses.put(f"{QUEUE}/api/obsplans", status=409, json={"status": "error", "message": "exists"})
    responses.get(f"{QUEUE}/api/obsplans", json={"status": "success", "data": [other]})
    outcome = run("submit", request_for(API))
    assert outcome.state is State.REJECTED
    assert (
        outcome.detail
        == "queue.example.org already holds a different plan named ToO_S250818k_ZTF_night1: remove it there, or make the plan under another queue name"
    )


@pytest.mark.parametrize(("status", "words"), [(200, "removed ToO_S250818k_ZTF_night1 from the queue at queue.example.org"), (404, "no longer held")])
@responses.activate
def test_removal_deletes_the_queue_by_name_and_user(status, words):
    responses.delete(f"{QUEUE}/api/obsplans", status=status, json={"status": "success" if status == 200 else "error", "message": "x"})
    outcome = run("delete", request_for(API, remote_id="api:ToO_S250818k_ZTF_night1"))
    assert outcome.state is State.DELETED and words in outcome.detail
    assert json.loads(responses.calls[0].request.body) == {"queue_name": "ToO_S250818k_ZTF_night1", "user": "observer"}


@responses.activate
def test_a_plan_delivered_by_another_mode_is_not_reached_and_the_status_says_where_it_is():
    outcome = run("delete", request_for(API, remote_id="scp:/data/in/ToO_x.json"))
    assert outcome.state is State.FAILED
    assert "the plan was delivered by scp (/data/in/ToO_x.json), but the allocation now delivers by API" in outcome.detail
    assert len(responses.calls) == 0


@responses.activate
def test_removal_without_a_recorded_delivery_removes_the_plans_queue_by_name():
    responses.delete(f"{QUEUE}/api/obsplans", json={"status": "success", "message": "deleted"})
    outcome = run("delete", request_for(API))
    assert outcome.state is State.DELETED and json.loads(responses.calls[0].request.body)["queue_name"] == "ToO_S250818k_ZTF_night1"


def test_a_slack_plan_needs_its_event_for_the_link():
    facility = MMAFacility({"notify": {"skyportal_url": "https://fritz.example.org"}}, egress=EgressPolicy())
    altdata = {"allocation_type": "slack", "slack_workspace": "T1", "slack_channel": "B1", "slack_token": "FAKEmmaSlackToken"}
    plan = {k: v for k, v in example_plan().items() if k != "event"}
    outcome = run("submit", dataclasses.replace(request_for(altdata, plan=plan)), facility)
    assert outcome.state is State.REJECTED and "$.observation_plan.event" in outcome.detail
