"""Every status GENERIC and SLACK can show is in their pages' status sections: each scenario runs
the facility (HTTP answered by ``responses``, e-mail by the SMTP emulator) and looks its status up,
numbers replaced by ``N`` and the emulator's address by the page's ``mail.example.org:587``."""

import re
import socket
from pathlib import Path

import pytest
import requests
import responses

from facility_apis.core.egress import EgressPolicy
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.transport import Transport
from facility_apis.facilities.notification import GenericFacility, SlackFacility
from facility_apis.testing.smtp import SMTPEmulator
from facility_apis.testing.tls import make_tls_files

DOCS = Path(__file__).resolve().parent.parent / "docs" / "facilities"
WEBHOOK = "https://hooks.slack.com/services/TEXAMPLE/BEXAMPLE/FAKEexampleWebhookToken"
ENDPOINT = "https://partner.example.org/api/followup_request"
SLACK_ALTDATA = {"slack_workspace": "TEXAMPLE", "slack_channel": "BEXAMPLE", "slack_token": "FAKEexampleWebhookToken"}
API_ALTDATA = {"notification_type": "API", "endpoint": ENDPOINT, "api_token": "0123456789abcdef"}
SLACK_PAYLOAD = {"observation_choices": ["ztfg"], "exposure_time": 60, "exposure_counts": 1}
GENERIC_PAYLOAD = {
    "observation_choices": ["ztfg"], "exposure_time": 300, "exposure_counts": 1, "maximum_airmass": 2,
    "minimum_lunar_distance": 30, "priority": 3, "start_date": "2026-11-21", "end_date": "2026-11-28",
}  # fmt: skip


