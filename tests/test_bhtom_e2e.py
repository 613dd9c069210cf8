"""BHTOM end to end through the gateway, on SQLite and PostgreSQL: a request creates the target,
the emulated network adds photometry over time, the worker brings it back on the cadence and the
outbox delivers each new point to the SkyPortal stub once, statuses in order; deleting the request
then undoes it on BHTOM."""

from __future__ import annotations

import json
import time

from facility_apis.core.interface import Target
from facility_apis.gateway.outbox import Deliverer, DeliverySettings
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing.bhtom import BHTOMEmulator
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal import SkyPortalStub

BHTOM_TOKEN = "bhtom-e2e-token-2b7d"
SP_TOKEN = "bhtom-e2e-skyportal-token"
FILTERS = ["bessellv", "sdssg"]
VISIT = 0.4  # seconds between the emulated network's visits


def test_a_request_is_followed_and_each_new_point_reaches_skyportal_once(gateway_store):
    with BHTOMEmulator({"observer": ("pw", BHTOM_TOKEN)}, network_interval=VISIT) as bhtom, SkyPortalStub(
        tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}
    ) as skyportal:
        owner = gateway_store.clients.authenticate(gateway_store.clients.add("sp"))
        gateway_store.allocations.put(owner, 1, "bhtom", {"api_token": BHTOM_TOKEN}, instrument_id=1, filters=FILTERS, group_ids=[1])
        skyportal.add_request(11, obj_id="ZTF26bhtome2e", instrument_id=1, instrument_filters=FILTERS, instrument_name="BHTOM")
        payload = {"importance": 7, "cadence_hours": 24, "follow_days": 3}
        request_id = gateway_store.requests.add(1, Target("ZTF26bhtome2e", 210.5, 33.25), payload, followup_request_id=11)

        worker = Worker(
            gateway_store,
            facility_config={"bhtom": {"base_url": bhtom.base_url, "poll_interval": 0.3}},
            settings=WorkerSettings(idle=0.05, egress=loopback_egress(bhtom)),
        )
        quick = DeliverySettings(backoff_base=0.05, backoff_cap=0.2, idle=0.05)
        deliverer = Deliverer.for_skyportal(gateway_store, skyportal.url, SP_TOKEN, settings=quick)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(bhtom.points("ZTF26bhtome2e") if bhtom.target("ZTF26bhtome2e") else []) < 12:
                worker.run_once()
                deliverer.run_until_empty(5)
                time.sleep(0.05)
            # Let the last visits be fetched, then cancel: the worker undoes the request on BHTOM.
            settle = time.monotonic() + 1.0
            while time.monotonic() < settle:
                worker.run_once()
                time.sleep(0.05)
            bhtom.network_interval = None  # the network stops adding points
            worker.run_once()
            time.sleep(0.7)
            worker.run_once()
            time.sleep(0.2)
            gateway_store.requests.cancel(request_id, owner, can_delete=True)
            assert worker.run_until_idle(20) and deliverer.run_until_empty(20)
        finally:
            worker.close()
            deliverer.close()

        # The target was created once, with the request's values, and is now released.
        creates = [json.loads(r.body) for r in bhtom.requests if r.path == "/targets/createTarget/"]
        created = {"name": "ZTF26bhtome2e", "ra": 210.5, "dec": 33.25, "epoch": 2000.0, "classification": "Unknown", "importance": 7.0, "cadence": 1.0}
        assert creates == [created]
        assert bhtom.target("ZTF26bhtome2e")["importance"] == 0.0

        # Every point BHTOM has reached SkyPortal, each in exactly one delivery, none twice.
        on_bhtom = {(round(p.mjd, 8), p.filter) for p in bhtom.points("ZTF26bhtome2e")}
        assert len(on_bhtom) >= 12
        puts = [json.loads(r.body) for r in skyportal.requests if r.method == "PUT" and r.path == "/api/photometry"]
        delivered = [(round(mjd, 8), extra["bhtom_filter"]) for body in puts for mjd, extra in zip(body["mjd"], body["altdata"], strict=True)]
        assert sorted(delivered) == sorted(on_bhtom) and len(puts) >= 2
        stored = skyportal.photometry("ZTF26bhtome2e")
        assert len(stored) == len(on_bhtom)
        assert {p["origin"] for p in stored} == {"bhtom:Bialkow-Andor"} and {p["filter"] for p in stored} == set(FILTERS)
        assert sum(p["mag"] is None for p in stored) == sum(1 for p in bhtom.points("ZTF26bhtome2e") if p.error < 0)

        # The statuses reached SkyPortal in the order the gateway wrote them, none lost or repeated.
        view = gateway_store.requests.view(request_id)
        written = [entry["status"] for entry in view["history"]][1:]
        sent = skyportal.statuses(11)
        assert sent == written
        assert sent[0] == "submitted: target ZTF26bhtome2e created on BHTOM with importance 7, cadence 24 h"
        assert any(status.startswith("running: on BHTOM's list at importance 7, cadence 24 h: ") for status in sent)
        assert sent[-1] == "deleted: importance of ZTF26bhtome2e lowered to 0 on BHTOM (the allocation does not allow removing targets)"
        counts = [int(s.split(": ")[2].split(" ")[0]) for s in sent if s.startswith("running")]
        assert counts == sorted(counts) and counts[-1] == len(on_bhtom)
