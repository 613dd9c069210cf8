"""GENERIC: every altdata branch, API mode against a local SkyPortal-like follow-up API (exact body
and header; update and delete on the remote id; refusals), the egress rule on the endpoint, and the
Slack and e-mail modes end to end against the emulators."""

import json
import logging
import socket

import pytest

from facility_apis.core.egress import EgressPolicy
from facility_apis.core.errors import AltdataError, PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.transport import Transport
from facility_apis.facilities.notification import GenericFacility
from facility_apis.testing.network import loopback_egress, socket_guard
from facility_apis.testing.server import LoopbackHandler, LoopbackServer
from facility_apis.testing.slack import SlackWebhookEmulator
from facility_apis.testing.smtp import SMTPEmulator
from facility_apis.testing.tls import make_tls_files

API_TOKEN = "partner-api-token-4c7e21"
SLACK_TOKEN = "FAKEgenericSlackToken"
SMTP_PASSWORD = "generic-smtp-pw-77a1"
TARGET = Target("ZTF21abcdefg", 150.1, 2.2)
PAYLOAD = {
    "observation_choices": ["ztfg"],
    "exposure_time": 300,
    "exposure_counts": 1,
    "maximum_airmass": 2,
    "minimum_lunar_distance": 30,
    "priority": 4,
    "start_date": "2026-11-21",
    "end_date": "2026-11-28",
}


class _PartnerHandler(LoopbackHandler):
    """SkyPortal's follow-up request API as its API reference describes it: ``POST`` answers
    ``{"status": "success", "data": {"id": ...}}``, ``PUT``/``DELETE <id>`` answer success, errors
    are ``{"status": "error", "message": ...}`` with HTTP 400."""

    def _authorized(self) -> bool:
        if self.request.headers.get("Authorization") != f"token {API_TOKEN}":
            self.set_status(401)
            self.finish(json.dumps({"status": "error", "message": "Credentials malformed"}))
            return False
        return True

    def post(self, request_id=None):
        if self._authorized():
            body = json.loads(self.request.body)
            if body.get("payload", {}).get("priority") == 5:
                return self.send_json({"status": "error", "message": "Allocation 5 has no hours left"}, 400)
            self.server.created += 1
            self.send_json({"status": "success", "data": {"id": 100 + self.server.created}})

    def put(self, request_id=None):
        if self._authorized():
            if int(request_id) > 100 + self.server.created:
                return self.send_json({"status": "error", "message": f"Cannot find FollowupRequest with ID: {request_id}"}, 400)
            self.send_json({"status": "success"})

    def delete(self, request_id=None):
        if self._authorized():
            if int(request_id) > 100 + self.server.created:
                return self.send_json({"status": "error", "message": "not found"}, 404)
            self.send_json({"status": "success"})


class PartnerAPI(LoopbackServer):
    def __init__(self):
        super().__init__()
        self.created = 0

    def routes(self):
        return [(r"/api/followup_request(?:/([^/]+))?", _PartnerHandler)]

    @property
    def endpoint(self):
        return f"{self.url}/api/followup_request"


@pytest.fixture
def partner():
    with PartnerAPI() as server:
        yield server


def make_request(altdata, *, payload=PAYLOAD, remote_id=None, comments=(), target=TARGET, requester="observer"):
    allocation = Allocation(7, altdata, pi="A. PI", proposal_id="2026B-7", instrument_name="Generic", filters=("ztfg", "ztfr"), group="Transients")
    return FollowupRequest(11, target, allocation, payload, requester=requester, remote_id=remote_id, comments=comments)


def api_altdata(partner):
    return {"notification_type": "API", "endpoint": partner.endpoint, "api_token": API_TOKEN}


def run(facility, operation, request, egress):
    with Transport(egress=egress, backoff=0) as transport:
        return perform(facility, operation, request, transport)


# -- altdata -----------------------------------------------------------------------------------


@pytest.fixture
def mail_ready():
    return GenericFacility({"notify": {"smtp": {"host": "mail.example.org", "from_address": "skyportal@example.org"}}})


def test_every_example_branch_is_valid(mail_ready):
    examples = mail_ready.altdata_schema()["examples"]
    assert [e["notification_type"] for e in examples] == ["API", "slack", "email"]
    for example in examples:
        assert mail_ready.validate_altdata(example) == example


