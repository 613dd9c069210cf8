"""The gateway's HTTP API, served on 127.0.0.1: auth, envelope, validation (every field at once,
nothing stored), cross-client isolation, SkyPortal GENERIC bodies, cancel, callbacks, health,
and no secret in any answer or at rest."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest
import requests
import sqlalchemy as sa
import tornado.httpserver
import tornado.netutil

from facility_apis.core.egress import INTERNAL
from facility_apis.core.interface import Target
from facility_apis.core.registry import Registry
from facility_apis.core.timeutil import DATE_RULE
from facility_apis.core.transport import Transport
from facility_apis.facilities.atlas import ATLASFacility
from facility_apis.gateway.api import MAX_BODY_BYTES, callback_path, make_app
from facility_apis.gateway.crypto import SecretBox, generate_key
from facility_apis.gateway.store import Store
from facility_apis.skyportal.client import SkyPortalClient

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "SECRET-TOKEN-123"
PAYLOAD = {"start_date": "2026-10-01", "end_date": "2026-10-31"}
ALLOCATION = {"facility": "atlas", "altdata": {"api_token": SECRET}, "instrument_id": 7, "pi": "A. Observer", "filters": ["atlasc", "atlaso"], "group_ids": [1]}
TARGET = {"id": "ZTF21aaaaaaa", "ra": 150.1, "dec": 2.2}
BASE_URL_RULE = ATLASFacility.altdata_schema()["properties"]["base_url"]["description"]


class Served:
    """A tornado application on a free 127.0.0.1 port, served from its own thread."""

    def __init__(self, app):
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(app, sockets),), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    async def _serve(self, app, sockets):
        server = tornado.httpserver.HTTPServer(app, max_body_size=4 * MAX_BODY_BYTES)
        server.add_sockets(sockets)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        server.stop()
        await server.close_all_connections()

    def close(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request):
    return request.param


@pytest.fixture
def store(backend, tmp_path):
    box = SecretBox(generate_key())
    if backend == "sqlite":
        store = Store(f"sqlite:///{tmp_path}/g.db", box)
        yield store
        store.close()
        return
    schema = f"gw_api_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    store = Store(POSTGRES_URL, box, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield store
    finally:
        store.close()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def serve(store):
    """``serve(**make_app options)`` -> base URL; everything is stopped after the test."""
    executor = ThreadPoolExecutor(4, thread_name_prefix="gateway-executor")
    servers = []

    def start(**options):
        servers.append(Served(make_app(store, executor=executor, **options)))
        return servers[-1].url

    yield start
    for server in servers:
        server.close()
    executor.shutdown()


class Client:
    """An API caller: ``client.put(path, json=...)`` with its token; records every answer."""

    seen: ClassVar[list[str]] = []  # every answer of every client

    def __init__(self, url: str, token: str | None, scheme: str = "token"):
        self.url, self.token, self.scheme = url, token, scheme
        self.session = requests.Session()
        self.session.trust_env = False

    def __call__(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token is not None:
            headers.setdefault("Authorization", f"{self.scheme} {self.token}")
        response = self.session.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        Client.seen.append(response.text)
        return response

    def __getattr__(self, method: str):
        return lambda path, **kwargs: self(method.upper(), path, **kwargs)


@pytest.fixture
def api(store, serve):
    """Clients A and B of one gateway (no SkyPortal), and the anonymous caller."""
    url = serve()
    return Client(url, store.clients.add("a")), Client(url, store.clients.add("b")), Client(url, None)


def error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and "Traceback" not in body["message"]
    return body["message"], body["data"]["errors"]


def ok(response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    return body["data"]


def test_an_sedm_allocation_without_its_program_is_refused_when_saved(api):
    """SEDM files every request under a program; SkyPortal's class takes it from the allocation's
    group, which the gateway never learns: here the altdata must name it, checked at save time
    rather than at the first submission."""
    a, _, _ = api
    rule = (
        "altdata.programname: is required here: SEDM files each request under a program, "
        "and this host does not know the allocation's SkyPortal group name"
    )
    sedm = {"facility": "sedm", "altdata": {}, "instrument_name": "SEDM"}
    for method, path in (("PUT", "/api/allocations/3"), ("POST", "/api/allocations/validate")):
        _, errors = error(a(method, path, json=sedm), 400)
        assert errors == [rule]
    assert ok(a.put("/api/allocations/3", json={**sedm, "altdata": {"programname": "Transients"}}))


def allocation_of(a, allocation_id=1, **changes):
    return ok(a.put(f"/api/allocations/{allocation_id}", json={**ALLOCATION, **changes}))


def request_on(a, allocation_id=1, **changes):
    return ok(a.post("/api/followup_request", json={"allocation_id": allocation_id, "target": TARGET, "payload": PAYLOAD, **changes}))


# -- auth ------------------------------------------------------------------------------------


def test_missing_token_is_401_with_challenge(api):
    _, _, anonymous = api
    response = anonymous.get("/api/health")
    message, _ = error(response, 401)
    assert message == "authentication required: send 'Authorization: token <token>'"
    assert response.headers["WWW-Authenticate"].startswith("Token ")


@pytest.mark.parametrize("header", ["token not-a-token", "Bearer not-a-token", "Basic dXNlcjpwdw==", "token", "token "])
def test_wrong_token_is_401(api, header):
    _, _, anonymous = api
    message, _ = error(anonymous.get("/api/health", headers={"Authorization": header}), 401)
    assert "token" in message and "not-a-token" not in message


def test_bearer_scheme_is_accepted(api, store):
    a, _, _ = api
    assert ok(Client(a.url, a.token, "Bearer").get("/api/health"))["due"] == 0


def test_every_route_but_the_callback_needs_a_token(api):
    _, _, anonymous = api
    for method, path in [("PUT", "/api/allocations/1"), ("GET", "/api/allocations/1"), ("POST", "/api/allocations/validate"),
                         ("POST", "/api/followup_request"), ("GET", "/api/followup_request"), ("GET", "/api/followup_request/1"),
                         ("DELETE", "/api/followup_request/1"), ("GET", "/api/health"), ("GET", "/")]:
        assert anonymous(method, path, json={}).status_code == 401, (method, path)


def test_unknown_route_and_method_answer_in_the_envelope(api):
    a, _, _ = api
    assert error(a.get("/api/nothing"), 404)[0] == "no such API route: /api/nothing"
    assert error(a.patch("/api/health"), 405)[0] == "Method Not Allowed"


def test_unexpected_failure_is_a_500_without_traceback(api, store, monkeypatch, caplog):
    a, _, _ = api
    monkeypatch.setattr(store, "metrics", lambda: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="facility_apis.gateway.api"):
        message, errors = error(a.get("/api/health"), 500)
    assert message == "internal error (see the gateway's log)" and errors == []
    assert "ZeroDivisionError" in caplog.text


def test_store_calls_run_on_the_executor(api, store, monkeypatch):
    a, _, _ = api
    threads = []
    for owner, name in ((store.clients, "authenticate"), (store, "metrics")):
        method = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *args, _method=method, **kwargs: threads.append(threading.current_thread().name) or _method(*args, **kwargs))
    ok(a.get("/api/health"))
    assert len(threads) == 2 and all(name.startswith("gateway-executor") for name in threads)


def test_allocation_of_an_uninstalled_facility_is_a_500(store, serve):
    a = Client(serve(registry=Registry({}, group=None)), store.clients.add("a"))
    store.allocations.put(store.clients.authenticate(a.token), 1, "atlas", {"api_token": SECRET}, instrument_id=7)
    message, _ = error(a.post("/api/followup_request", json={"allocation_id": 1, "target": TARGET, "payload": PAYLOAD}), 500)
    assert message == "facility 'atlas' is not installed in this gateway"
    assert store.requests.newest() == []


# -- allocations -----------------------------------------------------------------------------


def test_put_allocation_stores_it_and_answers_the_summary_only(api, store):
    a, _, _ = api
    summary = allocation_of(a, 5)
    assert summary == {"id": 5, "facility": "atlas", "pi": "A. Observer", "proposal_id": None, "instrument_id": 7,
                       "instrument_name": None, "filters": ["atlasc", "atlaso"], "group_ids": [1]}
    assert ok(a.get("/api/allocations/5")) == summary
    facility, allocation = store.allocations.get(5)
    assert facility == "atlas" and allocation.altdata == {"api_token": SECRET}


def test_allocation_without_api_token_is_refused_and_not_stored(api, store):
    a, _, _ = api
    message, errors = error(a.put("/api/allocations/1", json={**ALLOCATION, "altdata": {}}), 400)
    assert errors == ["altdata.api_token: is required"]
    assert message == "invalid allocation: altdata.api_token: is required"
    assert error(a.get("/api/allocations/1"), 404)[0] == "no allocation 1"


def test_allocation_errors_are_listed_at_once(api):
    a, _, _ = api
    body = {"facility": "atlas", "altdata": {"api_token": "", "base_url": "not a url"}, "instrument_id": "7",
            "filters": "atlasc", "group_ids": [1, "2"], "colour": "red"}
    _, errors = error(a.put("/api/allocations/1", json=body), 400)
    assert errors == [
        "altdata.api_token: is required",
        "altdata.base_url: must be an https URL without a user name or password (plain http only to a loopback address)",
        "colour: is not an allowed property",
        "filters: must be of type array",
        "group_ids[1]: must be of type integer",
        "instrument_id: must be of type integer",
    ]
    body = {**ALLOCATION, "altdata": {"api_token": SECRET, "base_url": "http://example.org/x"}}
    _, errors = error(a.put("/api/allocations/1", json=body), 400)
    assert errors == ["altdata.base_url: must be an https URL without a user name or password (plain http only to a loopback address)"]
    assert "https only; plain http only to a loopback address" in BASE_URL_RULE
    body = {**ALLOCATION, "altdata": {"api_token": SECRET, "base_url": "https://169.254.169.254/latest"}}
    _, errors = error(a.post("/api/allocations/validate", json=body), 400)
    assert errors == ["altdata.base_url: 169.254.169.254 is a private or internal address, which this deployment does not allow"]


def test_unknown_facility_lists_the_known_ones(api):
    a, _, _ = api
    _, errors = error(a.put("/api/allocations/1", json={"facility": "hubble", "altdata": {}}), 400)
    assert errors == [f"facility: is not a known facility (known: {', '.join(Registry(group=None).names())})"]
    _, errors = error(a.put("/api/allocations/1", json={"altdata": []}), 400)
    assert errors == ["altdata: must be of type object", "facility: is required"]


def test_forced_photometry_allocation_needs_an_instrument(api):
    a, _, _ = api
    body = {key: value for key, value in ALLOCATION.items() if key != "instrument_id"}
    _, errors = error(a.put("/api/allocations/1", json=body), 400)
    assert errors == ["instrument_id: is required: the points ATLAS forced photometry returns are stored in SkyPortal under an instrument"]


def test_an_observation_facility_returning_photometry_needs_an_instrument_too(api):
    """BHTOM is an observation facility that brings the network's photometry back: refused at
    intake, not when its first points arrive days later."""
    a, _, _ = api
    _, errors = error(a.put("/api/allocations/1", json={"facility": "bhtom", "altdata": {"api_token": SECRET + "-bhtom"}}), 400)
    assert errors == ["instrument_id: is required: the points BHTOM returns are stored in SkyPortal under an instrument"]
    _, errors = error(a.post("/api/allocations/validate", json={"facility": "bhtom", "altdata": {"api_token": SECRET + "-bhtom"}}), 400)
    assert errors == ["instrument_id: is required: the points BHTOM returns are stored in SkyPortal under an instrument"]


def test_a_request_on_a_stored_allocation_without_instrument_is_refused_at_intake(api, store):
    """An allocation stored before the rule: its requests are refused before any work, naming
    instrument_id and why, rather than failing when the photometry arrives."""
    a, _, _ = api
    owner = store.clients.authenticate(a.token)
    store.allocations.put(owner, 1, "atlas", {"api_token": SECRET})
    _, errors = error(a.post("/api/followup_request", json={"allocation_id": 1, "target": TARGET, "payload": PAYLOAD}), 400)
    assert errors == [
        "allocation_id: names an allocation without instrument_id: the points ATLAS forced photometry returns are stored in SkyPortal under an instrument; "
        "PUT the allocation again with one"
    ]
    assert store.requests.newest() == []


def test_validate_stores_nothing(api, store):
    a, _, _ = api
    assert ok(a.post("/api/allocations/validate", json=ALLOCATION)) == {"valid": True}
    _, errors = error(a.post("/api/allocations/validate", json={**ALLOCATION, "altdata": {"token": SECRET}}), 400)
    assert errors == ["altdata.api_token: is required", "altdata.token: is not an allowed property"]
    assert error(a.get("/api/allocations/1"), 404)[1] == []


@pytest.mark.parametrize(
    "body, message",
    [(b"{not json", "the body is not JSON"), (b'{"ra": NaN}', "the body is not JSON"), (b"\xff\xfe", "the body is not JSON"),
     (b"[1, 2]", "the body must be a JSON object"), (b"", "the body is not JSON")],
)
def test_unreadable_bodies(api, body, message):
    a, _, _ = api
    assert error(a.put("/api/allocations/1", data=body), 400)[0] == message
    assert error(a.post("/api/followup_request", data=body), 400)[0] == message


def test_body_size_is_limited(api):
    a, _, _ = api
    assert error(a.post("/api/followup_request", data=b"x" * (MAX_BODY_BYTES + 1)), 413)[0] == f"the body is larger than {MAX_BODY_BYTES} bytes"


# -- follow-up requests ----------------------------------------------------------------------


def test_direct_request_is_accepted_and_shown(api, store):
    a, _, _ = api
    allocation_of(a)
    created = request_on(a, followup_request_id=42, requester="observer")
    assert created == {"id": created["id"], "state": "pending", "ignored": []}
    view = ok(a.get(f"/api/followup_request/{created['id']}"))
    assert (view["obj_id"], view["ra"], view["dec"], view["followup_request_id"], view["requester"]) == ("ZTF21aaaaaaa", 150.1, 2.2, 42, "observer")
    assert view["payload"]["snr_threshold"] == 3  # defaults filled in by the facility
    assert [h["state"] for h in view["history"]] == ["pending"]
    assert ok(a.get("/api/followup_request")) == {"requests": store.requests.newest()}


def test_request_body_errors_are_listed_at_once_and_nothing_stored(api, store):
    a, _, _ = api
    allocation_of(a)
    body = {"allocation_id": "1", "target": {"id": 5, "ra": "150"}, "payload": [], "priority": 1}
    message, errors = error(a.post("/api/followup_request", json=body), 400)
    assert errors == [
        "allocation_id: must be of type integer",
        "payload: must be of type object",
        "priority: is not an allowed property",
        "target.dec: is required",
        "target.id: must be of type string",
        "target.ra: must be of type number",
    ]
    assert message.startswith("invalid follow-up request: allocation_id: must be of type integer; ")
    _, errors = error(a.post("/api/followup_request", json={"payload": PAYLOAD}), 400)
    assert errors == ["allocation_id: is required", "target: is required (or obj_id, to take the coordinates from SkyPortal)"]
    assert store.requests.newest() == []


def test_bad_payload_values_are_named(api, store):
    a, _, _ = api
    allocation_of(a)
    payload = {"start_date": "yesterday", "end_date": "2026-10-31", "snr_threshold": 0, "colour": "red", "propermotion_ra": 1.0}
    _, errors = error(a.post("/api/followup_request", json={"allocation_id": 1, "target": {**TARGET, "ra": 400}, "payload": payload}), 400)
    assert errors == [
        "payload.colour: is not an allowed property",
        "payload.propermotion_dec: is required when propermotion_ra is given",
        "payload.radec_epoch_year: is required when propermotion_ra is given",
        "payload.snr_threshold: must be greater than 0",
        f"payload.start_date: must be {DATE_RULE}",
        "target.ra: must be less than 360",
    ]
    _, errors = error(a.post("/api/followup_request", json={"allocation_id": 1, "target": TARGET, "payload": {**PAYLOAD, "end_date": "2026-09-01"}}), 400)
    assert errors == ["payload.end_date: must not be before start_date"]
    assert store.requests.newest() == []


@pytest.mark.parametrize("ra, dec, expected", [(360, 0, "target.ra: must be less than 360"), (-0.5, 0, "target.ra: must be at least 0"),
                                               (10, 90.5, "target.dec: must be at most 90"),
                                               (360, -91, "target.dec: must be at least -90; target.ra: must be less than 360")])
def test_coordinates_out_of_range(api, store, ra, dec, expected):
    a, _, _ = api
    allocation_of(a)
    _, errors = error(a.post("/api/followup_request", json={"allocation_id": 1, "target": {**TARGET, "ra": ra, "dec": dec}, "payload": PAYLOAD}), 400)
    assert errors == expected.split("; ")  # every failing coordinate, not only the first
    assert store.requests.newest() == []


def test_obj_id_must_match_target(api):
    a, _, _ = api
    allocation_of(a)
    _, errors = error(a.post("/api/followup_request", json={"allocation_id": 1, "target": TARGET, "obj_id": "other", "payload": PAYLOAD}), 400)
    assert errors == ["obj_id: must equal target.id when both are given"]


def test_generic_body_without_skyportal_needs_a_target(api, store):
    a, _, _ = api
    allocation_of(a)
    _, errors = error(a.post("/api/followup_request", json={"obj_id": "ZTF21aaaaaaa", "allocation_id": 1, "payload": PAYLOAD}), 400)
    assert errors == ["target: is required: this gateway has no SkyPortal to look obj_id up in"]
    assert store.requests.newest() == []


# -- clients do not see each other's allocations and requests --------------------------------


def test_cross_client_access_is_refused(api, store):
    a, b, _ = api
    allocation_of(a)
    request_id = request_on(a)["id"]
    message, _ = error(b.put("/api/allocations/1", json=ALLOCATION), 403)
    assert message == "allocation 1 belongs to another client"
    assert store.allocations.get(1)[1].instrument_id == 7 and store.allocations.summary(1, store.clients.authenticate(a.token))["pi"] == "A. Observer"
    assert error(b.get("/api/allocations/1"), 404)[0] == "no allocation 1"
    assert error(b.post("/api/followup_request", json={"allocation_id": 1, "target": TARGET, "payload": PAYLOAD}), 404)[0] == "no allocation 1"
    assert error(b.get(f"/api/followup_request/{request_id}"), 404)[0] == f"no follow-up request {request_id}"
    assert error(b.delete(f"/api/followup_request/{request_id}"), 404)[0] == f"no follow-up request {request_id}"
    assert ok(b.get("/api/followup_request")) == {"requests": []}
    assert ok(a.get(f"/api/followup_request/{request_id}"))["state"] == "pending"
    assert len(store.requests.newest()) == 1


@pytest.mark.parametrize("path", ["/api/allocations/0", "/api/allocations/abc", "/api/allocations/99999999999", "/api/followup_request/99999999999"])
def test_ids_that_cannot_exist_are_not_found(api, path):
    a, _, _ = api
    error(a.get(path), 404)


# -- SkyPortal's GENERIC forwarding body -----------------------------------------------------


@pytest.fixture
def generic(store, serve, skyportal_stub):
    """(client of a gateway that resolves sources in the SkyPortal stub, the stub)."""
    skyportal = SkyPortalClient(skyportal_stub.url, "skyportal-token", Transport(retries=0, timeout=(2, 5), egress=INTERNAL))
    a = Client(serve(skyportal=skyportal), store.clients.add("a"))
    allocation_of(a)
    return a, skyportal_stub


def test_generic_body_takes_coordinates_from_skyportal(generic, store):
    a, stub = generic
    stub.add_source("ZTF22abcdefg", 210.5, -12.25)
    created = ok(a.post("/api/followup_request", json={"obj_id": "ZTF22abcdefg", "allocation_id": 1, "payload": PAYLOAD}))
    assert created == {"id": created["id"], "state": "pending", "ignored": []}
    view = store.requests.view(created["id"])
    assert (view["obj_id"], view["ra"], view["dec"], view["allocation_id"]) == ("ZTF22abcdefg", 210.5, -12.25, 1)
    assert [r.path for r in stub.requests] == ["/api/sources/ZTF22abcdefg"]
    # GENERIC's delete reads data.id from this answer and sends DELETE <endpoint>/<id>.
    assert ok(a.delete(f"/api/followup_request/{created['id']}")) == {"id": created["id"], "state": "deleted"}


def test_generic_form_fields_the_facility_does_not_define_are_named_and_dropped(generic, store):
    a, stub = generic
    stub.add_source("ZTF22abcdefg", 210.5, -12.25)
    generic_form = {**PAYLOAD, "observation_choices": ["o"], "exposure_time": 300.0, "priority": 1}
    created = ok(a.post("/api/followup_request", json={"obj_id": "ZTF22abcdefg", "allocation_id": 1, "payload": generic_form}))
    assert created["ignored"] == ["exposure_time", "observation_choices", "priority"]
    stored = store.requests.view(created["id"])["payload"]
    assert not {"observation_choices", "exposure_time", "priority"} & set(stored) and all(stored[k] == v for k, v in PAYLOAD.items())
    # A direct body names its facility's own form: an unknown field there is an error.
    _, errors = error(a.post("/api/followup_request", json={"allocation_id": 1, "target": {"id": "x", "ra": 1.0, "dec": 1.0}, "payload": generic_form}), 400)
    assert any(e.startswith("payload") and "not an allowed property" in e for e in errors)


def test_generic_body_with_unknown_source_is_400(generic, store):
    a, _ = generic
    _, errors = error(a.post("/api/followup_request", json={"obj_id": "ZTF00nothing", "allocation_id": 1, "payload": PAYLOAD}), 400)
    assert errors == ["target: is required: SkyPortal does not know the source obj_id"]
    assert store.requests.newest() == []


def test_generic_body_with_skyportal_down_is_502(generic, store):
    a, stub = generic
    stub.down("503")
    message, _ = error(a.post("/api/followup_request", json={"obj_id": "ZTF22abcdefg", "allocation_id": 1, "payload": PAYLOAD}), 502)
    assert message.startswith("SkyPortal could not give the source's coordinates: ") and "skyportal-token" not in message
    stub.down("drop")
    message, _ = error(a.post("/api/followup_request", json={"obj_id": "ZTF22abcdefg", "allocation_id": 1, "payload": PAYLOAD}), 502)
    assert "connection" in message or "connect" in message
    assert store.requests.newest() == []


def test_generic_body_with_bad_payload_does_not_ask_skyportal(generic):
    a, stub = generic
    stub.add_source("ZTF22abcdefg", 210.5, -12.25)
    _, errors = error(a.post("/api/followup_request", json={"obj_id": "ZTF22abcdefg", "allocation_id": 1, "payload": {"snr_threshold": -1}}), 400)
    assert errors == ["payload.snr_threshold: must be greater than 0"]
    assert stub.requests == []


# -- cancel, callback, health ----------------------------------------------------------------


def test_cancel_a_pending_request_then_again(api, store):
    a, _, _ = api
    allocation_of(a)
    request_id = request_on(a)["id"]
    assert ok(a.delete(f"/api/followup_request/{request_id}")) == {"id": request_id, "state": "deleted"}
    assert store.requests.view(request_id)["state"] == "deleted"
    message, _ = error(a.delete(f"/api/followup_request/{request_id}"), 409)
    assert message == f"follow-up request {request_id} is already 'deleted'"


def test_cancel_a_submitted_request_makes_a_delete_due(api, store):
    a, _, _ = api
    allocation_of(a)
    owner = store.clients.authenticate(a.token)
    request_id = store.requests.add(1, Target(**TARGET), PAYLOAD, owner_id=owner, remote_id="https://atlas.example/queue/1/", now=time.time() + 3600)
    assert ok(a.delete(f"/api/followup_request/{request_id}")) == {"id": request_id, "state": "submitted"}
    assert store.requests.view(request_id)["next_operation"] == "delete"


def test_cancel_at_a_facility_without_delete_says_deleted_here_only(api, store):
    """ZTF forced photometry offers no ``delete``: a request it holds is not reported as withdrawn."""
    a, _, _ = api
    owner = store.clients.authenticate(a.token)
    store.allocations.put(owner, 2, "ztf_fp", {"ipac_email": "o@example.org"}, instrument_id=7)
    sent = store.requests.add(2, Target(**TARGET), {}, owner_id=owner, remote_id="ztf-fp-1", now=time.time() + 3600)
    assert ok(a.delete(f"/api/followup_request/{sent}")) == {"id": sent, "state": "deleted"}
    status = store.requests.view(sent)["status"]
    assert status.startswith("deleted: deleted here only: ZTF forced photometry (IPAC) offers no way to withdraw a request, so it may still be carried out")
    never_sent = store.requests.add(2, Target(**TARGET), {}, owner_id=owner)
    assert ok(a.delete(f"/api/followup_request/{never_sent}")) == {"id": never_sent, "state": "deleted"}
    assert store.requests.view(never_sent)["status"] == "deleted"


def test_signed_callback_makes_the_request_due_now(api, store):
    a, _, anonymous = api
    allocation_of(a)
    owner = store.clients.authenticate(a.token)
    later = time.time() + 3600
    request_id = store.requests.add(1, Target(**TARGET), PAYLOAD, owner_id=owner, remote_id="https://atlas.example/queue/1/", now=later)
    path = callback_path(store.box, request_id)
    assert path.startswith(f"/api/callbacks/{request_id}/")
    signature = path.rsplit("/", 1)[1]
    for wrong in [f"/api/callbacks/{request_id}/{'0' * 32}", f"/api/callbacks/{request_id + 1}/{signature}", f"/api/callbacks/x/{signature}",
                  f"/api/callbacks/{request_id}/{signature[:-1]}", f"/api/callbacks/{request_id}/%C3%A9"]:
        assert error(anonymous.post(wrong, json={"task_id": 1}), 404) == ("no such callback", [])
    assert store.requests.view(request_id)["next_poll_at"] == pytest.approx(later)
    before = time.time()
    assert ok(anonymous.post(path, json={"task_id": 1, "task_url": "https://elsewhere.example/"})) == {"id": request_id, "poll_due": True}
    view = store.requests.view(request_id)
    assert before - 1 <= view["next_poll_at"] <= time.time()
    assert view["remote_id"] == "https://atlas.example/queue/1/"  # the body is not trusted


def test_health_reports_the_queue(api, store):
    a, _, _ = api
    allocation_of(a)
    request_on(a)
    metrics = ok(a.get("/api/health"))
    assert set(metrics) == {"requests", "due", "oldest_due_seconds", "outbox_backlog", "outbox_oldest_seconds", "outbox_dead", "accounts", "loops", "healthy"}
    assert metrics["requests"] == {"atlas": {"pending": 1}} and metrics["due"] == 1
    assert metrics["accounts"] == []  # no worker has called a facility yet
    assert metrics["loops"] == {} and metrics["healthy"] is True  # this app runs no loop of its own


def test_index_page_lists_the_callers_requests(api):
    a, b, _ = api
    allocation_of(a)
    request_on(a, target={**TARGET, "id": "<b>ZTF</b>"})
    page = a.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "&lt;b&gt;ZTF&lt;/b&gt;" in page.text and "<b>ZTF" not in page.text
    assert "ZTF" not in b.get("/").text


# -- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_no_secret_in_any_answer_log_or_file(api, store, tmp_path, caplog):
    a, b, anonymous = api
    Client.seen.clear()
    with caplog.at_level(logging.DEBUG):
        allocation_of(a, altdata={"api_token": SECRET, "base_url": "https://forced.example/"})
        a.put("/api/allocations/1", json={**ALLOCATION, "altdata": {"api_token": SECRET, "base_url": f"ftp://{SECRET}"}})
        a.put("/api/allocations/2", json={**ALLOCATION, "altdata": {"api_token": 5, "extra": SECRET}})
        a.post("/api/allocations/validate", json={**ALLOCATION, "facility": SECRET})
        b.put("/api/allocations/1", json=ALLOCATION)
        a.get("/api/allocations/1")
        request_id = request_on(a)["id"]
        a.post("/api/followup_request", json={"allocation_id": 1, "target": TARGET, "payload": {"start_date": SECRET}})
        a.get("/api/followup_request")
        a.get(f"/api/followup_request/{request_id}")
        anonymous.post(callback_path(store.box, request_id))
        a.get("/api/health")
        a.get("/")
        a.delete(f"/api/followup_request/{request_id}")
        anonymous.get("/api/health", headers={"Authorization": f"token {SECRET}"})
    assert len(Client.seen) == 15
    for text in Client.seen:
        assert SECRET not in text and a.token not in text and b.token not in text
    server_log = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("urllib3"))  # urllib3: the test's client
    assert SECRET not in server_log and a.token not in server_log and "/api/callbacks/1/***" in server_log
    assert callback_path(store.box, request_id).rsplit("/", 1)[1] not in server_log
    store.close()
    files = list(Path(tmp_path).glob("g.db*"))
    assert any(path.name == "g.db" for path in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path.name


def test_a_bhtom_password_is_exchanged_for_a_token_when_the_allocation_is_saved_and_never_stored(store, serve):
    from facility_apis.testing.bhtom import BHTOMEmulator
    from facility_apis.testing.network import loopback_egress

    with BHTOMEmulator({"observer": ("pass word", "bhtom-gw-token")}) as bhtom:
        url = serve(facility_config={"bhtom": {"base_url": bhtom.base_url}}, egress=loopback_egress(bhtom))
        client = Client(url, store.clients.add("a"))
        altdata = {"username": "observer", "password": "pass word"}
        ok(client.post("/api/allocations/validate", json={"facility": "bhtom", "altdata": altdata, "instrument_id": 9}))
        ok(client.put("/api/allocations/5", json={"facility": "bhtom", "altdata": altdata, "instrument_id": 9}))
        assert store.allocations.get(5)[1].altdata == {"username": "observer", "api_token": "bhtom-gw-token"}
        wrong = {"facility": "bhtom", "altdata": {**altdata, "password": "not it"}, "instrument_id": 9}
        message, errors = error(client.put("/api/allocations/6", json=wrong), 400)
        assert errors == ["altdata.password: BHTOM refused the username and password (Unable to log in with provided credentials.)"]
        assert "not it" not in message
        assert [r.path for r in bhtom.requests] == ["/api/token-auth/"] * 3


# -- what is known of the source: its aliases and photometry ---------------------------------------

DIA_ID = "313761043604045880"
FINK = {"facility": "fink_fp", "altdata": {}, "instrument_id": 8, "filters": ["lsstg", "lsstr"], "group_ids": [1]}
IPAC_ALTDATA = {"ipac_http_user": "shared", "ipac_http_password": "shared-pw", "ipac_email": "me@example.org", "ipac_userpass": SECRET}
ZTF = {"facility": "ztf_fp", "altdata": IPAC_ALTDATA, "instrument_id": 9, "filters": ["ztfg", "ztfr", "ztfi"], "group_ids": [1]}
CENTROID = {**PAYLOAD, "position": "Flux weighted centroid"}


def test_a_field_taken_from_the_targets_aliases_is_stored_with_the_payload(api, store):
    a, _, _ = api
    ok(a.put("/api/allocations/3", json=FINK))
    created = ok(a.post("/api/followup_request", json={"allocation_id": 3, "target": {**TARGET, "aliases": ["ZTF21aaaaaaa", f"LSST:{DIA_ID}"]}, "payload": {}}))
    assert store.requests.view(created["id"])["payload"] == {"diaObjectId": DIA_ID, "snr_threshold": 3}
    _, errors = error(a.post("/api/followup_request", json={"allocation_id": 3, "target": TARGET, "payload": {}}), 400)
    assert errors == ["payload.diaObjectId: is required: the source has no alias that is a Rubin diaObjectId (digits of a 64-bit integer)"]


def test_a_centroid_is_computed_from_the_targets_photometry_and_stored(api, store):
    a, _, _ = api
    ok(a.put("/api/allocations/4", json=ZTF))
    points = [
        {"ra": 150.1001, "dec": 2.2, "flux": 100.0, "fluxerr": 10.0},
        {"ra": 150.1003, "dec": 2.2, "flux": 100.0, "fluxerr": 10.0, "origin": None, "instrument": "ZTF", "alert": True},
        {"ra": 151.0, "dec": 3.0, "flux": 900.0, "fluxerr": 10.0, "origin": "fp"},
    ]
    created = ok(a.post("/api/followup_request", json={"allocation_id": 4, "target": {**TARGET, "photometry": points}, "payload": CENTROID}))
    stored = store.requests.view(created["id"])["payload"]
    assert (stored["centroid_ra"], stored["centroid_dec"]) == (150.1002, 2.2)
    _, errors = error(a.post("/api/followup_request", json={"allocation_id": 4, "target": TARGET, "payload": CENTROID}), 400)
    rule = "detections with a position, SNR above 3 and an origin without 'fp'"
    assert errors == [f"payload.position: no photometry of the source qualifies for a centroid ({rule})"]
    bad = {**TARGET, "photometry": [{"ra": 1.0, "dec": 1.0, "flux": 1.0, "fluxerr": 1.0, "snr": 20.0}], "aliases": [""]}
    _, errors = error(a.post("/api/followup_request", json={"allocation_id": 4, "target": bad, "payload": CENTROID}), 400)
    assert "target.aliases[0]: must be at least 1 characters long" in errors and any(e.startswith("target.photometry[0]") for e in errors)
    assert len(store.requests.newest()) == 1


def test_generic_body_takes_the_aliases_from_skyportal(generic, store):
    a, stub = generic
    ok(a.put("/api/allocations/3", json=FINK))
    stub.add_source("ZTF22lsst", 210.5, -12.25, alias=["ZTF22lsst", DIA_ID])
    created = ok(a.post("/api/followup_request", json={"obj_id": "ZTF22lsst", "allocation_id": 3, "payload": {}}))
    assert store.requests.view(created["id"])["payload"]["diaObjectId"] == DIA_ID
    stub.add_source("ZTF22plain", 210.5, -12.25)
    _, errors = error(a.post("/api/followup_request", json={"obj_id": "ZTF22plain", "allocation_id": 3, "payload": {}}), 400)
    assert errors[0].startswith("payload.diaObjectId: is required")


def test_an_observation_plan_allocation_is_not_stored_and_takes_no_request(api, store):
    # The host delivers plans itself; SkyPortal's listener updates follow-up requests only.
    a, _, _ = api
    mma = {"facility": "mma", "altdata": {"allocation_type": "API", "endpoint": "https://queue.example.org", "api_token": "qu3ue-t0ken-gw"}}
    message, errors = error(a.put("/api/allocations/7", json=mma), 400)
    assert errors == [errors[0]] and errors[0].startswith("facility: is an observation-plan facility, which the gateway does not take")
    assert "qu3ue-t0ken-gw" not in message + errors[0]
    store.allocations.put(store.clients.authenticate(a.token), 7, "mma", mma["altdata"])  # one stored before this refusal existed
    from facility_apis.facilities.mma import MMAFacility

    payload = MMAFacility().request_schema()["examples"][0]
    message, errors = error(a.post("/api/followup_request", json={"allocation_id": 7, "target": TARGET, "payload": payload}), 400)
    assert len(errors) == 1 and errors[0].startswith("allocation_id: is an observation-plan allocation, which the gateway does not take")
    assert "SkyPortal's listener updates follow-up requests only" in message
    assert store.requests.newest() == []


# -- the horizon counts from the end of the observing window --------------------------------------


def test_a_request_is_followed_until_the_horizon_after_its_observing_window(api, store):
    """A week-long SEDM window is not given up three days after acceptance: the horizon starts
    when the window closes (the end of its last day); a PUT moving the window moves it too."""
    from datetime import timedelta

    from facility_apis.core.timeutil import iso_date, parse_utc, utcnow

    a, _, _ = api
    ok(a.put("/api/allocations/4", json={"facility": "sedm", "altdata": {"programname": "ZTF Bright Transient Survey"}}))
    start, end = utcnow(), utcnow() + timedelta(days=10)
    payload = {"observation_type": "IFU", "priority": 3, "start_date": iso_date(start), "end_date": iso_date(end)}
    created = ok(a.post("/api/followup_request", json={"allocation_id": 4, "target": TARGET, "payload": payload}))
    view = ok(a.get(f"/api/followup_request/{created['id']}"))
    window_closes = parse_utc(iso_date(end)).timestamp() + 86400.0
    assert view["give_up_at"] == pytest.approx(window_closes + 72 * 3600.0)
    later = {**payload, "end_date": iso_date(end + timedelta(days=5))}
    ok(a.put(f"/api/followup_request/{created['id']}", json={"allocation_id": 4, "target": TARGET, "payload": later}))
    assert ok(a.get(f"/api/followup_request/{created['id']}"))["give_up_at"] == pytest.approx(window_closes + 5 * 86400.0 + 72 * 3600.0)
    allocation_of(a)
    unwindowed = request_on(a)  # ATLAS's end_date lies in the past: the horizon counts from acceptance
    view = ok(a.get(f"/api/followup_request/{unwindowed['id']}"))
    assert view["give_up_at"] == pytest.approx(view["created_at"] + 72 * 3600.0)


def test_an_observation_whose_window_has_closed_is_refused_at_intake_and_on_edit(api, store):
    """Nothing can be observed in a window that has ended: 400 on ``payload.end_date``, nothing
    stored; an edit moving an accepted request's window into the past is refused the same way."""
    from datetime import timedelta

    from facility_apis.core.timeutil import iso_date, utcnow

    a, _, _ = api
    ok(a.put("/api/allocations/4", json={"facility": "sedm", "altdata": {"programname": "ZTF Bright Transient Survey"}}))
    yesterday = iso_date(utcnow() - timedelta(days=1))
    closed = {"observation_type": "IFU", "priority": 3, "start_date": iso_date(utcnow() - timedelta(days=5)), "end_date": yesterday}
    _, errors = error(a.post("/api/followup_request", json={"allocation_id": 4, "target": TARGET, "payload": closed}), 400)
    closed_at = f"{iso_date(utcnow())} 00:00 UTC"  # the end of yesterday
    assert errors == [f"payload.end_date: is in the past: the observing window closed at {closed_at}; choose a window that has not ended"]
    assert store.requests.newest() == []
    today = {**closed, "end_date": iso_date(utcnow())}  # open until the end of today
    created = ok(a.post("/api/followup_request", json={"allocation_id": 4, "target": TARGET, "payload": today}))
    _, errors = error(a.put(f"/api/followup_request/{created['id']}", json={"allocation_id": 4, "target": TARGET, "payload": closed}), 400)
    assert [e.split(":")[0] for e in errors] == ["payload.end_date"]
    assert ok(a.get(f"/api/followup_request/{created['id']}"))["payload"]["end_date"] == today["end_date"]
