"""``facility-apis demo``: the gateway following an ATLAS request end to end, on this machine only.

Starts the ATLAS emulator and a SkyPortal stub on 127.0.0.1, then the gateway on the embedded
default (SQLite in the data directory, with a key file readable only by its owner). It configures
an allocation and forwards a request exactly as SkyPortal's GENERIC facility does in API mode,
then prints every status SkyPortal receives until the request is complete (the emulator throttles
the first submission, so the retry shows too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import requests

from .core.egress import EgressPolicy
from .gateway.api import callback_path
from .gateway.config import GatewayConfig, default_data_dir
from .gateway.crypto import write_key_file
from .gateway.policy import Schedule
from .gateway.runner import AppThread
from .gateway.service import Gateway
from .gateway.worker import WorkerSettings
from .testing import ATLASEmulator, SkyPortalStub

OBJ_ID, RA, DEC = "ZTF26demo", 150.1234, -20.5678
REQUEST_ID, ALLOCATION_ID, INSTRUMENT_ID = 1, 1, 1
ATLAS_TOKEN, SKYPORTAL_TOKEN = "demo-atlas-token-6f1c", "demo-skyportal-token-93ab"
FINAL = ("complete", "failed", "rejected", "deleted")


def _key(data_dir: Path) -> str:
    key_file = data_dir / "secret.key"
    return key_file.read_text().strip() if key_file.exists() else write_key_file(key_file)


def _fresh_database(data_dir: Path) -> str:
    database = data_dir / "demo.db"
    for leftover in (database, database.with_name("demo.db-wal"), database.with_name("demo.db-shm")):
        leftover.unlink(missing_ok=True)
    return f"sqlite:///{database}"


def run_demo(
    *,
    rows: int = 40,
    run_time: float = 1.0,
    poll_interval: float = 0.5,
    data_dir: Path | None = None,
    timeout: float = 60.0,
    out: Callable[[str], None] = print,
) -> int:
    """Run the demo; 0 when the request completed and SkyPortal received its photometry."""
    data_dir = Path(data_dir or default_data_dir() / "demo")
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (
        ATLASEmulator(tokens={ATLAS_TOKEN: "demo"}, queue_time=2.5 * poll_interval, run_time=run_time, rows=rows) as atlas,
        SkyPortalStub(tokens={SKYPORTAL_TOKEN: {"Post from SEDMListener"}}) as skyportal,
    ):
        skyportal.add_source(OBJ_ID, RA, DEC)
        skyportal.add_request(REQUEST_ID, listener="SEDMListener", obj_id=OBJ_ID, instrument_id=INSTRUMENT_ID, allocation_id=ALLOCATION_ID, payload={})
        atlas.throttle_next(1, wait=1)
        config = GatewayConfig(
            database_url=_fresh_database(data_dir),
            secret_key=_key(data_dir),
            skyportal_url=skyportal.url,
            skyportal_token=SKYPORTAL_TOKEN,
            facilities={"atlas": {"base_url": atlas.base_url, "poll_interval": poll_interval}},
            worker=WorkerSettings(idle=0.1, egress=EgressPolicy.allowing(atlas.url)),
            schedule=Schedule(default_poll=poll_interval, backoff_base=1.0),
        )
        gateway = Gateway(config)
        token = gateway.store.clients.add("demo")
        try:
            with AppThread(gateway.app()) as http:
                gateway.worker.callback_url = lambda request_id: http.url + callback_path(gateway.box, request_id)
                gateway.start_background()
                out(f"ATLAS emulator at {atlas.base_url}; SkyPortal stub at {skyportal.url}; gateway at {http.url} (data in {data_dir})")
                auth = {"Authorization": f"token {token}"}
                allocation = {"facility": "atlas", "altdata": {"api_token": ATLAS_TOKEN}, "instrument_id": INSTRUMENT_ID, "group_ids": [1]}
                requests.put(f"{http.url}/api/allocations/{ALLOCATION_ID}", json=allocation, headers=auth, timeout=10).raise_for_status()
                forwarded = {"obj_id": OBJ_ID, "allocation_id": ALLOCATION_ID, "payload": {}}  # SkyPortal GENERIC's API-mode body
                answer = requests.post(f"{http.url}/api/followup_request", json=forwarded, headers=auth, timeout=10)
                answer.raise_for_status()
                out(f"gateway accepted the request as #{answer.json()['data']['id']}")
                statuses = _watch(skyportal, started, timeout, out)
        finally:
            gateway.close()
        points = skyportal.photometry(OBJ_ID)
        out(f"SkyPortal received {len(statuses)} status messages and {len(points)} photometry points")
    return 0 if statuses and statuses[-1].startswith("complete") and points else 1


def _watch(skyportal: SkyPortalStub, started: float, timeout: float, out: Callable[[str], None]) -> list[str]:
    """Print each status SkyPortal receives, until a final one (or ``timeout``)."""
    seen: list[str] = []
    while time.monotonic() - started < timeout:
        statuses = skyportal.statuses(REQUEST_ID)
        for status in statuses[len(seen) :]:
            out(f"[{time.monotonic() - started:6.2f} s] SkyPortal status: {status}")
        seen = statuses
        if seen and seen[-1].startswith(FINAL):
            break
        time.sleep(0.05)
    return seen
