"""SEDM end to end: the gateway's store, worker and outbox against SEDM's intake emulator and the
SkyPortal stub with facility_apis's SEDMListener (SQLite and PostgreSQL); SEDM's robot reporting
through the listener (and refused for another instrument's request); the notification branch
against the Slack emulator; SkyPortal's direct mode with the source's photometry."""

from __future__ import annotations

import asyncio
import json

import pytest
from gateway_support import QUICK_DELIVERY as QUICK

from facility_apis.core.interface import Allocation, FollowupRequest, HostPoint, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.transport import Transport
from facility_apis.facilities.sedm import SEDMFacility
from facility_apis.gateway.outbox import Deliverer
from facility_apis.gateway.store import Store
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.skyportal import FacilityMessageListener, SEDMListener
from facility_apis.testing import SkyPortalStub
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.sedm import SEDMIntakeEmulator
from facility_apis.testing.slack import SlackWebhookEmulator

GATEWAY_TOKEN = "sedm-e2e-gateway-token"
ROBOT_TOKEN = "sedm-e2e-robot-token"
SLACK_TOKEN = "FAKEsedmSlackToken"
PAYLOAD = {"observation_type": "3-shot+IFU", "priority": 4, "start_date": "2036-11-21", "end_date": "2036-11-28"}
POINTS = (HostPoint(None, None, 120.0, 2.0, mjd=61001.30, filter="ztfr", mag=18.70), HostPoint(None, None, 80.0, 2.0, mjd=61000.50, filter="ztfg", mag=19.20))
PRIOR = {"g": {"jd": 2461001.0, "mag": 19.2, "obsdate": "2025-11-21"}, "r": {"jd": 2461001.8, "mag": 18.7, "obsdate": "2025-11-22"}}


@pytest.fixture
def skyportal():
    tokens = {GATEWAY_TOKEN: {"Post from SEDMListener"}, ROBOT_TOKEN: {"Post from SEDMListener"}}
    listeners = {"SEDMListener": SEDMListener, "FacilityMessageListener": FacilityMessageListener}
    with SkyPortalStub(tokens=tokens, listeners=listeners) as stub:
        yield stub


@pytest.fixture
def sedm(skyportal):
    with SEDMIntakeEmulator(skyportal_url=skyportal.url, skyportal_token=ROBOT_TOKEN) as emulator:
        yield emulator


class Gateway:
    """A client, an SEDM allocation, a worker and a deliverer over ``store``."""

    def __init__(self, store: Store, sedm: SEDMIntakeEmulator, skyportal: SkyPortalStub):
        self.store, self.skyportal = store, skyportal
        self.owner = store.clients.authenticate(store.clients.add("skyportal"))
        store.allocations.put(self.owner, 1, "sedm", {"programname": "Transients"}, instrument_id=4, instrument_name="SEDM", group_ids=[1])
        settings = WorkerSettings(idle=0.05, egress=loopback_egress(sedm))
        self.worker = Worker(store, facility_config={"sedm": {"endpoint": f"{sedm.url}/add_request"}}, settings=settings)
        self.deliverer = Deliverer.for_skyportal(store, skyportal.url, GATEWAY_TOKEN, settings=QUICK)

    def add(self, followup_id: int) -> int:
        obj_id = f"ZTF26sedm{followup_id}"
        instrument = {"instrument_id": 4, "instrument_name": "SEDM", "api_classname": "SEDMAPI"}
        self.skyportal.add_request(followup_id, listener="SEDMListener", obj_id=obj_id, allocation_id=1, **instrument)
        target = Target(obj_id, 210.5, 12.25, photometry=POINTS)
        checked = SEDMFacility().validate_payload(PAYLOAD, target)  # as the hand-off does: decided with the source, then stored
        return self.store.requests.add(1, target, checked, owner_id=self.owner, followup_request_id=followup_id, requester="observer")

    def settle(self) -> None:
        assert self.worker.run_until_idle(30) and self.deliverer.run_until_empty(30)

    def close(self) -> None:
        self.worker.close()
        self.deliverer.close()


@pytest.fixture
def gateway(gateway_store, sedm, skyportal):
    gw = Gateway(gateway_store, sedm, skyportal)
    yield gw
    gw.close()


