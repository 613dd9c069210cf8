"""Fink forced photometry end to end through the gateway: the store, a worker and the outbox against
the Fink emulator and the SkyPortal stub, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from gateway_support import follow_and_deliver

from facility_apis.core.interface import Target
from facility_apis.facilities.fink_fp import FinkForcedPhotometryFacility
from facility_apis.gateway.pacing import FacilityLimit
from facility_apis.gateway.worker import Worker, WorkerSettings
from facility_apis.testing.fink import FinkEmulator
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal import SkyPortalStub

SP_TOKEN = "fink-e2e-skyportal-token-0d9e"
BIG, OTHER = "313761043604045880", "313699514821640259"
LSST = ["lsstu", "lsstg", "lsstr", "lssti", "lsstz", "lssty"]


@pytest.fixture
def fink():
    with FinkEmulator() as emulator:
        emulator.add_object(BIG, points=36)
        emulator.add_object(OTHER, points=12)
        yield emulator


@pytest.fixture
def skyportal():
    with SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as stub:
        yield stub


def follow(store, fink, skyportal, *, config=None, limit=None) -> bool:
    limits = {"fink_fp": limit} if limit else {}
    settings = WorkerSettings(idle=0.05, egress=loopback_egress(fink), limits=limits)
    worker = Worker(store, facility_config={"fink_fp": {"base_url": fink.url, **(config or {})}}, settings=settings)
    return follow_and_deliver(worker, store, skyportal.url, SP_TOKEN)


def add(store, skyportal, followup_id, target, payload=None):
    owner = store.clients.authenticate(store.clients.add(f"client{followup_id}"))
    store.allocations.put(owner, followup_id, "fink_fp", {}, instrument_id=7, group_ids=[3])
    skyportal.add_request(followup_id, obj_id=target.id, instrument_id=7, instrument_filters=LSST, instrument_name="LSST")
    payload = FinkForcedPhotometryFacility().validate_payload(payload or {}, target)
    return store.requests.add(followup_id, target, payload, followup_request_id=followup_id)


def history(store, request_id):
    return [entry["status"] for entry in store.requests.view(request_id)["history"]][1:]


@pytest.mark.parametrize("output_format", ["json", "csv", "parquet"])
def test_ids_from_the_aliases_through_an_outage_to_photometry_at_skyportal(gateway_store, fink, skyportal, output_format):
    target = Target("ZTF26lsst", 150.1, -30.2, aliases=("ZTF26lsst", f"LSST:{BIG}", OTHER))
    request_id = add(gateway_store, skyportal, 51, target)
    fink.faults.add("status", count=2, status=503, path_prefix="/api/v1/fp")  # the transport's retry, then the gateway's
    assert follow(gateway_store, fink, skyportal, config={"output_format": output_format})

    sent = skyportal.statuses(51)
    assert sent == history(gateway_store, request_id)
    assert sent[0] == "pending submission: facility unavailable, will retry"
    assert sent[-1].startswith("complete: 48 points (") and sent[-1].endswith(f"from Fink for 2 diaObjectIds ({BIG}: 36, {OTHER}: 12)")
    assert len(sent) == 2
    # One query for both objects, asked in the deployment's format, the ids exactly as the aliases had them.
    answered = fink.queries
    assert [q["diaObjectId"] for q in answered] == [f"{BIG},{OTHER}"] and answered[0]["output-format"] == output_format
    points = skyportal.photometry("ZTF26lsst")
    assert len(points) == 48 and {p["filter"] for p in points} == set(LSST)
    assert all(p["origin"] == "fink_fp" and p["magsys"] == "ab" for p in points)
    assert any(p["mag"] is None for p in points) and any(p["mag"] is not None for p in points)
    assert gateway_store.requests.view(request_id)["remote_id"] == f"{BIG},{OTHER}"
    assert gateway_store.requests.view(request_id)["payload"]["diaObjectId"] == f"{BIG},{OTHER}"


def test_the_deployments_pace_and_batch_size_are_honoured(gateway_store, fink, skyportal):
    ids = [add(gateway_store, skyportal, 60 + i, Target(f"ZTF26p{i}", 10.0 + i, 5.0), {"diaObjectId": f"{BIG},{OTHER}"}) for i in range(3)]
    limit = FacilityLimit(concurrency=1, min_interval=0.3)
    assert follow(gateway_store, fink, skyportal, config={"max_ids_per_call": 1}, limit=limit)
    # Two queries per request (one id each), one request at a time, the requests 0.3 s apart: the gate
    # spaces the calls' starts, and a call leaves after its submission is marked in the database, so
    # allow for that: a call with no wait to absorb it leaves late, by 0.1 s seen on a loaded
    # machine; without the limit, the three requests' queries start together (gaps of milliseconds).
    assert [q["diaObjectId"] for q in fink.queries] == [BIG, OTHER] * 3
    starts = fink.query_times[::2]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(gap >= 0.1 for gap in gaps) and starts[-1] - starts[0] >= 0.3, gaps
    for followup_id, request_id in zip(range(60, 63), ids, strict=True):
        assert skyportal.statuses(followup_id) == history(gateway_store, request_id)
        assert skyportal.statuses(followup_id)[-1].startswith("complete: 48 points")


def test_an_unknown_object_ends_as_no_data_without_photometry(gateway_store, fink, skyportal):
    add(gateway_store, skyportal, 71, Target("ZTF26none", 1.0, 1.0), {"diaObjectId": "9223372036854775807"})
    assert follow(gateway_store, fink, skyportal)
    assert skyportal.statuses(71) == ["complete: no data: Fink has no forced photometry for diaObjectId 9223372036854775807"]
    assert skyportal.photometry("ZTF26none") == []
