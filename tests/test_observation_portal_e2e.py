"""LCO and SOAR end to end: the gateway's worker and outbox against the Observation Portal emulator
and the SkyPortal stub (SQLite and PostgreSQL stores), the CLI's remote validation against the
emulator, and SkyPortal's own call shape (the direct mode) against it."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from gateway_support import QUICK_DELIVERY, follow_and_deliver

from facility_apis.cli import main
from facility_apis.core.interface import Target
from facility_apis.core.registry import default_registry
from facility_apis.gateway.outbox import Deliverer
from facility_apis.gateway.store import Store
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing import SkyPortalStub
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.observation_portal import ObservationPortalEmulator

MAY_HAVE_ARRIVED = "; the request may have reached the facility and was not sent again"

PORTAL_TOKEN, ARCHIVE_TOKEN, SP_TOKEN = "e2e-portal-token-6b1f", "e2e-archive-token-90ac", "e2e-skyportal-token-2d"
LCO = {"API_TOKEN": PORTAL_TOKEN, "PROPOSAL_ID": "LCO2026B-001", "API_ARCHIVE_TOKEN": ARCHIVE_TOKEN}
SOAR = {"API_TOKEN": PORTAL_TOKEN, "PROPOSAL_ID": "SOAR2026B-004"}
SOUTH = ("ZTF26south", 150.0, -25.0)


@pytest.fixture
def portal():
    proposals = {"observer": {"LCO2026B-001", "SOAR2026B-004"}}
    with ObservationPortalEmulator(
        tokens={PORTAL_TOKEN: "observer"}, archive_tokens={ARCHIVE_TOKEN: "observer"}, proposals=proposals,
        schedule_time=0.4, wait_time=0.4, run_time=0.4, reduce_time=0.4,
    ) as emulator:  # fmt: skip
        yield emulator


@pytest.fixture
def skyportal():
    with SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as stub:
        yield stub


def seed(store: Store, skyportal: SkyPortalStub, facility: str, altdata: dict, payload: dict, followup_id: int = 1, obj=SOUTH) -> int:
    """An allocation on ``facility`` and one request SkyPortal knows as ``followup_id``."""
    owner = store.clients.authenticate(store.clients.add(f"client{followup_id}"))
    store.allocations.put(owner, followup_id, facility, altdata, instrument_id=1, group_ids=[1])
    skyportal.add_request(followup_id, obj_id=obj[0], instrument_id=1)
    validated = default_registry().get(facility)().validate_payload(payload)
    return store.requests.add(followup_id, Target(*obj), validated, followup_request_id=followup_id)


def worker_for(store: Store, portal: ObservationPortalEmulator) -> Worker:
    config = {"base_url": portal.base_url, "archive_url": portal.archive_url, "poll_interval": 0.05}
    names = [cls.name for cls in default_registry().all() if cls.name != "atlas"]
    return Worker(store, facility_config=dict.fromkeys(names, config), settings=WorkerSettings(idle=0.05, egress=loopback_egress(portal)))


def follow_through(store: Store, portal: ObservationPortalEmulator, skyportal: SkyPortalStub) -> bool:
    return follow_and_deliver(worker_for(store, portal), store, skyportal.url, SP_TOKEN)


def history(store: Store, request_id: int) -> list[str]:
    return [entry["status"] for entry in store.requests.view(request_id)["history"]][1:]  # SkyPortal set the first itself


def posts(portal: ObservationPortalEmulator) -> int:
    return len([r for r in portal.requests if r.method == "POST" and r.path == "/api/requestgroups/"])


def shape(status: str) -> str:
    """A status with its times and port numbers made generic."""
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<time>", re.sub(r"127\.0\.0\.1:\d+", "<portal>", status))


def in_order(observed: list[str], expected: list[str]) -> bool:
    """Whether ``observed`` is ``expected`` with some entries left out, the rest in order."""
    remaining = iter(expected)
    return all(any(status == candidate for candidate in remaining) for status in observed)


def test_submitted_pending_then_completed_with_its_frames_listed(gateway_store, portal, skyportal):
    payload = {"observation_choices": ["gp", "rp"], "exposure_time": 30, "exposure_counts": 2}
    request_id = seed(gateway_store, skyportal, "lco_sinistro", LCO, payload)
    assert follow_through(gateway_store, portal, skyportal)

    sent = skyportal.statuses(1)
    assert sent == history(gateway_store, request_id) and len(set(sent)) == len(sent), "every status once, in order"
    assert [shape(s) for s in sent] == [
        "submitted: Observation Portal request group 1001",
        "queued: waiting to be scheduled",
        "queued: scheduled at coj 1m0a for <time>",
        "running: observing at coj 1m0a since <time>",
        "running: request group 1001 observed; waiting for its reduced frames in the LCO archive",
        "complete: request group 1001 observed: 4 reduced frames (gp ×2, rp ×2) in the LCO archive",
    ]
    view = gateway_store.requests.view(request_id)
    (group,) = portal.request_groups()
    assert view["remote_id"] == str(group["id"]) and group["state"] == "COMPLETED" and posts(portal) == 1
    listed = [f for f in portal.frames("observer", time.time()) if f.level == 91]
    assert sorted(f["name"] for f in view["frames"]) == sorted(f.filename for f in listed)
    assert [f["filter"] for f in view["frames"]] == ["gp", "gp", "rp", "rp"]  # in the order they were taken
    assert all(f["url"].startswith(f"{portal.archive_url}/download/") and isinstance(f["mjd"], float) for f in view["frames"])
    assert skyportal.photometry(SOUTH[0]) == []  # frames are not photometry: nothing is posted as such
    stored = json.dumps(view)
    assert PORTAL_TOKEN not in stored and ARCHIVE_TOKEN not in stored


def test_a_pending_group_is_canceled_at_the_portal(gateway_store, portal, skyportal):
    portal.schedule_time = 600.0  # it stays waiting to be scheduled
    request_id = seed(gateway_store, skyportal, "lco_floyds", LCO, {})
    worker = worker_for(gateway_store, portal)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while gateway_store.requests.view(request_id)["state"] != "queued" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gateway_store.requests.cancel(request_id, can_delete=True) in ("queued", "deleted")
        while gateway_store.requests.view(request_id)["state"] != "deleted" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(20)
        worker.close()
    deliverer = Deliverer.for_skyportal(gateway_store, skyportal.url, SP_TOKEN, settings=QUICK_DELIVERY)
    try:
        assert deliverer.run_until_empty(30)
    finally:
        deliverer.close()
    assert skyportal.statuses(1) == [
        "submitted: Observation Portal request group 1001",
        "queued: waiting to be scheduled",
        "deleted: request group 1001 canceled at the portal",
    ]
    (group,) = portal.request_groups()
    assert group["state"] == "CANCELED" and [r["state"] for r in group["requests"]] == ["CANCELED"]
    cancels = [r for r in portal.requests if r.path == "/api/requestgroups/1001/cancel/"]
    assert len(cancels) == 1 and gateway_store.requests.view(request_id)["next_operation"] is None


def test_a_504_after_sending_is_found_by_name_and_never_sent_again(gateway_store, portal, skyportal):
    portal.lose_answer_next()
    payload = {"instrument_mode": "GHTS_R_400m1_2x2", "exposure_time": 600, "include_calibrations": False}
    request_id = seed(gateway_store, skyportal, "soar_goodman_spectrograph", SOAR, payload)
    assert follow_through(gateway_store, portal, skyportal)
    sent = skyportal.statuses(1)
    assert sent == history(gateway_store, request_id)
    found = "(found by name after: <portal> answered HTTP 504 (temporarily unavailable)" + MAY_HAVE_ARRIVED + ")"
    assert shape(sent[0]) == f"submitted: Observation Portal request group 1001 {found}"
    assert sent[-1] == "complete: request group 1001 observed"  # SOAR: no frames are listed
    assert posts(portal) == 1 and len(portal.request_groups()) == 1
    assert gateway_store.requests.view(request_id)["frames"] == []


def test_a_request_the_portal_refuses_is_rejected_with_its_reason(gateway_store, portal, skyportal):
    request_id = seed(gateway_store, skyportal, "lco_spectral", LCO, {"observation_choices": ["gp"]}, obj=("ZTF26north", 200.0, 65.0))
    assert follow_through(gateway_store, portal, skyportal)
    (status,) = skyportal.statuses(1)
    assert status.startswith("rejected: requests: According to the constraints of the request, the target will not be visible within the time window.")
    assert history(gateway_store, request_id) == [status] and portal.request_groups() == []


@pytest.mark.parametrize(
    ("fate", "facility", "payload", "expected"),
    [
        (
            "NOT_ATTEMPTED", "lco_muscat", {"exposure_time": 20},
            [
                "submitted: Observation Portal request group 1001",
                "queued: waiting to be scheduled",
                "queued: scheduled at <site> 2m0a for <time>",
                "queued: the observation at <site> 2m0a on <time> was not attempted; waiting to be scheduled again",
                "queued: scheduled at <site> 2m0a for <time>",
                "running: observing at <site> 2m0a since <time>",
                "running: request group 1001 observed; waiting for its reduced frames in the LCO archive",
                "complete: request group 1001 observed: 4 reduced frames (gp, ip, rp, zs) in the LCO archive",  # one exposure, four cameras
            ],
        ),
        (
            "WINDOW_EXPIRED", "lco_floyds", {},
            [
                "submitted: Observation Portal request group 1001",
                "queued: waiting to be scheduled",
                "complete: no data: the window ended before the request could be observed",
            ],
        ),
        (
            "FAILURE_LIMIT_REACHED", "soar_triplespec", {},
            [
                "submitted: Observation Portal request group 1001",
                "queued: waiting to be scheduled",
                "queued: scheduled at sor 4m0a for <time>",
                "running: observing at sor 4m0a since <time>",
                "complete: no data: the portal stopped trying after too many failed observations",
            ],
        ),
    ],
)  # fmt: skip
def test_how_a_group_ends_reaches_skyportal(gateway_store, portal, skyportal, fate, facility, payload, expected):
    portal.next_fate(fate)
    request_id = seed(gateway_store, skyportal, facility, SOAR if facility.startswith("soar") else LCO, payload)
    assert follow_through(gateway_store, portal, skyportal)
    sent = skyportal.statuses(1)
    assert sent == history(gateway_store, request_id)
    observed = [re.sub(r"at (ogg|coj) ", "at <site> ", shape(s)) for s in sent]
    # A phase the worker's polls happened to miss (a scheduled observation that started between two polls) may be absent.
    assert in_order(observed, expected) and observed[0] == expected[0] and observed[-1] == expected[-1], "\n".join(observed)


def test_remote_validation_reports_the_portals_errors_field_by_field(portal, tmp_path, capsys):
    altdata, payload = tmp_path / "altdata.json", tmp_path / "request.json"
    altdata.write_text(json.dumps(LCO))
    payload.write_text(json.dumps({"exposure_time": 900}))
    now = datetime.now(UTC)
    portal.semesters = ((now - timedelta(days=30), now + timedelta(days=2)),)  # the default 7-day window runs past its end
    command = ["submit", "lco_floyds", "--ra", "150", "--dec", "-25", "--target-id", "ZTF26cli", "--altdata", str(altdata), "--payload", str(payload)]
    command += ["--base-url", portal.base_url, "--allow", portal.url, "--remote-validate"]
    assert main(command) == 2
    out = capsys.readouterr().out
    assert out == "rejected: LCO Observation Portal would refuse it: $.end_date: The observation window does not fit within any defined semester.\n"
    portal.semesters = ()
    altdata.write_text(json.dumps({**LCO, "PROPOSAL_ID": "SOMEONE-ELSES"}))
    assert main(command) == 2
    assert capsys.readouterr().out == "rejected: LCO Observation Portal would refuse it: $: You do not belong to the proposal you are trying to submit with\n"
    altdata.write_text(json.dumps(LCO))
    assert main(command) == 0
    assert re.fullmatch(r"pending submission: LCO Observation Portal would accept it: \d+\.\d\d h of telescope time\n", capsys.readouterr().out)
    assert portal.request_groups() == [], "validation creates nothing"
    assert main(["submit", "atlas", "--ra", "1", "--dec", "2", "--altdata", str(altdata), "--remote-validate"]) == 2
    assert "atlas offers no remote validation" in capsys.readouterr().err


def test_skyportals_direct_mode_follows_to_the_frames_and_keeps_them_on_its_transactions(portal):
    from facility_apis.skyportal import configure, reset
    from facility_apis.skyportal.classes import api_class
    from facility_apis.testing.skyportal_models import AsyncSession, make_request, use_fake_models

    portal.schedule_time = portal.wait_time = portal.run_time = portal.reduce_time = 0.1
    config = {"base_url": portal.base_url, "archive_url": portal.archive_url, "poll_interval": 0.05}
    with use_fake_models():
        configure(facilities={"lco_sinistro": config}, egress=loopback_egress(portal))
        try:
            cls = api_class("SINISTROAPI")
            instrument = (3, "Sinistro", ["sdssi"])
            request = make_request(altdata=LCO, payload={"observation_choices": ["ip"]}, obj=SOUTH, instrument=instrument, api_classname="SINISTROAPI")
            session = AsyncSession(request)
            asyncio.run(cls.submit(request, session))
            assert request.status.startswith("submitted: Observation Portal request group 1001; not followed: SkyPortal does not poll")
            deadline = time.monotonic() + 10
            while not request.status.startswith("complete") and time.monotonic() < deadline:
                asyncio.run(cls.get(request, session))
                time.sleep(0.05)
        finally:
            reset()
    assert request.status == "complete: request group 1001 observed: 1 reduced frame (ip) in the LCO archive"
    tagged = [t.response["frames"] for t in session.transactions if "frames" in t.response]
    assert tagged and all(frames == tagged[0] for frames in tagged) and [f["filter"] for f in tagged[0]] == ["ip"]
    text = json.dumps([[t.request, t.response] for t in session.transactions], default=str)
    assert PORTAL_TOKEN not in text and ARCHIVE_TOKEN not in text
