"""Every delivery status docs/facilities/mma.md shows is one the code gives (the API answers with
``responses``, the scp, Slack and e-mail ones against their emulators), and the SkyPortal words
on the page are the adapter's."""

import dataclasses
import re
from pathlib import Path

import pytest
import requests
import responses

from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.plan import PLAN_KEY
from facility_apis.core.transport import Transport
from facility_apis.facilities.mma import MMAFacility
from facility_apis.skyportal import plans
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.sftp import SFTPEmulator
from facility_apis.testing.slack import SlackWebhookEmulator
from facility_apis.testing.smtp import SMTPEmulator

PAGE = Path(__file__).resolve().parents[1] / "docs" / "facilities" / "mma.md"
QUEUE = "https://queue.example.org"
URL = f"{QUEUE}/api/obsplans"
API = {"allocation_type": "API", "endpoint": QUEUE, "api_token": "d0cs-t0ken-123"}


def documented() -> set[str]:
    text = PAGE.read_text()
    section = text[text.index("(mma-statuses)=") : text.index("(mma-skyportal)=")]
    return set(re.findall(r"`([^`]+)`", section))


def example_plan():
    return MMAFacility().request_schema()["examples"][0][PLAN_KEY]


def request_for(altdata, remote_id=None, plan=None):
    payload = {PLAN_KEY: plan or example_plan()}
    return FollowupRequest(21, Target("2025-08-18T01:02:03", 1.0, 2.0), Allocation(6, altdata), payload, requester="observer", remote_id=remote_id)


QUEUED = "api:ToO_S250818k_ZTF_night1"
HELD = {key: value for key, value in example_plan().items() if key != "event"}
API_SCENARIOS = {
    "queued": ("submit", None, lambda m: m.put(URL, json={"status": "success", "message": "submitted"})),
    "held already": (
        "submit",
        None,
        lambda m: (m.put(URL, status=409, json={"status": "error", "message": "exists"}), m.get(URL, json={"status": "success", "data": [HELD]})),
    ),
    "refused": ("submit", None, lambda m: m.put(URL, status=400, json={"status": "error", "message": "targets[0].filter: missing"})),
    "too large": ("submit", None, lambda m: m.put(URL, status=413, json={"status": "error", "message": "Request Entity Too Large"})),
    "token": ("submit", None, lambda m: m.put(URL, status=401, json={"status": "error", "message": "Unauthorized"})),
    "503": ("submit", None, lambda m: m.put(URL, status=503)),
    "500": ("submit", None, lambda m: m.put(URL, status=500, body="Internal Server Error")),
    "lost": ("submit", None, lambda m: m.put(URL, body=requests.ReadTimeout("read timed out"))),
    "html": ("submit", None, lambda m: m.put(URL, body="<html><head><title>nginx</title></head></html>", content_type="text/html")),
    "429": ("submit", None, lambda m: m.put(URL, status=429, headers={"Retry-After": "7"})),
    "removed": ("delete", QUEUED, lambda m: m.delete(URL, json={"status": "success", "message": "deleted"})),
    "not held": ("delete", QUEUED, lambda m: m.delete(URL, status=404, json={"status": "error", "message": "not found"})),
    "removal 503": ("delete", QUEUED, lambda m: m.delete(URL, status=503)),
    "moved": ("delete", "scp:/data/in/ToO_x.json", lambda m: None),
}


def test_every_documented_queue_status_is_the_codes():
    page = documented()
    for name, (operation, remote_id, setup) in API_SCENARIOS.items():
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            setup(mock)
            with Transport(backoff=0, retries=1) as transport:
                status = perform(MMAFacility(), operation, request_for(API, remote_id), transport).status
        assert status in page, f"{name}: {status!r} is not on the page"


def test_the_documented_refusals_of_bad_input_are_the_codes():
    page = documented()
    incomplete = perform(MMAFacility(), "submit", request_for({"allocation_type": "API", "endpoint": QUEUE}), Transport()).status
    reversed_window = perform(MMAFacility(), "submit", request_for(API, plan={**example_plan(), "validity_window_mjd": [61001, 61000]}), Transport()).status
    assert {incomplete, reversed_window} <= page


def as_documented(status: str, server) -> str:
    """The emulator's address written as the page's example host, random names as the page's."""
    status = status.replace(f"127.0.0.1:{server.port}", "queue.example.org:22").replace("127.0.0.1:", "queue.example.org:")
    return re.sub(r"\.ToO_(\w+)\.json\.[0-9a-f]{12}\.part", r".ToO_\1.json.1a2b3c4d5e6f.part", status)


def test_every_documented_scp_status_is_the_codes():
    page = documented()
    with SFTPEmulator(users={"obsplans": "pw d0cs"}) as server:
        server.makedirs("/data/queue/incoming")
        egress = loopback_egress(server)
        facility = MMAFacility(egress=egress)
        altdata = {
            "allocation_type": "scp",
            "host": "127.0.0.1",
            "port": server.port,
            "username": "obsplans",
            "password": "pw d0cs",
            "directory": "/data/queue/incoming",
            "host_key": server.host_key,
        }
        with Transport(egress=egress) as transport:
            written = perform(facility, "submit", request_for(altdata), transport)
            removed = perform(facility, "delete", dataclasses.replace(request_for(altdata), remote_id=written.remote_id), transport)
            login = perform(facility, "submit", request_for({**altdata, "password": "wrong password"}), transport).status
            missing = perform(
                facility, "submit", request_for({**altdata, "directory": "/data/absent"}, plan={**example_plan(), "queue_name": "ToO_x"}), transport
            ).status
        statuses = [as_documented(s, server) for s in (written.status, removed.status, login, missing)]
    assert statuses[:3] == [
        "submitted: written to queue.example.org:/data/queue/incoming/ToO_S250818k_ZTF_night1.json (3 planned observations)",
        "deleted: removed queue.example.org:/data/queue/incoming/ToO_S250818k_ZTF_night1.json",
        "failed to submit: the SSH server queue.example.org:22 refused the login of obsplans",
    ]
    for status in statuses:
        assert status in page, f"{status!r} is not on the page"


def test_the_documented_slack_and_email_statuses_are_the_codes():
    page = documented()
    with SlackWebhookEmulator() as slack, SMTPEmulator() as smtp:
        slack.add_hook("T1", "B1", "FAKEmmaDocsSlackToken")
        egress = loopback_egress(slack)
        facility = MMAFacility({"notify": {"slack_base_url": slack.url, "skyportal_url": "https://fritz.example.org", "smtp": smtp.config()}}, egress=egress)
        posted = {"allocation_type": "slack", "slack_workspace": "T1", "slack_channel": "B1", "slack_token": "FAKEmmaDocsSlackToken"}
        mailed = {"allocation_type": "email", "email": "night-desk@example.org"}
        with Transport(egress=egress) as transport:
            statuses = [perform(facility, "submit", request_for(altdata), transport) for altdata in (posted, mailed)]
            cancelled = perform(facility, "delete", request_for(posted, statuses[0].remote_id), transport)
    assert [o.status for o in statuses] == [
        "submitted: posted to Slack (3 planned observations)",
        "submitted: e-mailed to night-desk@example.org (3 planned observations)",
    ]
    assert {o.status for o in statuses} | {cancelled.status} <= page


@pytest.mark.parametrize("words", [plans.SENT, f"{plans.REFUSED}: ", plans.REMOVED, "could not deliver the plan: ", "could not remove the plan: "])
def test_the_skyportal_words_on_the_page_are_the_adapters(words):
    assert words in PAGE.read_text()
