"""Gemini ToO end to end: the gateway's store, worker and outbox against the ToO servlet emulator
and the SkyPortal stub (SQLite and PostgreSQL), a guide star from the stub's offset-star service,
the gateway's allocation check, SkyPortal's direct mode, and Gemini's example client against the
emulator. Every status reaches SkyPortal once; the user key and the SkyPortal token are in no
record."""

from __future__ import annotations

import asyncio
import json
import urllib.parse

import pytest
import requests
import tornado.httpclient
import tornado.httpserver
import tornado.netutil

from facility_apis.core.interface import Target
from facility_apis.facilities.gemini import GeminiFacility
from facility_apis.gateway.api import make_app
from facility_apis.gateway.outbox import Deliverer, DeliverySettings
from facility_apis.gateway.store import Store
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing import SkyPortalStub
from facility_apis.testing.gemini import GeminiToOEmulator
from facility_apis.testing.network import loopback_egress

KEY = "gemini-e2e-key+/=7c1"
PROGRAM = "GN-2026B-Q-101"
ALTDATA = {"user_email": "pi@example.org", "user_key": KEY, "programid": PROGRAM, "template_ids": "3,5,8"}
SP_TOKEN = "gemini-e2e-skyportal-token"
OFFSETS_TOKEN = "gemini-e2e-offsets-token"
QUICK = DeliverySettings(backoff_base=0.05, backoff_cap=0.2, idle=0.05)
PAYLOAD = {"template_ids": "3,5", "start_date": "2036-11-21 10:00", "end_date": "2036-11-23 10:00", "l_exptime": 120, "note": "ToO for ZTF26gw"}


@pytest.fixture
def gemini():
    with GeminiToOEmulator({PROGRAM: {"email": "pi@example.org", "key": KEY, "templates": [3, 5, 8]}}) as emulator:
        emulator.set_status(PROGRAM, 8, "Ready")  # a template already used: not On Hold
        yield emulator


@pytest.fixture
def skyportal():
    tokens = {SP_TOKEN: {"Post from FacilityMessageListener"}, OFFSETS_TOKEN: set()}
    with SkyPortalStub(tokens=tokens) as stub:
        yield stub


class Gateway:
    """A client, a Gemini North allocation, a worker and a deliverer over ``store``."""

    def __init__(self, store: Store, gemini: GeminiToOEmulator, skyportal: SkyPortalStub, **config):
        self.store, self.skyportal = store, skyportal
        self.owner = store.clients.authenticate(store.clients.add("skyportal"))
        store.allocations.put(self.owner, 1, "gemini", dict(ALTDATA), instrument_id=6, instrument_name="GMOS-N", group_ids=[1])
        settings = WorkerSettings(idle=0.05, egress=loopback_egress(gemini, skyportal))
        self.worker = Worker(store, facility_config={"gemini": {"north_url": gemini.url, **config}}, settings=settings)
        self.deliverer = Deliverer.for_skyportal(store, skyportal.url, SP_TOKEN, settings=QUICK)

    def add(self, followup_id: int, payload=None, obj_id=None) -> int:
        obj_id = obj_id or f"ZTF26gw{followup_id}"
        self.skyportal.add_request(followup_id, obj_id=obj_id, instrument_id=6, instrument_name="GMOS-N", api_classname="GEMINIAPI")
        checked = GeminiFacility().validate_payload(PAYLOAD if payload is None else payload)
        return self.store.requests.add(1, Target(obj_id, 150.0, -5.25), checked, owner_id=self.owner, followup_request_id=followup_id)

    def settle(self) -> None:
        assert self.worker.run_until_idle(30) and self.deliverer.run_until_empty(30)

    def history(self, request_id: int) -> list[str]:
        return [entry["status"] for entry in self.store.requests.view(request_id)["history"]][1:]

    def records(self, request_id: int) -> str:
        return json.dumps(self.store.requests.view(request_id)["transactions"])

    def close(self) -> None:
        self.worker.close()
        self.deliverer.close()


@pytest.fixture
def gateway(gateway_store, gemini, skyportal):
    gw = Gateway(gateway_store, gemini, skyportal)
    yield gw
    gw.close()


def assert_no_key(text: str) -> None:
    for spelling in (KEY, urllib.parse.quote(KEY, safe=""), urllib.parse.quote_plus(KEY)):
        assert spelling not in text