@pytest.mark.parametrize(
    ("altdata", "errors"),
    [
        ({"notification_type": "API", "api_token": "tok-12345678"}, ["$.endpoint: is required"]),
        ({"notification_type": "API", "endpoint": "https://partner.example.org/api"}, ["$.api_token: is required"]),
        ({"notification_type": "slack", "slack_workspace": "T1", "slack_token": "FAKEslackTokenForTests"}, ["$.slack_channel: is required"]),
        ({"notification_type": "email"}, ["$.email: is required"]),
        ({"notification_type": "fax"}, ["$.notification_type: must be one of ['API', 'slack', 'email']"]),
        ({}, ["$.notification_type: is required"]),
        (
            {"notification_type": "email", "email": "a@example.org, not-an-address"},
            ["$.email: must be e-mail addresses (name@example.org), one or several separated by commas; entry 2 is not one"],
        ),
        (
            {"notification_type": "email", "email": "a@example.org\r\nBcc: b@example.org"},
            ["$.email: must be e-mail addresses (name@example.org), one or several separated by commas; entry 1 is not one"],
        ),
        ({"notification_type": "email", "email": "a@example.org", "emails": "b@example.org"}, ["$.emails: is not an allowed property"]),
        (
            {"notification_type": "API", "endpoint": "ftp://partner.example.org", "api_token": "tok-12345678"},
            ["$.endpoint: must be an https URL without a user name or password (plain http only to a loopback address)"],
        ),
    ],
)
def test_bad_altdata_names_the_field_and_the_rule(mail_ready, altdata, errors):
    with pytest.raises(AltdataError) as caught:
        mail_ready.validate_altdata(altdata)
    assert [str(e).split(" '^")[0][: len(expected)] for e, expected in zip(caught.value.errors, errors, strict=True)] == errors


def test_fields_of_a_branch_no_longer_chosen_are_kept_harmlessly(mail_ready):
    # SkyPortal's allocation PUT merges keys and cannot remove one: a Slack allocation switched to e-mail.
    switched = {"notification_type": "email", "email": "a@example.org", "slack_workspace": "T1", "slack_channel": "B1", "slack_token": SLACK_TOKEN}
    assert mail_ready.validate_altdata(switched) == switched
    assert SLACK_TOKEN in GenericFacility.secrets(switched)  # still masked everywhere


def test_email_is_refused_when_the_deployment_has_no_smtp_server():
    with pytest.raises(AltdataError, match=r"\$\.notification_type: email is not available: this deployment configures no SMTP server"):
        GenericFacility().validate_altdata({"notification_type": "email", "email": "a@example.org"})


def test_the_form_offers_the_instruments_filters_and_checks_the_window():
    facility = GenericFacility()
    form = facility.instrument_form(facility.request_schema(), name="Generic", filters=("ztfg", "ztfr", "ztfi"))
    assert form["properties"]["observation_choices"]["items"]["enum"] == ["ztfg", "ztfr", "ztfi"]
    defaults = facility.request_schema()["properties"]
    assert defaults["start_date"]["default"] < defaults["end_date"]["default"]
    from facility_apis.core.errors import PayloadError

    with pytest.raises(PayloadError, match=r"\$\.end_date: must not be before start_date"):
        facility.validate_payload({**PAYLOAD, "end_date": "2026-11-01"})


# -- API mode --------------------------------------------------------------------------------------


def test_api_mode_posts_the_forwarding_body_and_keeps_the_remote_id(partner, caplog):
    caplog.set_level(logging.DEBUG)
    facility = GenericFacility(egress=loopback_egress(partner))
    outcome = run(facility, "submit", make_request(api_altdata(partner)), loopback_egress(partner))
    assert outcome.status == "submitted: accepted by 127.0.0.1 as request 101" and outcome.remote_id == "101"
    (post,) = partner.requests
    assert (post.method, post.path) == ("POST", "/api/followup_request")
    assert post.headers["Authorization"] == f"token {API_TOKEN}" and post.headers["Content-Type"] == "application/json"
    assert json.loads(post.body) == {"obj_id": "ZTF21abcdefg", "allocation_id": 7, "payload": PAYLOAD}
    assert outcome.transactions[0].request_headers["Authorization"] == "***"
    assert API_TOKEN not in repr(outcome) + json.dumps([t.as_dict() for t in outcome.transactions]) + caplog.text


