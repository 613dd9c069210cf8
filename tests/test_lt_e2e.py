"""The Liverpool Telescope end to end: the gateway's store, worker and outbox against the node agent
emulator and the SkyPortal stub (SQLite and PostgreSQL), and the command line against the emulator.

Every status reaches SkyPortal once and in order; a cancel aborts the group at LT; a refused abort
leaves the request as it was and may be tried again; the password is in no record."""

from __future__ import annotations

import json

import pytest

from facility_apis.cli import main
from facility_apis.core.interface import Target
from facility_apis.core.registry import default_registry
from facility_apis.gateway.outbox import Deliverer, DeliverySettings
from facility_apis.gateway.store import Store
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing import SkyPortalStub
from facility_apis.testing.lt import LTNodeAgentEmulator
from facility_apis.testing.network import loopback_egress

PASSWORD = "e2e-LT-password-90d1c"
ALTDATA = {"username": "observer", "password": PASSWORD, "LT_proposalID": "PL26A01"}
SP_TOKEN = "lt-e2e-skyportal-token"
QUICK = DeliverySettings(backoff_base=0.05, backoff_cap=0.2, idle=0.05)
PAYLOADS = {
    "lt_ioo": {"observation_choices": ["g", "r", "i"], "exposure_time": 90},
    "lt_ioi": {"observation_choices": ["H"], "exposure_counts": 5},
    "lt_sprat": {"observation_type": "red", "exposure_time": 900},
}


@pytest.fixture
def lt():
    with LTNodeAgentEmulator({"observer": (PASSWORD, {"PL26A01"})}) as emulator:
        yield emulator


@pytest.fixture
def skyportal():
    with SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as stub:
        yield stub


class Gateway:
    """A client, one allocation per LT instrument, a worker and a deliverer over ``store``."""

    def __init__(self, store: Store, lt: LTNodeAgentEmulator, skyportal: SkyPortalStub):
        self.store, self.lt, self.skyportal = store, lt, skyportal
        self.owner = store.clients.authenticate(store.clients.add("skyportal"))
        self.allocations = {}
        for number, name in enumerate(PAYLOADS, start=1):
            store.allocations.put(self.owner, number, name, dict(ALTDATA), instrument_id=number, group_ids=[1])
            self.allocations[name] = number
        config = {name: {"base_url": lt.endpoint} for name in PAYLOADS}
        self.worker = Worker(store, facility_config=config, settings=WorkerSettings(idle=0.05, egress=loopback_egress(lt)))
        self.deliverer = Deliverer.for_skyportal(store, skyportal.url, SP_TOKEN, settings=QUICK)

    def add(self, facility: str, followup_id: int, payload=None) -> int:
        obj_id = f"ZTF26lt{followup_id}"
        self.skyportal.add_request(followup_id, obj_id=obj_id, instrument_id=self.allocations[facility])
        checked = default_registry().get(facility)().validate_payload(PAYLOADS[facility] if payload is None else payload)
        target = Target(obj_id, 359.99999999, -0.5 / 3600)  # coordinates at the edges, on the way through
        return self.store.requests.add(self.allocations[facility], target, checked, owner_id=self.owner, followup_request_id=followup_id)

    def settle(self) -> None:
        assert self.worker.run_until_idle(30) and self.deliverer.run_until_empty(30)

    def history(self, request_id: int) -> list[str]:
        return [entry["status"] for entry in self.store.requests.view(request_id)["history"]][1:]

    def close(self) -> None:
        self.worker.close()
        self.deliverer.close()


@pytest.fixture
def gateway(gateway_store, lt, skyportal):
    gw = Gateway(gateway_store, lt, skyportal)
    yield gw
    gw.close()


def test_submitted_then_cancelled_each_status_once_in_order(gateway, lt, skyportal):
    ids = {name: gateway.add(name, followup_id) for followup_id, name in enumerate(PAYLOADS, start=11)}
    gateway.settle()
    groups = {group.schedules[0]["device"]: group for group in lt.groups}
    assert sorted(groups) == ["IO:I", "IO:O", "Sprat"]
    assert [s["setup"] for s in groups["IO:O"].schedules] == ["G", "R", "I"]  # one Schedule per filter
    assert groups["IO:O"].schedules[0]["ra_deg"] == 0.0 and groups["IO:O"].schedules[0]["dec_deg"] < 0  # 24 h wrapped, sign kept
    for followup_id, name in enumerate(PAYLOADS, start=11):
        view = gateway.store.requests.view(ids[name])
        assert view["remote_id"] in {g.uid for g in lt.groups}
        assert skyportal.statuses(followup_id) == [f"submitted: Liverpool Telescope group {view['remote_id']}"]

    for name in PAYLOADS:
        assert gateway.store.requests.cancel(ids[name], gateway.owner, can_delete=True) == "submitted"  # a delete is due
    gateway.settle()
    assert all(group.aborted for group in lt.groups)
    assert sorted(d.get("uid") for d in lt.documents("abort")) == sorted(gateway.store.requests.view(ids[name])["remote_id"] for name in PAYLOADS)
    for followup_id, name in enumerate(PAYLOADS, start=11):
        uid = gateway.store.requests.view(ids[name])["remote_id"]
        expected = [f"submitted: Liverpool Telescope group {uid}", f"deleted: aborted at the Liverpool Telescope: group {uid} expires now"]
        assert skyportal.statuses(followup_id) == gateway.history(ids[name]) == expected


