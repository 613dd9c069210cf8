"""Notification facilities through the gateway: a submission that is final (no polling), then an
update and a cancel that send the "updated" and "cancelled" messages, statuses reaching the
SkyPortal stub in order; GENERIC's API mode with this package's own gateway as its endpoint."""

from __future__ import annotations

import json
import logging

import pytest
from gateway_support import follow_and_deliver

from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.transport import Transport
from facility_apis.facilities.notification import GenericFacility
from facility_apis.gateway.api import make_app
from facility_apis.gateway.runner import AppThread
from facility_apis.gateway.store import Conflict, Store
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.skyportal.client import SkyPortalClient
from facility_apis.testing import SkyPortalStub
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.slack import SlackWebhookEmulator
from facility_apis.testing.smtp import SMTPEmulator

SP_TOKEN = "notify-skyportal-token-51c2"
SLACK_TOKEN = "FAKEgatewaySlackToken"
SMTP_PASSWORD = "gateway-smtp-pw-3e8d"
SLACK_PAYLOAD = {"observation_choices": ["ztfg"], "exposure_time": 60, "exposure_counts": 1}
GENERIC_PAYLOAD = {
    "observation_choices": ["ztfr"],
    "exposure_time": 300,
    "exposure_counts": 2,
    "maximum_airmass": 2,
    "minimum_lunar_distance": 30,
    "priority": 3,
    "start_date": "2026-11-21",
    "end_date": "2026-11-28",
}


@pytest.fixture
def slack():
    with SlackWebhookEmulator() as emulator:
        emulator.add_hook("TFAKEGW", "BFAKEGW", SLACK_TOKEN)
        yield emulator


@pytest.fixture
def smtp():
    with SMTPEmulator(users={"skyportal": SMTP_PASSWORD}) as server:
        yield server


@pytest.fixture
def skyportal():
    with SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as stub:
        yield stub


SLACK_ALTDATA = {"slack_workspace": "TFAKEGW", "slack_channel": "BFAKEGW", "slack_token": SLACK_TOKEN}


def facility_config(slack, smtp):
    return {
        "slack": {"notify": {"slack_base_url": slack.url, "skyportal_url": "https://fritz.example.org"}},
        "generic": {"notify": {"slack_base_url": slack.url, "smtp": smtp.config(username="skyportal", password=SMTP_PASSWORD)}},
    }


def follow(store: Store, slack, smtp, skyportal) -> None:
    """The worker until nothing is owed, then the outbox until everything is delivered."""
    worker = Worker(store, facility_config=facility_config(slack, smtp), settings=WorkerSettings(idle=0.05, egress=loopback_egress(slack)))
    assert follow_and_deliver(worker, store, skyportal.url, SP_TOKEN)