def test_each_template_is_triggered_once_and_the_status_reaches_skyportal_once(gateway, gemini, skyportal):
    request_id = gateway.add(11)
    gateway.settle()
    made = gemini.triggered(PROGRAM)
    assert [(o.template, o.status, o.target) for o in made] == [(3, "Prepared/Ready", "ZTF26gw11"), (5, "Prepared/Ready", "ZTF26gw11")]
    assert made[0].parameters["exptime"] == "120" and made[0].parameters["windowDuration"] == "48" and made[0].parameters["ra"] == "10:00:00.00"
    first, second = (f"{PROGRAM}-{o.number}" for o in made)
    status = f"submitted: Gemini North: template 3 triggered as {first}; template 5 triggered as {second}"
    assert skyportal.statuses(11) == gateway.history(request_id) == [status]
    view = gateway.store.requests.view(request_id)
    assert (view["state"], view["remote_id"], view["next_operation"]) == ("submitted", f"{first},{second}", None)
    assert len(view["transactions"]) == 2 and all("&password=***&" in t["request"]["url"] for t in view["transactions"])
    assert_no_key(gateway.records(request_id))
    assert [r.method for r in gemini.requests] == ["POST", "POST"]


def test_refusals_partial_success_and_a_wrong_key_reach_skyportal_as_statuses(gateway, gemini, skyportal):
    partial = gateway.add(21, {**PAYLOAD, "template_ids": "3,8"})
    gateway.settle()
    (made,) = gemini.triggered(PROGRAM)
    expected = f"submitted: Gemini North: template 3 triggered as {PROGRAM}-{made.number}; template 8 refused: template observation 8 is not On Hold"
    assert skyportal.statuses(21) == [expected]
    refused = gateway.add(22, {**PAYLOAD, "template_ids": "8"})
    gateway.settle()
    assert skyportal.statuses(22) == ["rejected: Gemini North refused template 8: template observation 8 is not On Hold"]
    gemini.add_program(PROGRAM, "pi@example.org", "another-key", [3, 5])
    wrong_key = gateway.add(23)
    gateway.settle()
    assert skyportal.statuses(23) == ["failed to submit: Gemini refused the credentials (HTTP 401: user key not valid for this program)"]
    for request_id in (partial, refused, wrong_key):
        assert_no_key(gateway.records(request_id) + json.dumps(gateway.store.requests.view(request_id)["history"]))


def test_a_trigger_whose_answer_is_lost_is_not_sent_again(gateway, gemini, skyportal):
    gemini.faults.add("drop", path_prefix="/too")
    request_id = gateway.add(31, {**PAYLOAD, "template_ids": "3"})
    gateway.settle()
    assert len(gemini.requests) == 1
    (status,) = skyportal.statuses(31)
    # "failed:", never "failed to submit:" (which SkyPortal answers by offering to submit again).
    assert status.startswith("failed: Gemini North: template 3 may have been made (")
    assert status.endswith("check the Observing Tool before triggering it again")
    assert gateway.store.requests.view(request_id)["next_operation"] is None


def test_a_guide_star_comes_from_the_hosts_offset_star_service(gateway_store, gemini, skyportal):
    offsets = {"url": f"{skyportal.url}/api/sources/{{obj_id}}/offsets", "token": OFFSETS_TOKEN, "probe": "OIWFS"}
    gw = Gateway(gateway_store, gemini, skyportal, offset_stars=offsets)
    try:
        skyportal.add_source("ZTF26gs1", 150.0, -5.25)
        skyportal.add_offset_stars("ZTF26gs1", [{"name": "ZTF26gs1_o1", "ra": 150.01, "dec": -5.24, "mag": 14.2}])
        with_star = gw.add(41, {**PAYLOAD, "template_ids": "3"}, obj_id="ZTF26gs1")
        skyportal.add_source("ZTF26gs2", 150.0, -5.25)  # no offset star near it
        without = gw.add(42, {**PAYLOAD, "template_ids": "5"}, obj_id="ZTF26gs2")
        gw.settle()
    finally:
        gw.close()
    (made,) = gemini.triggered(PROGRAM)
    assert {k: made.parameters[k] for k in ("gstarget", "gsra", "gsdec", "gsprobe")} == {
        "gstarget": "ZTF26gs1_o1", "gsra": "10:00:02.40", "gsdec": "-05:14:24.000", "gsprobe": "OIWFS",
    }  # fmt: skip
    assert skyportal.statuses(41) == [f"submitted: Gemini North: template 3 triggered as {PROGRAM}-{made.number}, guide star ZTF26gs1_o1 (OIWFS)"]
    assert skyportal.statuses(42) == ["rejected: no guide star: the offset-star service found no offset star near ZTF26gs2 (Gemini's trigger was not sent)"]
    asked = [r for r in skyportal.requests if r.path.endswith("/offsets")]
    assert sorted(r.path for r in asked) == ["/api/sources/ZTF26gs1/offsets", "/api/sources/ZTF26gs2/offsets"]  # the worker runs both at once
    assert all(r.headers["Authorization"] == f"token {OFFSETS_TOKEN}" for r in asked)
    records = gw.records(with_star) + gw.records(without)
    assert "/offsets?num_offset_stars=3&obstime=2036-11-22T10%3A00%3A00" in records  # the window's middle
    assert OFFSETS_TOKEN not in records
    assert_no_key(records)


