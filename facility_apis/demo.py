"""``facility-apis demo``: ATLAS forced photometry end to end, on this machine only.

Starts the ATLAS emulator and the SkyPortal stub on 127.0.0.1, submits one request (the emulator
throttles the first try), follows it to completion, delivers the photometry and every status to
the stub, and prints each status change as it happens.
"""

from __future__ import annotations

import time
from typing import Callable

from .core.follow import follow
from .core.interface import Allocation, FollowupRequest, Target
from .core.outcome import Outcome, State
from .core.skyportal_client import SkyPortalClient
from .core.transport import Transport
from .facilities.atlas import ATLASFacility
from .testing import ATLASEmulator, SkyPortalStub

OBJ_ID, RA, DEC = "ZTF26demo", 150.1234, -20.5678
REQUEST_ID, INSTRUMENT_ID = 1, 1
ATLAS_TOKEN, SKYPORTAL_TOKEN = "demo-atlas-token", "demo-skyportal-token"


def run_demo(*, rows: int = 40, run_time: float = 1.0, poll_interval: float = 0.5, out: Callable[[str], None] = print) -> int:
    """Run the demo; 0 when the request completed and SkyPortal received everything."""
    started = time.monotonic()

    def report(outcome: Outcome) -> None:
        out(f"[{time.monotonic() - started:6.2f} s] {outcome.status}")

    with (
        ATLASEmulator(tokens={ATLAS_TOKEN: "demo"}, queue_time=2.5 * poll_interval, run_time=run_time, rows=rows) as atlas,
        SkyPortalStub(tokens={SKYPORTAL_TOKEN: {"Post from FacilityMessageListener"}}) as skyportal,
    ):
        skyportal.add_source(OBJ_ID, RA, DEC)
        skyportal.add_request(REQUEST_ID, obj_id=OBJ_ID, instrument_id=INSTRUMENT_ID, instrument_filters=["atlasc", "atlaso"])
        atlas.throttle_next(1, wait=1)
        out(f"ATLAS emulator at {atlas.base_url}; SkyPortal stub at {skyportal.url}")

        facility = ATLASFacility({"base_url": atlas.base_url, "poll_interval": poll_interval})
        allocation = Allocation(1, {"api_token": ATLAS_TOKEN}, instrument_id=INSTRUMENT_ID, group_ids=(1,))
        request = FollowupRequest(REQUEST_ID, Target(OBJ_ID, RA, DEC), allocation, {})
        with Transport(secrets=[ATLAS_TOKEN]) as transport:
            client = SkyPortalClient(skyportal.url, SKYPORTAL_TOKEN, transport)
            outcome = follow(facility, request, transport, skyportal=client, report=report)

        received = skyportal.statuses(REQUEST_ID)
        points = skyportal.photometry(OBJ_ID)
        out(f"SkyPortal received {len(received)} status messages and {len(points)} photometry points")
    return 0 if outcome.state is State.COMPLETED and received[-1:] == [outcome.status] and points else 1