def test_submit_update_and_cancel_of_notifications_reach_people_and_skyportal_in_order(gateway_store, slack, smtp, skyportal, caplog):
    caplog.set_level(logging.DEBUG)
    store = gateway_store
    owner = store.clients.authenticate(store.clients.add("skyportal"))
    store.allocations.put(owner, 1, "slack", SLACK_ALTDATA, instrument_name="SEDM", filters=["ztfg", "ztfr"])
    store.allocations.put(owner, 2, "generic", {"notification_type": "email", "email": "pi@example.org, desk@example.org"}, pi="A. PI")
    skyportal.add_request(31, obj_id="ZTF26note1", allocation_id=1)
    skyportal.add_request(32, obj_id="ZTF26note2", allocation_id=2)
    on_slack = store.requests.add(1, Target("ZTF26note1", 10.0, -5.0), SLACK_PAYLOAD, followup_request_id=31, requester="observer")
    by_mail = store.requests.add(2, Target("ZTF26note2", 20.0, 5.0), GENERIC_PAYLOAD, followup_request_id=32, requester="observer")

    follow(store, slack, smtp, skyportal)
    assert store.requests.view(on_slack)["next_operation"] is None  # nothing to poll: the submission is final
    assert store.requests.change(on_slack, {**SLACK_PAYLOAD, "exposure_time": 90}, can_update=True) == "submitted"
    assert store.requests.change(by_mail, {**GENERIC_PAYLOAD, "priority": 5}, can_update=True) == "submitted"
    follow(store, slack, smtp, skyportal)
    assert store.requests.cancel(on_slack, can_delete=True) == "submitted"  # a delete call is due
    assert store.requests.cancel(by_mail, can_delete=True) == "submitted"
    follow(store, slack, smtp, skyportal)

    assert skyportal.statuses(31) == ["submitted: posted to Slack", "submitted: update posted to Slack", "deleted: cancellation posted to Slack"]
    assert skyportal.statuses(32) == [
        "submitted: e-mailed to pi@example.org, desk@example.org",
        "submitted: update e-mailed to pi@example.org, desk@example.org",
        "deleted: cancellation e-mailed to pi@example.org, desk@example.org",
    ]
    posts = slack.posts
    assert [p.text.split(":")[0] for p in posts] == ["New follow-up request", "Updated follow-up request", "Cancelled follow-up request"]
    reference = store.requests.view(on_slack)["remote_id"]
    assert all(reference in json.dumps(p.blocks) for p in posts) and "*Exposure time (s)*\\n90" in json.dumps(posts[1].blocks)
    mails = smtp.messages
    assert [m.message["Subject"].split(" - ")[1] for m in mails] == [
        "New follow-up request: ZTF26note2",
        "Updated follow-up request: ZTF26note2",
        "Cancelled follow-up request: ZTF26note2",
    ]
    assert mails[1].message["In-Reply-To"] == mails[2].message["In-Reply-To"] == mails[0].message["Message-ID"]
    assert "  Priority: 5" in mails[1].message.get_body(("plain",)).get_content()
    views = [store.requests.view(request_id) for request_id in (on_slack, by_mail)]
    assert [v["state"] for v in views] == ["deleted", "deleted"]
    assert [t["operation"] for t in views[1]["transactions"]] == ["submit", "update", "delete"]
    assert {t["request"]["method"] for t in views[1]["transactions"]} == {"SMTP"}
    stored = json.dumps(views) + json.dumps([r.body.decode() for r in skyportal.requests]) + caplog.text
    assert SLACK_TOKEN not in stored and SMTP_PASSWORD not in stored


def test_a_payload_changed_during_the_submission_is_sent_as_an_update_after_it(gateway_store, slack, smtp, skyportal):
    store = gateway_store
    owner = store.clients.authenticate(store.clients.add("skyportal"))
    store.allocations.put(owner, 1, "slack", SLACK_ALTDATA)
    request_id = store.requests.add(1, Target("ZTF26race", 1.0, 1.0), SLACK_PAYLOAD)
    (job,) = store.jobs.claim("worker-a", 1, lease=60)  # the submission is out...
    assert store.requests.change(request_id, {**SLACK_PAYLOAD, "exposure_time": 10}, can_update=True) == "pending"
    worker = Worker(store, facility_config=facility_config(slack, smtp), settings=WorkerSettings(egress=loopback_egress(slack)))
    try:
        with Transport(egress=loopback_egress(slack)) as transport:
            outcome = perform(worker.facility("slack"), "submit", job.request, transport)
        assert store.jobs.record(job, outcome, can_poll=False, can_delete=True, can_update=True)  # ...and lands
        assert store.requests.view(request_id)["next_operation"] == "update"
        assert worker.run_until_idle(30)
    finally:
        worker.close()
    assert [p.text.split(":")[0] for p in slack.posts] == ["New follow-up request", "Updated follow-up request"]
    assert "*Exposure time (s)*\\n60" in json.dumps(slack.posts[0].blocks) and "*Exposure time (s)*\\n10" in json.dumps(slack.posts[1].blocks)


def test_what_cannot_change(gateway_store):
    store = gateway_store
    owner = store.clients.authenticate(store.clients.add("skyportal"))
    store.allocations.put(owner, 1, "atlas", {"api_token": "t" * 20}, instrument_id=1)
    pending = store.requests.add(1, Target("ZTF26a", 1.0, 1.0), {"start_date": "2026-10-01", "end_date": "2026-10-31"})
    assert store.requests.change(pending, {"start_date": "2026-10-02", "end_date": "2026-10-31"}, can_update=False) == "pending"
    assert store.requests.view(pending)["payload"]["start_date"] == "2026-10-02"  # the submission will carry it
    held = store.requests.add(1, Target("ZTF26b", 1.0, 1.0), {}, remote_id="https://atlas.example/queue/1/")
    with pytest.raises(Conflict, match="held by atlas, which cannot change it: cancel it and submit a new one"):
        store.requests.change(held, {"start_date": "2026-10-02"}, can_update=False)
    store.requests.cancel(pending, can_delete=True)
    with pytest.raises(Conflict, match="it can no longer change"):
        store.requests.change(pending, {}, can_update=True)