def test_a_request_reaches_sedm_as_an_upload_and_sedms_robot_reports_through_the_listener(gateway, sedm, skyportal):
    request_id = gateway.add(51)
    gateway.settle()
    (upload,) = [r for r in sedm.requests if r.path == "/add_request"]
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    (document,) = sedm.documents
    assert {k: document[k] for k in ("status", "requestid", "Filters", "Followup", "programname", "username", "priority")} == {
        "status": "new", "requestid": 51, "Filters": "g,r,i", "Followup": "IFU", "programname": "Transients", "username": "observer", "priority": 4,
    }  # fmt: skip
    assert document["prior_photometry"] == PRIOR
    assert [e.status for e in sedm.entries(51)] == ["PENDING"]
    assert skyportal.statuses(51) == ["submitted: SEDM: Accepted Request"]
    view = gateway.store.requests.view(request_id)
    assert (view["state"], view["remote_id"], view["next_operation"]) == ("submitted", "51", None)  # nothing to poll

    assert sedm.complete(51, "Completed Automatically 20261122T03:14:15") is None
    assert skyportal.statuses(51) == ["submitted: SEDM: Accepted Request", "Completed Automatically 20261122T03:14:15"]


def test_the_robot_is_refused_for_another_instruments_request(gateway, sedm, skyportal):
    skyportal.add_request(52, listener="SEDMListener", instrument_id=1, instrument_name="ATLAS", api_classname="ATLASAPI", allocation_id=9)
    error = sedm.report(52, "Expired")
    assert "FollowupRequest 52 is on instrument ATLAS, which SEDM does not run" in error
    assert skyportal.statuses(52) == [] and sedm.robot_reports == [(52, "Expired", error)]


def test_cancels_delete_at_sedm_unless_it_is_observing(gateway, sedm, skyportal):
    waiting, observing = gateway.add(53), gateway.add(54)
    gateway.settle()
    sedm.observe(54)
    for request_id in (waiting, observing):
        assert gateway.store.requests.cancel(request_id, gateway.owner, can_delete=True) == "submitted"
    gateway.settle()
    assert skyportal.statuses(53) == ["submitted: SEDM: Accepted Request", "deleted: SEDM: Accepted Deletion"]
    # A refused delete keeps the request's own status and says why (gateway/policy.py, NOT_DELETED).
    refused = (
        "submitted: SEDM: Accepted Request; not deleted at the facility: "
        "SEDM did not delete request 54: it is being observed (ACTIVE) or SEDM has no such request (Rejected Deletion, ACTIVE)"
    )
    assert skyportal.statuses(54) == ["submitted: SEDM: Accepted Request", refused]
    assert [e.status for e in sedm.entries(53)] == ["CANCELED"] and [e.status for e in sedm.entries(54)] == ["ACTIVE"]
    assert [d["status"] for d in sedm.documents] == ["new", "new", "delete", "delete"]


def test_a_refused_request_and_a_lost_answer(gateway, sedm, skyportal):
    sedm.refuse_next()
    gateway.add(55)
    gateway.settle()
    assert skyportal.statuses(55) == ["rejected: SEDM: Rejected Request"]
    sedm.faults.add("drop", path_prefix="/add_request")
    lost = gateway.add(56)
    gateway.settle()
    (status,) = skyportal.statuses(56)
    assert status.startswith("failed: SEDM may hold request 56 (") and status.endswith("check SEDM's queue before submitting again")
    assert gateway.store.requests.view(lost)["next_operation"] is None
    assert len([r for r in sedm.requests if r.path == "/add_request"]) == 2  # never sent again


def test_skyportals_default_endpoint_only_files_the_request(sedm):
    """SkyPortal's default ``app.sedm_endpoint`` is ``/add_fritz``: SEDM files the document and
    answers ``Accepted Fritz CGI`` without making a request."""
    request = FollowupRequest(11, Target("ZTF26fritz", 1.0, 2.0), Allocation(5, {}, group="Transients"), PAYLOAD, requester="observer", followup_request_id=61)
    with Transport(egress=loopback_egress(sedm)) as transport:
        outcome = perform(SEDMFacility({"endpoint": f"{sedm.url}/add_fritz"}, egress=loopback_egress(sedm)), "submit", request, transport)
    assert outcome.status == "submitted: SEDM: Accepted Fritz CGI"
    assert [d["requestid"] for d in sedm.filed] == [61] and sedm.entries() == []