def test_api_mode_updates_and_deletes_on_the_remote_id(partner):
    facility, egress = GenericFacility(egress=loopback_egress(partner)), loopback_egress(partner)
    submitted = run(facility, "submit", make_request(api_altdata(partner)), egress)
    changed = {**PAYLOAD, "priority": 2}
    updated = run(facility, "update", make_request(api_altdata(partner), payload=changed, remote_id=submitted.remote_id), egress)
    deleted = run(facility, "delete", make_request(api_altdata(partner), payload=changed, remote_id=submitted.remote_id), egress)
    assert updated.status == "submitted: update accepted by 127.0.0.1 (request 101)" and updated.remote_id == "101"
    assert deleted.status == "deleted: deleted at 127.0.0.1 (request 101)"
    put, delete = partner.requests[1:]
    assert (put.method, put.path, delete.method, delete.path) == ("PUT", "/api/followup_request/101", "DELETE", "/api/followup_request/101")
    assert json.loads(put.body) == {"obj_id": "ZTF21abcdefg", "allocation_id": 7, "payload": changed}
    assert put.headers["Authorization"] == delete.headers["Authorization"] == f"token {API_TOKEN}"


def test_api_mode_answers(partner):
    facility, egress = GenericFacility(egress=loopback_egress(partner)), loopback_egress(partner)
    refused = run(facility, "submit", make_request(api_altdata(partner), payload={**PAYLOAD, "priority": 5}), egress)
    assert refused.status == "rejected: 127.0.0.1: Allocation 5 has no hours left"
    gone = run(facility, "update", make_request(api_altdata(partner), remote_id="999"), egress)
    assert gone.status == "rejected: 127.0.0.1: Cannot find FollowupRequest with ID: 999"
    already = run(facility, "delete", make_request(api_altdata(partner), remote_id="999"), egress)
    assert already.status == "deleted: request 999 was already gone at 127.0.0.1"
    wrong = run(facility, "submit", make_request({**api_altdata(partner), "api_token": "other-token"}), egress)
    assert wrong.status == "failed to submit: 127.0.0.1 refused the credentials (HTTP 401: Credentials malformed)"
    partner.faults.add("status", status=200, body={"status": "success", "data": {"id": None, "ignored": True, "message": "duplicate request"}})
    ignored = run(facility, "submit", make_request(api_altdata(partner)), egress)
    assert ignored.status == "rejected: 127.0.0.1 ignored the request: duplicate request"
    partner.faults.add("status", status=200, body={"status": "success", "data": {}})
    no_id = run(facility, "submit", make_request(api_altdata(partner)), egress)
    assert no_id.state is State.FAILED and no_id.poll_after is None
    assert no_id.detail.endswith("named no id, so it cannot be updated or deleted from here; it may hold the request: check with 127.0.0.1 before submitting again")  # noqa: E501
    partner.faults.add("status", status=200, body="<html><title>Login</title></html>")
    html = run(facility, "submit", make_request(api_altdata(partner)), egress)
    assert html.state is State.FAILED and "check with 127.0.0.1 before submitting again" in html.detail and "<" not in html.detail


def test_a_remote_id_cannot_add_a_path_or_a_query(partner):
    facility, egress = GenericFacility(egress=loopback_egress(partner)), loopback_egress(partner)
    run(facility, "delete", make_request(api_altdata(partner), remote_id="../1?x=2"), egress)
    assert partner.requests[-1].path == "/api/followup_request/..%2F1%3Fx%3D2"


def test_a_private_endpoint_is_refused_unless_the_deployment_allows_it():
    altdata = {"notification_type": "API", "endpoint": "https://10.20.30.40/api/followup_request", "api_token": API_TOKEN}
    with pytest.raises(AltdataError, match=r"\$\.endpoint: 10\.20\.30\.40 is a private or internal address"):
        GenericFacility().validate_altdata(altdata)
    with socket_guard() as attempts:
        outcome = run(GenericFacility(), "submit", make_request(altdata), EgressPolicy())
    assert outcome.state is State.FAILED and "private or internal" in outcome.detail and attempts == []
    allowed = EgressPolicy.allowing("10.0.0.0/8")
    assert GenericFacility(egress=allowed).validate_altdata(altdata) == altdata