def test_generic_api_mode_forwards_to_this_packages_gateway(tmp_path, secret_key, fast_schedule, slack, smtp, skyportal):
    from facility_apis.gateway.crypto import SecretBox

    store = Store(f"sqlite:///{tmp_path / 'gw.db'}", SecretBox(secret_key), schedule=fast_schedule)
    token = store.clients.add("skyportal")
    owner = store.clients.authenticate(token)
    store.allocations.put(owner, 7, "slack", SLACK_ALTDATA, filters=["ztfg", "ztfr"])  # the gateway's allocation: SkyPortal's id 7
    skyportal.add_source("ZTF26fwd", 150.1, 2.2)
    skyportal.add_request(41, obj_id="ZTF26fwd", allocation_id=7, payload=dict(GENERIC_PAYLOAD))
    client = SkyPortalClient(skyportal.url, SP_TOKEN)
    try:
        app = make_app(store, skyportal=client, facility_config=facility_config(slack, smtp), egress=loopback_egress(slack))
        with AppThread(app) as http:
            egress = loopback_egress(http.url)
            generic = GenericFacility(egress=egress)
            altdata = {"notification_type": "API", "endpoint": f"{http.url}/api/followup_request", "api_token": token}
            allocation = Allocation(7, altdata, filters=("ztfg", "ztfr"))

            def call(operation, payload=GENERIC_PAYLOAD, remote_id=None):
                request = FollowupRequest(41, Target("ZTF26fwd", 150.1, 2.2), allocation, payload, requester="observer", remote_id=remote_id)
                with Transport(egress=egress) as transport:
                    return perform(generic, operation, request, transport)

            submitted = call("submit")
            assert submitted.status == "submitted: accepted by 127.0.0.1 as request 1" and submitted.remote_id == "1"
            view = store.requests.view(1)
            assert (view["obj_id"], view["ra"], view["dec"], view["allocation_id"]) == ("ZTF26fwd", 150.1, 2.2, 7)
            assert view["payload"] == {"observation_choices": ["ztfr"], "exposure_time": 300, "exposure_counts": 2}  # SLACK's own fields
            follow(store, slack, smtp, skyportal)

            updated = call("update", {**GENERIC_PAYLOAD, "exposure_time": 30}, remote_id="1")
            assert updated.status == "submitted: update accepted by 127.0.0.1 (request 1)"
            assert store.requests.view(1)["next_operation"] == "update"
            follow(store, slack, smtp, skyportal)

            deleted = call("delete", remote_id="1")
            assert deleted.status == "deleted: deleted at 127.0.0.1 (request 1)"
            follow(store, slack, smtp, skyportal)
            again = call("update", remote_id="1")
            assert again.status == "rejected: 127.0.0.1: follow-up request 1 is already 'deleted: cancellation posted to Slack': it can no longer change"
    finally:
        client.transport.close()
        store.close()
    assert [p.text.split(":")[0] for p in slack.posts] == ["New follow-up request", "Updated follow-up request", "Cancelled follow-up request"]
    assert skyportal.statuses(41) == ["submitted: posted to Slack", "submitted: update posted to Slack", "deleted: cancellation posted to Slack"]
    assert token not in json.dumps([t.as_dict() for o in (submitted, updated, deleted) for t in o.transactions])


