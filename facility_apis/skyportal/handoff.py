"""Handing a follow-up request to the facility_apis gateway instead of running it here.

The gateway then submits, follows and retrieves the request, and reports back through
SkyPortal's ``/api/facility`` (see ``listener.py``) and ``PUT /api/photometry``. Both functions
do network I/O: call them off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.egress import INTERNAL
from ..core.errors import AltdataError, FacilityError, PayloadError
from ..core.interface import Facility, FollowupRequest, instrument_refusal
from ..core.outcome import Outcome, State, skyportal_status
from ..core.photometry import Photometry
from ..core.transport import Transaction, Transport
from .gateway_client import GatewayClient, GatewayError
from .settings import Settings
from .snapshot import GATEWAY_ID


@dataclass(frozen=True)
class Result:
    """What an operation leaves in SkyPortal: a status (``None`` leaves it alone), transactions
    (``tags`` added to each stored response), photometry to store, or an ``error`` to raise
    after the transactions are recorded."""

    status: str | None
    transactions: tuple[Transaction, ...] = ()
    tags: dict[str, Any] = field(default_factory=dict)
    photometry: Photometry | None = None
    error: str | None = None


def _bodies(facility: Facility, request: FollowupRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """The gateway's allocation and request bodies, from validated altdata and payload."""
    allocation = request.allocation
    altdata = facility.validate_altdata(allocation.altdata, instrument_name=allocation.instrument_name)
    payload = facility.validate_payload(request.payload, request.target)  # what depends on the source is decided here
    facility.check_instrument_form(payload, name=allocation.instrument_name, filters=tuple(allocation.filters))
    allocation_body = {
        "facility": facility.name,
        "altdata": altdata,
        "pi": allocation.pi,
        "proposal_id": allocation.proposal_id,
        "instrument_id": allocation.instrument_id,
        "instrument_name": allocation.instrument_name,
        "filters": list(allocation.filters),
        "group_ids": list(allocation.group_ids),
    }
    target = request.target
    request_body = {
        "allocation_id": allocation.id,
        "followup_request_id": request.id,
        "obj_id": target.id,
        "target": {"id": target.id, "ra": target.ra, "dec": target.dec} | ({"aliases": list(target.aliases)} if target.aliases else {}),
        "payload": payload,
        "requester": request.requester,
    }
    # The gateway's schemas type these fields: an unknown value is left out, never sent as null.
    return _without_none(allocation_body), _without_none(request_body)


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def hand_off(facility: Facility, request: FollowupRequest, settings: Settings) -> Result:
    """Validate here (no round trip for a typo), then create or replace the allocation at the
    gateway (it follows SkyPortal's altdata edits) and hand it the request. An allocation without
    the ``instrument_id`` a facility returning photometry needs fails here, before any call."""
    refusal = instrument_refusal(facility, request.allocation.instrument_id)
    if refusal is not None:
        return Result(Outcome(State.FAILED, f"the allocation names no instrument_id: {refusal}").status)
    try:
        allocation_body, request_body = _bodies(facility, request)
    except AltdataError as exc:
        return Result(Outcome(State.FAILED, str(exc)).status)
    except PayloadError as exc:
        return Result(Outcome(State.REJECTED, str(exc)).status)
    with Transport(secrets=facility.secrets(request.allocation.altdata), egress=INTERNAL) as transport, transport.recording() as records:
        client = GatewayClient(settings.gateway_url or "", settings.gateway_token or "", transport)
        try:
            client.put_allocation(request.allocation.id, allocation_body)
            data = client.submit_request(request_body)
        except FacilityError as exc:
            detail = transport.redactor.text(str(exc))
            return Result(skyportal_status(State.FAILED, detail), tuple(records))
    gateway_id = data["id"]
    return Result(f"submitted to gateway (request {gateway_id})", tuple(records), {GATEWAY_ID: gateway_id})


def cancel(gateway_id: Any, settings: Settings, secrets: list[str]) -> Result:
    """Cancel at the gateway a request it holds (it cancels at the facility in turn)."""
    if not settings.gateway_url:
        return Result(None, error="this request was handed to the gateway, which is no longer configured: configure it to delete the request")
    with Transport(secrets=secrets, egress=INTERNAL) as transport, transport.recording() as records:
        client = GatewayClient(settings.gateway_url, settings.gateway_token or "", transport)
        try:
            client.cancel_request(gateway_id)
            status = "deleted: canceled at the gateway"
        except GatewayError as exc:
            if exc.http_status != 404:
                return Result(None, tuple(records), error=f"could not delete: {exc}")
            status = "deleted: the gateway no longer holds the request"
        except FacilityError as exc:
            return Result(None, tuple(records), error=f"could not delete: {exc}")
    return Result(status, tuple(records))
