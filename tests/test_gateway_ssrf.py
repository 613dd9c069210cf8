"""Server-side request forgery through the gateway, end to end: no URL an allocation or a facility
supplies makes the gateway call an internal address, another loopback service, or off the
allocation's own origin; each refusal happens before any connection (``socket_guard`` allows
exactly the emulators, the SkyPortal stub and the gateway, and records every other attempt), and a
trap service on another loopback port receives nothing. A remote body never reaches a status
verbatim. One client's secret never rewrites another client's statuses or transactions."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from gateway_support import QUICK_DELIVERY

from facility_apis.core.egress import LOOP_RULE
from facility_apis.core.interface import Target
from facility_apis.gateway.api import make_app
from facility_apis.gateway.config import GatewayConfig
from facility_apis.gateway.crypto import KEY_ENV, generate_key
from facility_apis.gateway.outbox import Deliverer
from facility_apis.gateway.runner import AppThread
from facility_apis.gateway.service import Gateway
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing import ATLASEmulator, SkyPortalStub
from facility_apis.testing.network import loopback_egress, socket_guard
from facility_apis.testing.server import LoopbackServer

TOKEN = "ssrf-atlas-token-7d1e0c"
SP_TOKEN = "ssrf-skyportal-token-2b9f"
API_TOKEN = "loop-partner-token-91c3e0"


@pytest.fixture
def atlas():
    with ATLASEmulator(tokens={TOKEN: "gw"}, queue_time=0.05, run_time=0.05, rows=40) as emulator:
        yield emulator


@pytest.fixture
def trap():
    """An internal service on another loopback port: it must never hear from the gateway."""
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def skyportal():
    with SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as stub:
        yield stub


@pytest.fixture
def api(gateway_store, atlas):
    """``(url, token)`` of the gateway's API; its egress allows the ATLAS emulator's origin only."""
    executor = ThreadPoolExecutor(2)
    app = make_app(gateway_store, executor=executor, facility_config={"atlas": {"base_url": atlas.base_url}}, egress=loopback_egress(atlas))
    with AppThread(app) as served:
        yield served.url, gateway_store.clients.add("ssrf")
    executor.shutdown()


def put_allocation(api, base_url: str, path: str = "/api/allocations/1") -> requests.Response:
    url, token = api
    session = requests.Session()
    session.trust_env = False
    body = {"facility": "atlas", "altdata": {"api_token": TOKEN, "base_url": base_url}, "instrument_id": 1}
    return session.put(url + path, json=body, headers={"Authorization": f"token {token}"}, timeout=30)


def internal_urls(atlas: ATLASEmulator, trap: LoopbackServer) -> list[str]:
    return [
        "https://169.254.169.254/latest",  # link-local: cloud metadata
        "https://10.1.2.3/forcedphot",  # private
        "https://192.168.0.10/forcedphot",
        "https://[fd00::1]/forcedphot",  # private IPv6 (unique local)
        "https://[fe80::1]/forcedphot",  # link-local IPv6
        "https://[::ffff:10.0.0.1]/forcedphot",  # IPv4-mapped private
        "https://[::ffff:169.254.169.254]/latest",  # IPv4-mapped link-local
        "https://[::ffff:7f00:1]/forcedphot",  # IPv4-mapped loopback, hex spelling
        f"http://127.0.0.1:{trap.port}/forcedphot",  # loopback, another port
        f"http://127.0.0.2:{atlas.port}/forcedphot",  # loopback, another address
        f"http://localhost:{atlas.port}/forcedphot",  # the allowed port, by name
        "http://[::1]/forcedphot",
        "https://0.0.0.0/forcedphot",  # unspecified
        "https://[::]/forcedphot",
        "https://224.0.0.1/forcedphot",  # multicast
    ]


def test_an_allocation_naming_an_internal_service_is_refused_before_any_connection(api, gateway_store, atlas, trap):
    with socket_guard(allow=[api[0]]) as attempts:
        for base_url in internal_urls(atlas, trap):
            for path in ("/api/allocations/1", "/api/allocations/validate"):
                response = put_allocation(api, base_url, path) if path.endswith("1") else _validate(api, base_url)
                assert response.status_code == 400, (base_url, response.text)
                (error,) = response.json()["data"]["errors"]
                assert error.startswith("altdata.base_url: ") and ("private or internal address" in error or "https" in error), (base_url, error)
    assert attempts == [] and trap.requests == []
    with pytest.raises(Exception, match="no allocation 1"):
        gateway_store.allocations.get(1)


def _validate(api, base_url: str) -> requests.Response:
    url, token = api
    body = {"facility": "atlas", "altdata": {"api_token": TOKEN, "base_url": base_url}, "instrument_id": 1}
    return requests.post(url + "/api/allocations/validate", json=body, headers={"Authorization": f"token {token}"}, timeout=30)


def _run(store, atlas: ATLASEmulator, skyportal: SkyPortalStub, *guarded: str) -> list:
    """Follow every request, then deliver, inside a guard allowing only ATLAS and SkyPortal."""
    worker = Worker(store, facility_config={"atlas": {"base_url": atlas.base_url, "poll_interval": 0.05}},
                    settings=WorkerSettings(idle=0.05, egress=loopback_egress(atlas)))
    deliverer = Deliverer.for_skyportal(store, skyportal.url, SP_TOKEN, settings=QUICK_DELIVERY)
    try:
        with socket_guard(allow=[atlas.url, skyportal.url, *guarded]) as attempts:
            assert worker.run_until_idle(30) and deliverer.run_until_empty(30)
    finally:
        worker.close()
        deliverer.close()
    return attempts


def _allocation(store, allocation_id: int = 1, token: str = TOKEN) -> int:
    owner = store.clients.authenticate(store.clients.add(f"client-{allocation_id}"))
    store.allocations.put(owner, allocation_id, "atlas", {"api_token": token}, instrument_id=1)
    return owner


def test_a_task_url_off_the_services_origin_is_never_called(gateway_store, atlas, trap, skyportal):
    _allocation(gateway_store)
    skyportal.add_request(1, obj_id="ZTF26s1", instrument_id=1)
    request_id = gateway_store.requests.add(1, Target("ZTF26s1", 10.0, 10.0), {}, followup_request_id=1)
    for stolen in (f"{trap.url}/queue/1/", "https://169.254.169.254/latest/meta-data/", f"http://127.0.0.1:{atlas.port}@{trap.url[7:]}/"):
        atlas.faults.add("status", status=201, body={"url": stolen}, path_prefix="/forcedphot/queue/", method="POST")
    attempts = _run(gateway_store, atlas, skyportal)
    assert attempts == [] and trap.requests == []
    view = gateway_store.requests.view(request_id)
    assert view["state"] == "failed" and view["next_operation"] is None and view["remote_id"] is None
    assert "cannot be followed" in view["status"] and "check the ATLAS queue before submitting again" in view["status"]
    assert len([r for r in atlas.requests if r.method == "POST"]) == 1  # accepted once, never sent again


def test_a_result_url_off_the_services_origin_is_never_called(gateway_store, atlas, trap, skyportal):
    _allocation(gateway_store)
    skyportal.add_request(1, obj_id="ZTF26s2", instrument_id=1)
    request_id = gateway_store.requests.add(1, Target("ZTF26s2", 10.0, 10.0), {}, followup_request_id=1)
    finished = {"finishtimestamp": "2026-11-21T20:20:18Z", "starttimestamp": "2026-11-21T20:20:17Z", "result_url": f"{trap.url}/results/job1.txt"}
    atlas.faults.add("status", status=200, body=finished, path_prefix="/forcedphot/queue/1/", method="GET")
    attempts = _run(gateway_store, atlas, skyportal)
    assert attempts == [] and trap.requests == []
    view = gateway_store.requests.view(request_id)
    assert view["state"] == "failed" and view["next_operation"] is None
    assert view["status"] == "failed: ATLAS named a result URL on 127.0.0.1, off its own service: not followed"


@pytest.mark.parametrize("where", ["trap", "metadata"])
def test_a_stored_remote_id_on_an_internal_address_gets_no_poll_and_no_delete_on_cancel(gateway_store, api, atlas, trap, skyportal, where):
    """A request whose remote id points elsewhere (stored by an older version, or by hand):
    neither the poll nor the DELETE a cancel owes is sent there."""
    owner = gateway_store.clients.authenticate(api[1])
    gateway_store.allocations.put(owner, 1, "atlas", {"api_token": TOKEN}, instrument_id=1)
    remote_id = f"{trap.url}/forcedphot/queue/9/" if where == "trap" else "https://169.254.169.254/latest/meta-data/iam/"
    skyportal.add_request(1, obj_id="ZTF26s3", instrument_id=1)
    request_id = gateway_store.requests.add(1, Target("ZTF26s3", 10.0, 10.0), {}, followup_request_id=1, remote_id=remote_id)
    url, token = api
    with socket_guard(allow=[url]) as attempts:
        answer = requests.delete(f"{url}/api/followup_request/{request_id}", headers={"Authorization": f"token {token}"}, timeout=30)
    assert answer.status_code == 200 and attempts == []
    assert gateway_store.requests.view(request_id)["next_operation"] == "delete"
    attempts = _run(gateway_store, atlas, skyportal, url)
    assert attempts == [] and trap.requests == []
    view = gateway_store.requests.view(request_id)
    assert view["state"] == "failed" and view["next_operation"] is None
    assert "off its own service: not followed" in view["status"]
    assert all(t["response"]["status_code"] is None for t in view["transactions"])  # nothing answered: nothing was sent


def test_a_remote_body_reaches_a_status_as_one_short_line_only(gateway_store, atlas, skyportal):
    _allocation(gateway_store)
    skyportal.add_request(1, obj_id="ZTF26s4", instrument_id=1)
    gateway_store.requests.add(1, Target("ZTF26s4", 10.0, 10.0), {}, followup_request_id=1)
    body = "internal error at /srv/app\n" + "root:x:0:0:root:/root:/bin/bash\n" * 500
    atlas.faults.add("status", status=400, body=body, path_prefix="/forcedphot/queue/", method="POST")
    _run(gateway_store, atlas, skyportal)
    (status,) = skyportal.statuses(1)
    assert status.startswith("rejected: ") and "\n" not in status and len(status) <= 520
    assert status.count("root:x:0:0") <= 1 + 500 // 33


def test_one_clients_secret_never_rewrites_another_clients_statuses_or_transactions(gateway_store, atlas, skyportal):
    """Client A's tokens are words that appear in client B's records ("detections" in B's final
    status, "forcedphot" in every URL B's calls use); one worker thread serves both in turn."""
    atlas.tokens.update({"detections": "a1", "forcedphot": "a2"})
    _allocation(gateway_store, 1, "detections")
    _allocation(gateway_store, 2, "forcedphot")
    _allocation(gateway_store, 3, TOKEN)
    for followup_id, allocation_id in ((1, 1), (2, 2), (3, 3), (4, 3)):
        skyportal.add_request(followup_id, obj_id=f"ZTF26c{followup_id}", instrument_id=1)
        gateway_store.requests.add(allocation_id, Target(f"ZTF26c{followup_id}", 10.0, 10.0), {}, followup_request_id=followup_id)
    worker = Worker(gateway_store, facility_config={"atlas": {"base_url": atlas.base_url, "poll_interval": 0.05}},
                    settings=WorkerSettings(idle=0.05, concurrency=1, egress=loopback_egress(atlas)))
    deliverer = Deliverer.for_skyportal(gateway_store, skyportal.url, SP_TOKEN, settings=QUICK_DELIVERY)
    try:
        assert worker.run_until_idle(30) and deliverer.run_until_empty(30)
    finally:
        worker.close()
        deliverer.close()
    for followup_id in (3, 4):  # client B's
        final = skyportal.statuses(followup_id)[-1]
        assert final.startswith("complete: 40 points (") and " detections, " in final and "***" not in final
        (row,) = [r for r in gateway_store.requests.newest() if r["obj_id"] == f"ZTF26c{followup_id}"]
        transactions = gateway_store.requests.view(row["id"])["transactions"]
        assert transactions and all("/forcedphot/" in t["request"]["url"] for t in transactions)
        assert all(t["request"]["headers"]["Authorization"] == "***" for t in transactions)
    (row,) = [r for r in gateway_store.requests.newest() if r["obj_id"] == "ZTF26c2"]
    assert all("forcedphot" not in t["request"]["url"] for t in gateway_store.requests.view(row["id"])["transactions"])  # A's own: masked


# -- GENERIC pointed back at the deployment: a forwarding loop ---------------------------------


def test_own_origins_cover_the_listen_address_by_every_loopback_name_the_public_url_and_skyportal(tmp_path):
    config = GatewayConfig.load(
        data_dir=tmp_path, environ={KEY_ENV: generate_key()}, port=8642, public_url="https://gateway.example.org/", skyportal_url="https://skyportal.example.org"
    )
    assert config.own_origins() == (
        "http://127.0.0.1:8642", "http://localhost:8642", "http://[::1]:8642", "https://gateway.example.org/", "https://skyportal.example.org",
    )  # fmt: skip
    assert GatewayConfig.load(data_dir=tmp_path, environ={KEY_ENV: generate_key()}, address="10.0.0.5", port=80).own_origins() == ("http://10.0.0.5:80",)


def test_a_generic_allocation_forwarding_to_this_gateway_or_its_skyportal_is_refused(tmp_path, skyportal):
    """GENERIC's API mode forwards to ``endpoint``; pointed at the gateway itself (or at the
    SkyPortal whose GENERIC forwards here, under the same allocation id), each request would come
    back as a new one, forever. The allocation is refused, naming the field, even where the
    deployment allows loopback calls; a stored one is refused at submission, before any connection."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = GatewayConfig.load(
        data_dir=tmp_path, environ={KEY_ENV: generate_key()}, port=port, public_url="https://gateway.example.org",
        skyportal_url=skyportal.url, skyportal_token=SP_TOKEN, worker=WorkerSettings(idle=0.05, egress=loopback_egress()),
    )  # fmt: skip
    gateway = Gateway(config)
    try:
        token = gateway.store.clients.add("loop")
        with AppThread(gateway.app(), port=port) as served, socket_guard(allow=[served.url]) as attempts:
            for endpoint in (f"{served.url}/api/followup_request", f"http://localhost:{port}/api/followup_request",
                             "https://gateway.example.org/api/followup_request", f"{skyportal.url}/api/followup_request"):  # fmt: skip
                body = {"facility": "generic", "altdata": {"notification_type": "API", "endpoint": endpoint, "api_token": API_TOKEN}}
                answer = requests.put(f"{served.url}/api/allocations/1", json=body, headers={"Authorization": f"token {token}"}, timeout=30)
                assert answer.status_code == 400, answer.text
                (error,) = answer.json()["data"]["errors"]
                assert error.startswith("altdata.endpoint: ") and error.endswith(LOOP_RULE), error
                assert API_TOKEN not in answer.text
        assert attempts == []
        owner = gateway.store.clients.authenticate(token)
        stored = {"notification_type": "API", "endpoint": f"http://127.0.0.1:{port}/api/followup_request", "api_token": API_TOKEN}
        gateway.store.allocations.put(owner, 1, "generic", stored)  # stored before the rule, say
        request_id = gateway.store.requests.add(1, Target("ZTF26loop", 10.0, 10.0), {}, owner_id=owner)
        with socket_guard() as attempts:
            assert gateway.worker.run_until_idle(30)
        assert attempts == []
        view = gateway.store.requests.view(request_id)
        assert view["state"] == "failed" and LOOP_RULE in view["status"] and API_TOKEN not in str(view)
    finally:
        gateway.close()