def test_put_changes_a_payload_but_never_moves_a_request(tmp_path, secret_key, fast_schedule):
    import requests

    from facility_apis.gateway.crypto import SecretBox

    store = Store(f"sqlite:///{tmp_path / 'put.db'}", SecretBox(secret_key), schedule=fast_schedule)
    token = store.clients.add("skyportal")
    owner = store.clients.authenticate(token)
    store.allocations.put(owner, 7, "slack", SLACK_ALTDATA)
    store.allocations.put(owner, 8, "slack", SLACK_ALTDATA)
    request_id = store.requests.add(7, Target("ZTF26put", 1.0, 2.0), SLACK_PAYLOAD)
    headers = {"Authorization": f"token {token}"}
    try:
        with AppThread(make_app(store)) as http:
            url = f"{http.url}/api/followup_request/{request_id}"

            def put(body, where=url):
                return requests.put(where, json=body, headers=headers, timeout=10)

            moved = put({"allocation_id": 8, "obj_id": "ZTF26put", "payload": SLACK_PAYLOAD})
            assert moved.status_code == 400
            assert moved.json()["data"]["errors"] == ["allocation_id: must be the request's own allocation (a request cannot move)"]
            elsewhere = put({"allocation_id": 7, "target": {"id": "ZTF26put", "ra": 3.0, "dec": 2.0}, "payload": SLACK_PAYLOAD})
            assert elsewhere.json()["data"]["errors"] == ["target: cannot change: cancel the request and submit a new one"]
            other = put({"allocation_id": 7, "obj_id": "ZTF26other", "payload": SLACK_PAYLOAD})
            assert other.json()["data"]["errors"] == ["obj_id: must be the request's own source"]
            bad = put({"allocation_id": 7, "obj_id": "ZTF26put", "payload": {**SLACK_PAYLOAD, "exposure_time": -1}})
            assert bad.status_code == 400 and bad.json()["data"]["errors"] == ["payload.exposure_time: must be greater than 0"]
            assert store.requests.view(request_id)["payload"] == {**SLACK_PAYLOAD}  # nothing changed by the refusals
            changed = put({"allocation_id": 7, "obj_id": "ZTF26put", "payload": {**SLACK_PAYLOAD, "exposure_time": 5}})
            assert changed.status_code == 200 and changed.json()["data"] == {"id": request_id, "state": "pending", "ignored": []}
            assert store.requests.view(request_id)["payload"]["exposure_time"] == 5
            assert put({"allocation_id": 7, "obj_id": "ZTF26put", "payload": SLACK_PAYLOAD}, f"{http.url}/api/followup_request/999").status_code == 404
    finally:
        store.close()


def test_a_filter_the_allocations_instrument_lacks_is_refused_at_intake(tmp_path, secret_key, fast_schedule):
    """SLACK's form offers the instrument's filters only; a request naming another one (a direct
    body, a GENERIC body, a change) is a 400 on the field at intake, not a rejection at submission."""
    import requests

    from facility_apis.gateway.crypto import SecretBox

    store = Store(f"sqlite:///{tmp_path / 'filters.db'}", SecretBox(secret_key), schedule=fast_schedule)
    token = store.clients.add("skyportal")
    headers = {"Authorization": f"token {token}"}
    slack_allocation = {"facility": "slack", "altdata": SLACK_ALTDATA, "instrument_name": "Observatory", "filters": ["ztfg", "ztfr"]}
    unusable = {**SLACK_PAYLOAD, "observation_choices": ["ztfg", "sdssu"]}
    target = {"id": "ZTF26flt", "ra": 1.0, "dec": 2.0}
    try:
        with AppThread(make_app(store)) as http:
            assert requests.put(f"{http.url}/api/allocations/7", json=slack_allocation, headers=headers, timeout=10).status_code == 200
            direct, generic = {"allocation_id": 7, "target": target, "payload": unusable}, {"allocation_id": 7, "obj_id": "ZTF26flt", "payload": unusable}
            for body in (direct, generic):
                refused = requests.post(f"{http.url}/api/followup_request", json=body, headers=headers, timeout=10)
                assert refused.status_code == 400, refused.text
                assert refused.json()["data"]["errors"] == ["payload.observation_choices[1]: must be one of ['ztfg', 'ztfr']"]
            assert store.requests.newest() == []
            usable = {"allocation_id": 7, "target": target, "payload": SLACK_PAYLOAD}
            request_id = requests.post(f"{http.url}/api/followup_request", json=usable, headers=headers, timeout=10).json()["data"]["id"]
            change = {"allocation_id": 7, "target": target, "payload": unusable}
            changed = requests.put(f"{http.url}/api/followup_request/{request_id}", json=change, headers=headers, timeout=10)
            assert changed.status_code == 400 and changed.json()["data"]["errors"] == ["payload.observation_choices[1]: must be one of ['ztfg', 'ztfr']"]
            assert store.requests.view(request_id)["payload"]["observation_choices"] == ["ztfg"]
    finally:
        store.close()
