"""SkyPortal's call shape handing ATLAS to a real gateway, which follows it against the ATLAS
emulator and reports back to the SkyPortal stub: the whole path of a deployment, on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest

from facility_apis.gateway.api import make_app
from facility_apis.gateway.crypto import SecretBox
from facility_apis.gateway.runner import AppThread
from facility_apis.gateway.store import Store
from facility_apis.skyportal import ATLASAPI, configure, reset
from facility_apis.testing import ATLASEmulator, SkyPortalStub
from facility_apis.testing.skyportal_models import AsyncSession, make_request, use_fake_models

ATLAS_TOKEN = "e2e-handoff-atlas-token-41d2"
SP_TOKEN = "e2e-handoff-skyportal-token-88"


@pytest.fixture
def deployment(tmp_path, secret_key, fast_schedule):
    with (
        ATLASEmulator(tokens={ATLAS_TOKEN: "sp"}, queue_time=0.1, run_time=0.1, rows=6) as atlas,
        SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as skyportal,
    ):
        store = Store(f"sqlite:///{tmp_path / 'gw.db'}", SecretBox(secret_key), schedule=fast_schedule)
        token = store.clients.add("skyportal")
        with AppThread(make_app(store)) as http, use_fake_models():
            configure(gateway_url=http.url, gateway_token=token)
            try:
                yield atlas, skyportal, store
            finally:
                reset()
        store.close()


def test_atlasapi_hands_off_and_the_gateway_reports_back(deployment, follow_through):
    atlas, skyportal, store = deployment
    skyportal.add_request(11, obj_id="ZTF26skyp", instrument_id=3, instrument_filters=["atlasc", "atlaso"])
    request = make_request(altdata={"api_token": ATLAS_TOKEN}, payload={"start_date": "2026-10-01", "end_date": "2026-10-31"})
    session = AsyncSession(request)

    asyncio.run(ATLASAPI.submit(request, session, refresh_source=True))
    assert request.status.startswith("submitted to gateway (request ")

    assert follow_through(store, atlas.base_url, skyportal.url, SP_TOKEN)

    statuses = skyportal.statuses(11)
    assert statuses[0].startswith("submitted: ATLAS task") and statuses[-1].startswith("complete: 6 points")
    points = skyportal.photometry("ZTF26skyp")
    assert len(points) == 6 and {p["instrument_id"] for p in points} == {3}
    assert sorted(points[0]["group_ids"]) == [2, 7]  # the allocation's group and its share groups
    stored = json.dumps([[t.request, t.response] for t in session.transactions]) + request.status
    assert ATLAS_TOKEN not in stored