def spans(page: str) -> set[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    name = page.removesuffix(".md")
    section = text[text.index(f"({name}-statuses)=") : text.index("## What differs")]
    return {re.sub(r"\d+", "N", span) for span in re.findall(r"`([^`]+)`", section)}


def normalised(status: str) -> str:
    return re.sub(r"\d+", "N", re.sub(r"127\.0\.0\.1:\d+", "mail.example.org:587", status))


def run(facility, operation, request, egress=None):
    with Transport(backoff=0, retries=0, egress=egress) as transport:
        return perform(facility, operation, request, transport).status


def request_for(altdata, payload, remote_id=None):
    return FollowupRequest(1, Target("ZTF26docs", 150.0, -20.0), Allocation(5, altdata, filters=("ztfg", "ztfr")), payload, remote_id=remote_id)


SLACK_ANSWERS = {
    "posted": ("submit", None, (200, "ok")),
    "invalid_token": ("submit", None, (403, "invalid_token")),
    "no_service": ("submit", None, (404, "no_service")),
    "channel_not_found": ("submit", None, (404, "channel_not_found")),
    "channel_is_archived": ("submit", None, (410, "channel_is_archived")),
    "action_prohibited": ("submit", None, (403, "action_prohibited")),
    "invalid_blocks": ("submit", None, (400, "invalid_blocks")),
    "rollup_error": ("submit", None, (500, "rollup_error")),
    "ok-less 200": ("submit", None, (200, "")),
    "503": ("submit", None, (503, "")),
    "429": ("submit", None, (429, "", {"Retry-After": "30"})),
    "cannot connect": ("submit", None, requests.ConnectTimeout()),
    "no answer": ("submit", None, requests.ReadTimeout()),
    "update": ("update", "notice-0123456789ab", (200, "ok")),
    "update fails": ("update", "notice-0123456789ab", (500, "rollup_error")),
    "cancel": ("delete", "notice-0123456789ab", (200, "ok")),
    "cancel refused": ("delete", "notice-0123456789ab", (410, "channel_is_archived")),
    "never posted": ("delete", None, None),
}


def _answer(mock, method, url, answer):
    if answer is None:
        return
    if isinstance(answer, Exception):
        mock.add(method, url, body=answer)
    else:
        status, body, *headers = answer
        mock.add(method, url, status=status, body=body, headers=headers[0] if headers else {})


@pytest.mark.parametrize("scenario", list(SLACK_ANSWERS))
def test_every_slack_status_is_documented(scenario):
    operation, remote_id, answer = SLACK_ANSWERS[scenario]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _answer(mock, "POST", WEBHOOK, answer)
        status = run(SlackFacility(), operation, request_for(SLACK_ALTDATA, SLACK_PAYLOAD, remote_id))
    assert normalised(status) in spans("slack.md"), status


@pytest.mark.parametrize(
    ("altdata", "payload"),
    [({k: v for k, v in SLACK_ALTDATA.items() if k != "slack_token"}, SLACK_PAYLOAD), (SLACK_ALTDATA, {**SLACK_PAYLOAD, "observation_choices": ["ztfi"]})],
    ids=["bad altdata", "bad payload"],
)
def test_slack_refusals_before_sending_are_documented(altdata, payload):
    assert normalised(run(SlackFacility(), "submit", request_for(altdata, payload))) in spans("slack.md")


REQUEST_17 = f"{ENDPOINT}/17"
API_ANSWERS = {
    "accepted": ("submit", None, "POST", ENDPOINT, (200, '{"status": "success", "data": {"id": 17}}')),
    "refused": ("submit", None, "POST", ENDPOINT, (400, '{"status": "error", "message": "Allocation 5 has no hours left"}')),
    "ignored": ("submit", None, "POST", ENDPOINT, (200, '{"status": "success", "data": {"id": null, "ignored": true, "message": "duplicate request"}}')),
    "no id": ("submit", None, "POST", ENDPOINT, (200, '{"status": "success", "data": {}}')),
    "empty": ("submit", None, "POST", ENDPOINT, (200, "")),
    "credentials": ("submit", None, "POST", ENDPOINT, (401, '{"status": "error", "message": "Credentials malformed"}')),
    "server error": ("submit", None, "POST", ENDPOINT, (500, "Internal Server Error")),
    "cannot connect": ("submit", None, "POST", ENDPOINT, requests.ConnectTimeout()),
    "updated": ("update", "17", "PUT", REQUEST_17, (200, '{"status": "success"}')),
    "update gone": ("update", "17", "PUT", REQUEST_17, (404, '{"status": "error", "message": "not found"}')),
    "deleted": ("delete", "17", "DELETE", REQUEST_17, (200, '{"status": "success"}')),
    "already gone": ("delete", "17", "DELETE", REQUEST_17, (404, "")),
    "delete refused": ("delete", "17", "DELETE", REQUEST_17, (400, '{"status": "error", "message": "request is running"}')),
    "never sent": ("delete", None, "DELETE", REQUEST_17, None),
}


@pytest.mark.parametrize("scenario", list(API_ANSWERS))
def test_every_generic_api_status_is_documented(scenario):
    operation, remote_id, method, url, answer = API_ANSWERS[scenario]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _answer(mock, method, url, answer)
        status = run(GenericFacility(), operation, request_for(API_ALTDATA, GENERIC_PAYLOAD, remote_id))
    assert normalised(status) in spans("generic.md"), status


def test_generic_egress_refusals_are_documented():
    private = {**API_ALTDATA, "endpoint": "https://10.20.30.40/api/followup_request"}
    assert normalised(run(GenericFacility(), "submit", request_for(private, GENERIC_PAYLOAD))) in spans("generic.md")

    def resolver(host, port, *args):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.20", port))]

    egress = EgressPolicy(resolve=resolver)
    status = run(GenericFacility(egress=egress), "submit", request_for(API_ALTDATA, GENERIC_PAYLOAD), egress)
    assert normalised(status) in spans("generic.md")


def test_generic_slack_mode_statuses_are_documented():
    altdata = {"notification_type": "slack", **SLACK_ALTDATA}
    with responses.RequestsMock() as mock:
        mock.add("POST", WEBHOOK, status=404, body="channel_not_found")
        mock.add("POST", WEBHOOK, status=200, body="ok")
        statuses = [run(GenericFacility(), "submit", request_for(altdata, GENERIC_PAYLOAD)) for _ in range(2)]
    assert {normalised(status) for status in statuses} <= spans("generic.md")


def _email(smtp, *, addresses="pi@example.org, desk@example.org", **smtp_config):
    facility = GenericFacility({"notify": {"smtp": smtp.config(**smtp_config)}})
    return facility, {"notification_type": "email", "email": addresses}


def test_every_generic_email_status_is_documented(tmp_path):
    documented = spans("generic.md")
    tls = make_tls_files(tmp_path / "tls")
    other = make_tls_files(tmp_path / "other")
    statuses: list[str] = []
    with SMTPEmulator(refuse={"gone@example.org"}) as smtp:
        facility, altdata = _email(smtp)
        statuses.append(run(facility, "submit", request_for(altdata, GENERIC_PAYLOAD)))
        facility, one = _email(smtp, addresses="pi@example.org")
        statuses.append(run(facility, "update", request_for(one, GENERIC_PAYLOAD, "<1@example.org>")))
        statuses.append(run(facility, "delete", request_for(one, GENERIC_PAYLOAD, "<1@example.org>")))
        statuses.append(run(facility, "delete", request_for(one, GENERIC_PAYLOAD)))
        facility, some = _email(smtp, addresses="pi@example.org, gone@example.org")
        statuses.append(run(facility, "submit", request_for(some, GENERIC_PAYLOAD)))
        facility, none = _email(smtp, addresses="gone@example.org")
        statuses.append(run(facility, "submit", request_for(none, GENERIC_PAYLOAD)))
        smtp.drop_data()
        statuses.append(run(facility, "submit", request_for(altdata, GENERIC_PAYLOAD)))
        facility, _ = _email(smtp, security="starttls", port=smtp.port)
        statuses.append(run(facility, "submit", request_for(altdata, GENERIC_PAYLOAD)))
        smtp.down()
        facility, _ = _email(smtp)
        statuses.append(run(facility, "submit", request_for(altdata, GENERIC_PAYLOAD)))
    with SMTPEmulator(security="starttls", tls=tls.server_context(), users={"skyportal": "right"}) as smtp:
        facility, _ = _email(smtp, username="skyportal", password="wrong", ca_file=str(tls.ca_file))
        statuses.append(run(facility, "submit", request_for(altdata, GENERIC_PAYLOAD)))
        facility, _ = _email(smtp, username="skyportal", password="right", ca_file=str(other.ca_file))
        statuses.append(run(facility, "submit", request_for(altdata, GENERIC_PAYLOAD)))
    statuses.append(run(GenericFacility(), "submit", request_for(altdata, GENERIC_PAYLOAD)))
    missing = [status for status in statuses if normalised(status) not in documented]
    assert missing == []
