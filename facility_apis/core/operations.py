"""``perform``: the one way to run a facility operation.

It validates the allocation (and, for a submission, the payload), records the call's HTTP
exchanges with the allocation's secrets masked, runs the operation, turns every typed error into
an ``Outcome``, attaches the redacted transactions, and makes the detail one masked line of at
most ``DETAIL_LIMIT`` characters. Callers never see a raw exception from a facility, and nothing
they receive holds a secret.

=======================  ==========  ================================================================
raised                   state       ``poll_after``
=======================  ==========  ================================================================
``AltdataError``         failed      none (the admin must fix the allocation)
``PayloadError``         rejected    none
``Rejected``             rejected    none on submit/update/remote_validate; while following or deleting: failed, none
``CredentialsRefused``   failed      ``RETRY_AFTER_FAILURE`` while following; none on submit
``Throttled``            throttled   the wait the facility asked for
``FacilityUnavailable``  failed      ``RETRY_AFTER_FAILURE``, except a submit that may have arrived
``RemoteError``          failed      ``RETRY_AFTER_FAILURE`` while following (none if ``permanent``);
                                     none on submit and remote_validate
``EgressRefused``        failed      none (the destination is not allowed)
anything else (a bug)    failed      none; the traceback is logged, redacted
=======================  ==========  ================================================================
"""

from __future__ import annotations

import dataclasses

from .answers import one_line
from .egress import EgressRefused
from .errors import (
    AltdataError,
    CredentialsRefused,
    FacilityUnavailable,
    NotImplementedOperation,
    PayloadError,
    Rejected,
    RemoteError,
    Throttled,
)
from .interface import CHECKS, OPERATIONS, Facility, FollowupRequest
from .outcome import Outcome, State
from .redact import get_logger
from .transport import Transport

log = get_logger(__name__)

#: Seconds before following up again after a transient failure, when nothing better is known.
RETRY_AFTER_FAILURE = 60.0
#: Longest detail kept in an outcome (remote error bodies can be whole HTML pages).
DETAIL_LIMIT = 500


def perform(facility: Facility, operation: str, request: FollowupRequest, transport: Transport) -> Outcome:
    """Run ``facility.<operation>(request, transport)`` safely; see the module docstring.

    ``operation`` is one of ``OPERATIONS`` or ``remote_validate``, which is run as a submission
    is (the payload validated first, nothing retried) but changes nothing at the facility.

    Raises only for programming errors: ``ValueError`` for an unknown operation,
    ``NotImplementedOperation`` for one the facility does not implement.
    """
    if operation not in OPERATIONS + CHECKS:
        raise ValueError(f"unknown operation {operation!r}; expected one of {', '.join(OPERATIONS + CHECKS)}")
    if not facility.implements()[operation]:
        raise NotImplementedOperation(f"{facility.name} does not implement {operation}")
    sending = operation in ("submit", *CHECKS)
    following = not sending
    remote_id = request.remote_id
    with transport.recording(facility.secrets(request.allocation.altdata or {})) as transactions:
        try:
            altdata = facility.validate_altdata(request.allocation.altdata or {})
            allocation = dataclasses.replace(request.allocation, altdata=altdata)
            payload = facility.validate_payload(request.payload) if sending else dict(request.payload)
            request = dataclasses.replace(request, allocation=allocation, payload=payload)
            outcome = getattr(facility, operation)(request, transport)
        except AltdataError as exc:
            outcome = Outcome(State.FAILED, str(exc), remote_id=remote_id)
        except PayloadError as exc:
            outcome = Outcome(State.REJECTED, str(exc), remote_id=remote_id)
        except Rejected as exc:
            if operation in ("submit", "update", *CHECKS):
                outcome = Outcome(State.REJECTED, str(exc), remote_id=remote_id)
            else:
                outcome = Outcome(State.FAILED, f"{facility.title} refused the {operation}: {exc}", remote_id=remote_id)
        except Throttled as exc:
            outcome = Outcome(State.THROTTLED, str(exc), remote_id=remote_id, poll_after=exc.wait)
        except FacilityUnavailable as exc:
            # A submission that may have reached the facility is never repeated automatically.
            retry = following or not exc.sent
            outcome = Outcome(State.FAILED, str(exc), remote_id=remote_id, poll_after=RETRY_AFTER_FAILURE if retry else None)
        except (RemoteError, CredentialsRefused) as exc:
            retry = following and not getattr(exc, "permanent", False)
            outcome = Outcome(State.FAILED, str(exc), remote_id=remote_id, poll_after=RETRY_AFTER_FAILURE if retry else None)
        except EgressRefused as exc:
            outcome = Outcome(State.FAILED, str(exc), remote_id=remote_id)
        except Exception as exc:  # a facility bug must not lose the request: report it as a failure
            log.exception("%s.%s raised unexpectedly", facility.name, operation)
            outcome = Outcome(State.FAILED, f"internal error in {facility.name}.{operation}: {type(exc).__name__}", remote_id=remote_id)
        # Mask first, then fold and cut: cutting first could leave part of a secret unmasked.
        detail = one_line(transport.redactor.text(outcome.detail), DETAIL_LIMIT)
    return dataclasses.replace(outcome, detail=detail, transactions=tuple(transactions))