def test_a_refused_abort_keeps_the_request_and_a_later_cancel_tries_again(gateway, lt, skyportal):
    request_id = gateway.add("lt_ioo", 21)
    gateway.settle()
    uid = gateway.store.requests.view(request_id)["remote_id"]
    lt.reject_next("Internal error during GET_PROPOSAL: proposal database busy")
    gateway.store.requests.cancel(request_id, gateway.owner, can_delete=True)
    gateway.settle()
    view = gateway.store.requests.view(request_id)
    assert (view["state"], view["next_operation"]) == ("submitted", None)
    refused = (
        f"submitted: Liverpool Telescope group {uid}; not deleted at the facility: "
        f"the Liverpool Telescope refused to abort group {uid}: Internal error during GET_PROPOSAL: proposal database busy"
    )
    assert skyportal.statuses(21) == [f"submitted: Liverpool Telescope group {uid}", refused]
    assert not lt.groups[0].aborted

    gateway.store.requests.cancel(request_id, gateway.owner, can_delete=True)
    gateway.settle()
    assert lt.groups[0].aborted
    assert skyportal.statuses(21)[-1] == f"deleted: aborted at the Liverpool Telescope: group {uid} expires now"
    assert len(skyportal.statuses(21)) == 3


def test_rejections_and_faults_end_in_defined_states_and_nothing_is_resubmitted(gateway, lt, skyportal):
    lt.reject_next("Proposal PL26A01 has no time left")
    rejected = gateway.add("lt_sprat", 31)
    gateway.settle()
    lt.soap_fault_next("java.lang.RuntimeException: node agent restarting")
    faulted = gateway.add("lt_ioi", 32)
    gateway.settle()
    lt.garble_next()
    unreadable = gateway.add("lt_ioo", 33)
    gateway.settle()
    assert skyportal.statuses(31) == ["rejected: Proposal PL26A01 has no time left"]
    fault = "the Liverpool Telescope answered with a SOAP fault (S:Server): java.lang.RuntimeException: node agent restarting"
    assert skyportal.statuses(32) == [f"failed to submit: {fault}"]
    (unread,) = skyportal.statuses(33)
    assert unread.startswith("failed: Phase 2 group ZTF26lt33_") and "may exist at the Liverpool Telescope" in unread
    for request_id in (rejected, faulted, unreadable):
        assert gateway.store.requests.view(request_id)["next_operation"] is None
    # The unreadable answer came after LT created the group: the status names it, and the
    # request was not sent a second time.
    (group,) = lt.groups
    assert group.uid in unread and [d.get("uid") for d in lt.documents("request")].count(group.uid) == 1


def test_the_password_is_in_no_record_status_or_database_row(gateway, lt, skyportal, database):
    ids = [gateway.add(name, followup_id) for followup_id, name in enumerate(PAYLOADS, start=41)]
    gateway.settle()
    for request_id in ids:
        gateway.store.requests.cancel(request_id, gateway.owner, can_delete=True)
    gateway.settle()
    views = [gateway.store.requests.view(request_id) for request_id in ids]
    transactions = [t for view in views for t in view["transactions"]]
    assert len(transactions) == 6 and all(t["request"]["headers"]["Password"] == "***" for t in transactions)
    # It did travel: the emulator checked it on every call.
    assert all(request.headers["Password"] == PASSWORD for request in lt.requests)
    assert PASSWORD not in json.dumps(views) + repr([skyportal.statuses(i) for i in range(41, 44)])
    url, _ = database
    if url.startswith("sqlite:///"):
        with open(url.removeprefix("sqlite:///"), "rb") as stored:
            assert PASSWORD.encode() not in stored.read()


def test_the_cli_dry_run_and_remote_validation_against_the_emulator(lt, tmp_path, capsys):
    altdata, payload = tmp_path / "altdata.json", tmp_path / "payload.json"
    altdata.write_text(json.dumps(ALTDATA))
    payload.write_text(json.dumps(PAYLOADS["lt_ioo"]))
    common = ["--ra", "150.1234", "--dec", "-20.5678", "--target-id", "ZTF26cli", "--altdata", str(altdata), "--payload", str(payload)]
    common += ["--base-url", lt.endpoint, "--allow", lt.url]
    assert main(["submit", "lt_ioo", *common, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert dry.startswith(f"POST {lt.endpoint}\n") and "Password: ***" in dry and PASSWORD not in dry
    assert "&lt;Filter type=&quot;G&quot; /&gt;" in dry or '&lt;Filter type="G" /&gt;' in dry
    assert lt.requests == []  # the dry run sent nothing

    assert main(["submit", "lt_ioo", *common, "--remote-validate"]) == 0
    out = capsys.readouterr().out
    assert out == "pending submission: the Liverpool Telescope would accept this request (it answered with an offer); nothing was queued\n"
    assert [d.get("mode") for d in lt.documents()] == ["inquiry"] and lt.groups == []

    lt.reject_next("Device configuration error: IO:O filter wheel offline")
    assert main(["submit", "lt_ioo", *common, "--remote-validate"]) == 2
    assert capsys.readouterr().out == "rejected: Device configuration error: IO:O filter wheel offline\n"

    assert main(["submit", "lt_ioo", *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    (group,) = lt.groups
    assert lines == [f"submitted: Liverpool Telescope group {group.uid}", f"remote id: {group.uid}"]
