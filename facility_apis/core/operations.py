"""``perform``: the one way to run a facility operation.

It validates the allocation (and, for a submission, the payload), teaches the transport the
allocation's secrets, runs the operation, turns every typed error into an ``Outcome``, attaches the
redacted transactions, and masks secrets in the detail. Callers never see a raw exception from a
facility, and nothing they receive holds a secret.
"""

from __future__ import annotations

import dataclasses

from .errors import (
    AltdataError,
    FacilityUnavailable,
    NotImplementedOperation,
    PayloadError,
    RemoteError,
    Throttled,
)
from .interface import OPERATIONS, Facility, FollowupRequest
from .outcome import Outcome, State
from .redact import get_logger
from .transport import Transport

log = get_logger(__name__)

#: Seconds before following up again after a transient failure, when nothing better is known.
RETRY_AFTER_FAILURE = 60.0
#: Longest detail kept in an outcome (remote error bodies can be whole HTML pages).
DETAIL_LIMIT = 500


def _clip(text: str) -> str:
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


def perform(facility: Facility, operation: str, request: FollowupRequest, transport: Transport) -> Outcome:
    """Run ``facility.<operation>(request, transport)`` safely; see the module docstring."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; expected one of {', '.join(OPERATIONS)}")
    if not facility.implements()[operation]:
        raise NotImplementedOperation(f"{facility.name} does not implement {operation}")
    transport.add_secrets(facility.secrets(request.allocation.altdata or {}))
    following = operation != "submit"
    with transport.recording() as transactions:
        try:
            altdata = facility.validate_altdata(request.allocation.altdata or {})
            allocation = dataclasses.replace(request.allocation, altdata=altdata)
            payload = facility.validate_payload(request.payload) if operation == "submit" else dict(request.payload)
            request = dataclasses.replace(request, allocation=allocation, payload=payload)
            outcome = getattr(facility, operation)(request, transport)
        except AltdataError as exc:
            outcome = Outcome(State.FAILED, str(exc), remote_id=request.remote_id)
        except PayloadError as exc:
            outcome = Outcome(State.REJECTED, str(exc), remote_id=request.remote_id)
        except Throttled as exc:
            outcome = Outcome(State.THROTTLED, str(exc), remote_id=request.remote_id, poll_after=exc.wait)
        except FacilityUnavailable as exc:
            # A submission that may have reached the facility is never repeated automatically.
            retry = following or not exc.sent
            outcome = Outcome(State.FAILED, str(exc), remote_id=request.remote_id, poll_after=RETRY_AFTER_FAILURE if retry else None)
        except RemoteError as exc:
            outcome = Outcome(State.FAILED, str(exc), remote_id=request.remote_id, poll_after=RETRY_AFTER_FAILURE if following else None)
        except Exception as exc:  # a facility bug must not lose the request: report it as a failure
            log.exception("%s.%s raised unexpectedly", facility.name, operation)
            detail = f"internal error in {facility.name}.{operation}: {type(exc).__name__}"
            outcome = Outcome(State.FAILED, detail, remote_id=request.remote_id)
    return dataclasses.replace(
        outcome,
        # Mask first, then clip: clipping first could cut a secret and leave half of it unmasked.
        detail=_clip(transport.redactor.text(outcome.detail)),
        transactions=tuple(transactions),
    )