def test_a_name_resolving_to_a_private_address_is_refused_before_any_connection():
    def resolver(host, port, *args):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.20", port))]

    altdata = {"notification_type": "API", "endpoint": "https://partner.example.org/api/followup_request", "api_token": API_TOKEN}
    egress = EgressPolicy(resolve=resolver)
    with socket_guard() as attempts:
        outcome = run(GenericFacility(egress=egress), "submit", make_request(altdata), egress)
    assert outcome.status == (
        "failed to submit: refused to call partner.example.org: it resolves to a private or internal address, which this deployment does not allow"
    )
    assert attempts == []


# -- Slack and e-mail modes ------------------------------------------------------------------------


def test_slack_mode_announces_submit_update_and_cancel(caplog):
    caplog.set_level(logging.DEBUG)
    with SlackWebhookEmulator() as slack:
        slack.add_hook("TFAKEG", "BFAKEG", SLACK_TOKEN)
        egress = loopback_egress(slack)
        facility = GenericFacility({"notify": {"slack_base_url": slack.url}}, egress=egress)
        altdata = {"notification_type": "slack", "slack_workspace": "TFAKEG", "slack_channel": "BFAKEG", "slack_token": SLACK_TOKEN}
        submitted = run(facility, "submit", make_request(altdata), egress)
        updated = run(facility, "update", make_request(altdata, remote_id=submitted.remote_id, payload={**PAYLOAD, "priority": 1}), egress)
        deleted = run(facility, "delete", make_request(altdata, remote_id=submitted.remote_id), egress)
        posts = slack.posts
    assert [submitted.status, updated.status, deleted.status] == [
        "submitted: posted to Slack",
        "submitted: update posted to Slack",
        "deleted: cancellation posted to Slack",
    ]
    assert [p.text.split(":")[0] for p in posts] == ["New follow-up request", "Updated follow-up request", "Cancelled follow-up request"]
    assert "*Priority*\\n1" in json.dumps(posts[1].blocks) and "*Facility*\\nGENERIC" in json.dumps(posts[0].blocks)
    records = json.dumps([t.as_dict() for o in (submitted, updated, deleted) for t in o.transactions])
    assert SLACK_TOKEN not in records + caplog.text + repr((submitted, updated, deleted))