# -- the notification branch -------------------------------------------------------------------


def test_each_action_is_announced_on_slack_and_a_failed_notice_costs_nothing(sedm):
    with SlackWebhookEmulator() as slack:
        slack.add_hook("TFAKESEDM", "BFAKESEDM", SLACK_TOKEN)
        egress = loopback_egress(sedm, slack)
        facility = SEDMFacility({"endpoint": f"{sedm.url}/add_request", "notify": {"slack_base_url": slack.url}}, egress=egress)
        hook = {"slack_workspace": "TFAKESEDM", "slack_channel": "BFAKESEDM", "slack_token": SLACK_TOKEN}
        allocation = Allocation(5, {"programname": "Transients", "notification_type": "slack", **hook}, group="Transients")
        request = FollowupRequest(11, Target("ZTF26note", 1.0, 2.0), allocation, PAYLOAD, requester="observer", followup_request_id=71)
        with Transport(egress=egress) as transport:
            submitted = perform(facility, "submit", request, transport)
            changed = {**PAYLOAD, "priority": 5}
            followed = FollowupRequest(
                11, request.target, allocation, changed, requester="observer", followup_request_id=71, remote_id="71", cursor=submitted.cursor
            )
            updated = perform(facility, "update", followed, transport)
            slack.set_state("TFAKESEDM", "BFAKESEDM", "archived")
            deleted = perform(facility, "delete", followed, transport)
        assert submitted.status == "submitted: SEDM: Accepted Request; posted to Slack" and submitted.cursor.startswith("notice-")
        assert updated.status == "submitted: SEDM: Accepted Edit; posted to Slack"
        assert deleted.state is State.DELETED and deleted.status.startswith("deleted: SEDM: Accepted Deletion; the notification failed: ")
        posts = slack.posts
        assert len(posts) == 2 and all(submitted.cursor in json.dumps(post.body) for post in posts)
        records = json.dumps([t.as_dict() for o in (submitted, updated, deleted) for t in o.transactions])
        assert SLACK_TOKEN not in records + submitted.status + updated.status + deleted.status
        assert [d["status"] for d in sedm.documents] == ["new", "edit", "delete"]


# -- SkyPortal's direct mode -------------------------------------------------------------------


def test_skyportal_direct_mode_sends_the_sources_prior_photometry(sedm):
    from facility_apis.skyportal import SEDMAPI, configure, reset
    from facility_apis.testing.skyportal_models import AsyncSession, Photometry, make_request, use_fake_models

    configure(facilities={"sedm": {"endpoint": f"{sedm.url}/add_request"}}, egress=loopback_egress(sedm))
    try:
        with use_fake_models() as models:
            request = make_request(payload={"observation_type": "IFU"}, instrument=(4, "SEDM", []), api_classname="SEDMAPI", request_id=81)
            request.obj.photometry = [
                Photometry(1, flux=120.0, fluxerr=2.0, mjd=61001.30, filter="ztfr", mag=18.70),
                Photometry(2, flux=None, fluxerr=2.0, mjd=61002.00, filter="ztfr", mag=None),
            ]
            session = AsyncSession(request)
            asyncio.run(SEDMAPI.submit(request, session))
            assert request.status == "submitted: SEDM: Accepted Request" and models.photometry_loads == 1
            asyncio.run(SEDMAPI.update(request, AsyncSession(request)))
            assert request.status == "submitted: SEDM: Accepted Edit"
            asyncio.run(SEDMAPI.delete(request, AsyncSession(request)))
            assert request.status == "deleted: SEDM: Accepted Deletion"
    finally:
        reset()
    new, edit, delete = sedm.documents
    assert (new["requestid"], new["programname"], new["prior_photometry"]) == (81, "Group 2", {"r": {"jd": 2461001.8, "mag": 18.7, "obsdate": "2025-11-22"}})
    assert (edit["status"], delete["status"]) == ("edit", "delete") and SEDMAPI.implements()["update"] and not SEDMAPI.implements()["get"]