def test_the_gateway_refuses_an_allocation_whose_program_is_not_at_its_instruments_site(gateway_store):
    token = gateway_store.clients.add("skyportal")

    async def put(body):
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server = tornado.httpserver.HTTPServer(make_app(gateway_store))
        server.add_sockets(sockets)
        url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/api/allocations/3"
        try:
            response = await tornado.httpclient.AsyncHTTPClient().fetch(
                url, method="PUT", body=json.dumps(body), headers={"Authorization": f"token {token}"}, raise_error=False
            )
        finally:
            server.stop()
        return response.code, json.loads(response.body)

    body = {"facility": "gemini", "altdata": {"email": "pi@example.org", "password": KEY, "progid": PROGRAM}, "instrument_name": "GMOS-S"}
    code, answer = asyncio.run(put(body))
    assert code == 400
    assert answer["data"]["errors"] == [
        "altdata.programid: must be a Gemini South program (GS-...): the allocation's instrument GMOS-S is at Gemini South"
    ]
    assert KEY not in json.dumps(answer)
    code, answer = asyncio.run(put({**body, "instrument_name": "GMOS-N"}))
    assert code == 200 and answer["data"]["facility"] == "gemini"


def test_skyportal_direct_mode_triggers_and_stores_the_transactions_masked(gemini):
    from facility_apis.skyportal import GEMINIAPI, configure, reset
    from facility_apis.testing.skyportal_models import AsyncSession, make_request, use_fake_models

    configure(facilities={"gemini": {"north_url": gemini.url}}, egress=loopback_egress(gemini))
    try:
        with use_fake_models():
            legacy = {"user_email": "pi@example.org", "user_password": KEY, "programid": PROGRAM}  # as SkyPortal's class stored it
            request = make_request(altdata=legacy, payload=PAYLOAD, instrument=(6, "GMOS-N", []), api_classname="GEMINIAPI")
            session = AsyncSession(request)
            asyncio.run(GEMINIAPI.submit(request, session))
    finally:
        reset()
    made = gemini.triggered(PROGRAM)
    assert request.status == f"submitted: Gemini North: template 3 triggered as {PROGRAM}-{made[0].number}; template 5 triggered as {PROGRAM}-{made[1].number}"
    assert len(session.transactions) == 2
    assert_no_key(json.dumps([[t.request, t.response] for t in session.transactions]))
    assert GEMINIAPI.__name__ == "GEMINIAPI" and not GEMINIAPI.implements()["get"] and GEMINIAPI.implements()["submit"]


def test_gemini_example_client_flow_works_against_the_emulator(gemini):
    """The parameters ``urltrigger.py`` sends (its example values), posted as it posts them."""
    cmd = {
        "prog": PROGRAM, "password": KEY, "email": "pi@example.org", "obsnum": "3", "target": "TNO12345 url",
        "ra": "12:22:22.860", "dec": "4:31:03.23", "mags": "22.4/r/AB", "note": "This is a test note. URL triggered.\nAdd URL to finder chart here.",
        "posangle": "180.0", "ready": "false", "group": "New LIGO event",
        "gstarget": "GS473-048345", "gsra": "12:22:30.212", "gsdec": "04:29:35.59", "gsmags": "11.83/UC/Vega", "gsprobe": "OIWFS",
        "windowDate": "2018-03-15", "windowTime": "01:00", "windowDuration": "48",
        "elevationType": "airmass", "elevationMin": "1.0", "elevationMax": "1.6",
    }  # fmt: skip
    session = requests.Session()
    session.trust_env = False
    response = session.post(f"{gemini.url}/too", params=cmd, timeout=10)
    assert response.status_code == 200
    (made,) = gemini.triggered(PROGRAM)
    assert response.text == f"{PROGRAM}-{made.number}" and made.status == "On Hold" and made.target == "TNO12345 url"
    incomplete = session.post(f"{gemini.url}/too", params={**cmd, "gsprobe": ""}, timeout=10)
    assert (incomplete.status_code, incomplete.text) == (400, "guide star not completely specified")
    missing = session.post(f"{gemini.url}/too", params={k: v for k, v in cmd.items() if k != "dec"}, timeout=10)
    assert (missing.status_code, missing.text) == (400, "dec")