def test_email_mode_end_to_end_text_html_threading_and_no_password_anywhere(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    tls = make_tls_files(tmp_path)
    with SMTPEmulator(security="starttls", tls=tls.server_context(), users={"skyportal": SMTP_PASSWORD}, refuse={"left@example.org"}) as smtp:
        config = {
            "notify": {
                "skyportal_url": "https://fritz.example.org",
                "app_title": "Fritz",
                "smtp": smtp.config(username="skyportal", password=SMTP_PASSWORD, ca_file=str(tls.ca_file)),
            }
        }
        facility = GenericFacility(config)
        altdata = {"notification_type": "email", "email": "pi@example.org, left@example.org , desk@example.org", "include_comments": True}
        comments = ("Request note: before dawn", "alice: rising fast")
        submitted = run(facility, "submit", make_request(altdata, comments=comments), EgressPolicy())
        updated = run(facility, "update", make_request(altdata, remote_id=submitted.remote_id, comments=comments), EgressPolicy())
        deleted = run(facility, "delete", make_request(altdata, remote_id=submitted.remote_id), EgressPolicy())
        first, second, third = smtp.messages
    refusal = "refused: left@example.org (550 5.1.1 <left@example.org>: Recipient address rejected: no such user)"
    assert submitted.status == f"submitted: e-mailed to pi@example.org, desk@example.org; {refusal}"
    assert updated.status == f"submitted: update e-mailed to pi@example.org, desk@example.org; {refusal}"
    assert deleted.status == f"deleted: cancellation e-mailed to pi@example.org, desk@example.org; {refusal}"
    assert submitted.remote_id == first.message["Message-ID"] == updated.remote_id == deleted.remote_id
    assert second.message["In-Reply-To"] == third.message["In-Reply-To"] == submitted.remote_id
    assert [m.message["Subject"] for m in (first, second, third)] == [
        "Fritz - New follow-up request: ZTF21abcdefg",
        "Fritz - Updated follow-up request: ZTF21abcdefg",
        "Fritz - Cancelled follow-up request: ZTF21abcdefg",
    ]
    assert first.rcpt_tos == ("pi@example.org", "desk@example.org") and first.authenticated_as == "skyportal" and first.tls
    text = first.message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "RA, Dec: 10:00:24.00 +02:12:00.0\n" in text and "PI: A. PI\nProposal: 2026B-7\nGroup: Transients\nRequested by: observer\n" in text
    assert "  Filters: ztfg\n" in text and "  Priority: 4\n" in text and "  - alice: rising fast\n" in text
    assert "Source page: https://fritz.example.org/source/ZTF21abcdefg" in text
    page = first.message.get_body(("html",)).get_content()
    assert '<a href="https://fritz.example.org/source/ZTF21abcdefg">Source page in Fritz</a>' in page and "<li>alice: rising fast</li>" in page
    (record,) = submitted.transactions
    assert record.method == "SMTP" and record.status == 250
    assert SMTP_PASSWORD not in json.dumps([t.as_dict() for o in (submitted, updated, deleted) for t in o.transactions]) + caplog.text


def test_line_breaks_in_the_object_id_a_comment_and_the_requester_add_no_header(tmp_path):
    with SMTPEmulator() as smtp:
        facility = GenericFacility({"notify": {"smtp": smtp.config()}})
        altdata = {"notification_type": "email", "email": "pi@example.org", "include_comments": True}
        request = make_request(
            altdata,
            target=Target("ZTF21a\r\nBcc: victim@example.org", 1.0, 1.0),
            requester="Eve\nX-Mailer: evil",
            comments=("hi\r\nTo: other@example.org",),
        )
        outcome = run(facility, "submit", request, EgressPolicy())
        (captured,) = smtp.messages
    assert outcome.state is State.SUBMITTED
    assert sorted(name.lower() for name in captured.message) == sorted(
        ["subject", "from", "to", "date", "message-id", "auto-submitted", "mime-version", "content-type"]
    )
    assert captured.rcpt_tos == ("pi@example.org",) and captured.message["To"] == "pi@example.org"
    assert captured.message["X-Mailer"] is None and captured.message["Bcc"] is None


def test_the_dry_run_of_an_email_is_the_message_as_it_would_be_sent():
    facility = GenericFacility({"notify": {"smtp": {"host": "mail.example.org", "from_address": "a@example.org", "username": "gw", "password": "smtp-pw-99"}}})
    call = facility.prepare(make_request({"notification_type": "email", "email": "pi@example.org"}))
    assert (call.protocol, call.destination) == ("SMTP", "smtp://mail.example.org:587")
    assert (call.headers["From"], call.headers["To"]) == ("a@example.org", "pi@example.org") and call.headers["Subject"]
    rendered = Transport(secrets=["smtp-pw-99"]).render(call)
    assert rendered.startswith("SMTP smtp://mail.example.org:587\nFrom: a@example.org\nTo: pi@example.org\nSubject: ") and "smtp-pw-99" not in rendered
    assert "GENERIC" in call.body


def test_the_untouched_form_with_skyportals_date_spelling_is_accepted_with_no_filter_chosen():
    """The form a SkyPortal observer leaves untouched: no filter picked (the observatory chooses),
    the window's dates as SkyPortal may write them, any spelling read as the UTC date."""
    facility = GenericFacility()
    served = facility.request_schema()
    assert "observation_choices" not in served.get("required", []) and served["properties"]["observation_choices"]["default"] == []
    assert all("format" not in served["properties"][key] for key in ("start_date", "end_date"))
    payload = facility.validate_payload({"start_date": "2026-12-01 13:45:39", "end_date": "2026-12-07T23:30:00-05:00"})
    assert (payload["start_date"], payload["end_date"], payload["observation_choices"]) == ("2026-12-01", "2026-12-08", [])
    with pytest.raises(PayloadError) as caught:
        facility.validate_payload({"start_date": "0000-01-01", "end_date": "2026-12-07"})
    assert [e.path for e in caught.value.errors] == ["$.start_date"] and "1900" in caught.value.errors[0].message
