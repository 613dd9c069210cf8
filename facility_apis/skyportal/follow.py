"""Follow one request from submission to a terminal state, reporting every status change.

The simple, single-request driver behind ``facility-apis demo`` and the end-to-end tests. (The
gateway does the same for many requests at once, with persistence.) Sleeping lives here, never in
a facility.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from ..core.errors import FacilityError
from ..core.interface import Facility, FollowupRequest
from ..core.operations import perform
from ..core.outcome import Outcome, State
from ..core.transport import Transport
from .client import SkyPortalClient

Reporter = Callable[[Outcome], None]


def follow(
    facility: Facility,
    request: FollowupRequest,
    transport: Transport,
    *,
    skyportal: SkyPortalClient | None = None,
    report: Reporter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_calls: int = 1000,
) -> Outcome:
    """Submit ``request`` (retrying after throttles) and poll it until it is terminal.

    The newest ``Outcome.cursor`` goes back to the facility with each later call. Each new status
    is passed to ``report`` and, with ``skyportal``, posted to ``/api/facility``;
    photometry is delivered with ``PUT /api/photometry`` before the status that announces it.
    Stops after ``max_calls`` facility calls, returning the last outcome. An error from SkyPortal
    propagates: this driver keeps nothing to deliver later (the gateway's outbox does).
    """
    last_status: str | None = None

    def publish(outcome: Outcome) -> None:
        nonlocal last_status
        if outcome.photometry is not None and len(outcome.photometry) and skyportal is not None:
            allocation = request.allocation
            if allocation.instrument_id is None:
                raise FacilityError("the allocation names no instrument_id: SkyPortal cannot take its photometry")
            for upload in outcome.photometry.uploads(request.target.id, allocation.instrument_id, allocation.group_ids):
                skyportal.put_photometry(upload)  # at most 10,000 points each, as SkyPortal takes them
        if outcome.status != last_status:
            last_status = outcome.status
            if report:
                report(outcome)
            if skyportal is not None and request.id is not None:
                skyportal.post_status(request.id, outcome.status)

    outcome = Outcome(State.PENDING)
    for _ in range(max_calls):
        operation = "submit" if request.remote_id is None else "get"
        outcome = perform(facility, operation, request, transport)
        publish(outcome)
        if outcome.remote_id:
            request = dataclasses.replace(request, remote_id=outcome.remote_id)
        if outcome.cursor is not None:
            request = dataclasses.replace(request, cursor=outcome.cursor)
        if outcome.state.terminal or outcome.poll_after is None:
            break
        sleep(outcome.poll_after)
    return outcome