def test_an_edit_of_a_request_sedm_observed_or_observes_makes_another(sedm):
    """SEDM's cancel takes every entry of the id that is not ACTIVE (an earlier version, a finished
    one): an edit after the robot finished makes a new request, and one after an earlier edit
    while the robot observes makes a second beside it (docs/facilities/sedm.md, Limitations)."""
    facility = SEDMFacility({"endpoint": f"{sedm.url}/add_request"}, egress=loopback_egress(sedm))

    def send(operation, followup_id, remote_id=None):
        allocation = Allocation(5, {}, group="Transients")
        target = Target("ZTF26edit", 1.0, 2.0)
        request = FollowupRequest(followup_id, target, allocation, PAYLOAD, requester="observer", followup_request_id=followup_id, remote_id=remote_id)
        with Transport(egress=loopback_egress(sedm)) as transport:
            return perform(facility, operation, request, transport)

    assert send("submit", 62).status == "submitted: SEDM: Accepted Request"
    assert send("update", 62, remote_id="62").status == "submitted: SEDM: Accepted Edit"
    sedm.observe(62)
    assert send("update", 62, remote_id="62").status == "submitted: SEDM: Accepted Edit"
    assert [e.status for e in sedm.entries(62)] == ["CANCELED", "ACTIVE", "PENDING"]
    assert send("submit", 63).status == "submitted: SEDM: Accepted Request"
    sedm.complete(63)
    assert send("update", 63, remote_id="63").status == "submitted: SEDM: Accepted Edit"
    assert [e.status for e in sedm.entries(63)] == ["CANCELED", "PENDING"]
def test_through_the_gateway_a_failed_notice_leaves_the_accepted_request_submitted_and_is_logged_masked(gateway_store, sedm, skyportal, caplog):
    """docs/notifications.md: SEDM accepted the request, then the Slack notice failed (the
    channel is archived). The request stays ``submitted`` and followed as usual; the failure is
    said in its status and logged as a warning, and the webhook token appears in neither."""
    import logging

    with SlackWebhookEmulator() as slack:
        slack.add_hook("TFAKEGWN", "BFAKEGWN", SLACK_TOKEN)
        slack.set_state("TFAKEGWN", "BFAKEGWN", "archived")
        owner = gateway_store.clients.authenticate(gateway_store.clients.add("skyportal"))
        hook = {"slack_workspace": "TFAKEGWN", "slack_channel": "BFAKEGWN", "slack_token": SLACK_TOKEN}
        altdata = {"programname": "Transients", "notification_type": "slack", **hook}
        gateway_store.allocations.put(owner, 1, "sedm", altdata, instrument_id=4, instrument_name="SEDM", group_ids=[1])
        instrument = {"instrument_id": 4, "instrument_name": "SEDM", "api_classname": "SEDMAPI"}
        skyportal.add_request(81, listener="SEDMListener", obj_id="ZTF26gwnote", allocation_id=1, **instrument)
        target = Target("ZTF26gwnote", 210.5, 12.25, photometry=POINTS)
        payload = SEDMFacility().validate_payload(PAYLOAD, target)
        request_id = gateway_store.requests.add(1, target, payload, owner_id=owner, followup_request_id=81, requester="observer")
        config = {"sedm": {"endpoint": f"{sedm.url}/add_request", "notify": {"slack_base_url": slack.url}}}
        worker = Worker(gateway_store, facility_config=config, settings=WorkerSettings(idle=0.05, egress=loopback_egress(sedm, slack)))
        deliverer = Deliverer.for_skyportal(gateway_store, skyportal.url, GATEWAY_TOKEN, settings=QUICK)
        try:
            with caplog.at_level(logging.WARNING):
                assert worker.run_until_idle(30) and deliverer.run_until_empty(30)
        finally:
            worker.close()
            deliverer.close()
    view = gateway_store.requests.view(request_id)
    assert (view["state"], view["remote_id"]) == ("submitted", "81"), view["status"]
    assert view["status"].startswith("submitted: SEDM: Accepted Request; the notification failed: ")
    assert skyportal.statuses(81) == [view["status"]]
    (warning,) = [r for r in caplog.records if "notice about request" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "the request stays as SEDM left it" in warning.getMessage()
    assert SLACK_TOKEN not in caplog.text + json.dumps(view)
