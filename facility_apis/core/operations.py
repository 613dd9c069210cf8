"""``perform``: the one way to run a facility operation.

It validates the allocation (and, for ``submit``, ``find`` and ``remote_validate``, the payload,
filled in from what the host knows of the target: ``Facility.validate_payload(payload,
target)``), records the call's HTTP exchanges with the allocation's secrets masked, runs the
operation, turns every typed error into an ``Outcome``, attaches the redacted transactions, and
makes the detail one masked line of at most ``DETAIL_LIMIT`` characters. Callers never see a raw exception from a facility, and nothing
they receive holds a secret.

=======================  ==========  ================================================================
raised                   state       ``poll_after``
=======================  ==========  ================================================================
``AltdataError``         failed      none (the admin must fix the allocation)
``PayloadError``         rejected    none
``Rejected``             rejected    none on submit/update/remote_validate; while following or
                                     deleting: failed, none
``CredentialsRefused``   failed      ``RETRY_AFTER_FAILURE`` while following; none on submit
``Throttled``            throttled   the wait the facility asked for
``FacilityUnavailable``  failed      ``RETRY_AFTER_FAILURE``, except a submit that may have arrived
                                     (none, and ``maybe_sent``: it reads ``failed: ...``)
``RemoteError``          failed      ``RETRY_AFTER_FAILURE`` while following (none if ``permanent``);
                                     none on submit and remote_validate
``EgressRefused``        failed      none (the destination is not allowed)
``ConfigurationError``   failed      none (the deployment must be fixed, e.g. an optional
                                     package the facility needs is not installed)
anything else (a bug)    failed      none; the traceback is logged, redacted
=======================  ==========  ================================================================

An outcome's ``cursor`` that holds one of the allocation's secrets or is longer than
``CURSOR_LIMIT`` is a bug too: the outcome becomes ``failed`` (no ``poll_after``) and the cursor is
dropped, so no caller ever stores it.

"While following" means every operation but ``submit`` and ``remote_validate``: ``get``,
``update``, ``delete`` and ``find`` (which only reads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .answers import one_line
from .egress import EgressRefused
from .errors import (
    AltdataError,
    ConfigurationError,
    CredentialsRefused,
    FacilityError,
    FacilityUnavailable,
    NotImplementedOperation,
    PayloadError,
    Rejected,
    RemoteError,
    Throttled,
)
from .interface import PERFORMABLE, REMOTE_VALIDATE, Facility, FollowupRequest
from .outcome import CURSOR_LIMIT, Outcome, State
from .redact import get_logger
from .transport import MAY_HAVE_ARRIVED, Transport

log = get_logger(__name__)

#: Seconds before following up again after a transient failure, when nothing better is known.
RETRY_AFTER_FAILURE = 60.0
#: Longest detail kept in an outcome (remote error bodies can be whole HTML pages).
DETAIL_LIMIT = 500


def perform(facility: Facility, operation: str, request: FollowupRequest, transport: Transport) -> Outcome:
    """Run ``facility.<operation>(request, transport)`` safely; see the module docstring.

    ``operation`` is one of ``PERFORMABLE``: ``submit``, ``get``, ``update``, ``delete``,
    ``find`` or ``remote_validate`` (``find`` and ``remote_validate``, like ``submit``, validate
    the payload first). Raises only for programming errors:
    ``ValueError`` for an unknown operation, ``NotImplementedOperation`` for one the facility does
    not implement.
    """
    if operation not in PERFORMABLE:
        raise ValueError(f"unknown operation {operation!r}; expected one of {', '.join(PERFORMABLE)}")
    if not facility.implements()[operation]:
        raise NotImplementedOperation(f"{facility.name} does not implement {operation}")
    following = operation not in ("submit", REMOTE_VALIDATE)
    remote_id = request.remote_id
    with transport.recording(facility.secrets(request.allocation.altdata or {})) as transactions:
        try:
            altdata = facility.validate_altdata(request.allocation.altdata or {}, instrument_name=request.allocation.instrument_name)
            allocation = dataclasses.replace(request.allocation, altdata=altdata)
            checked = operation in ("submit", "find", REMOTE_VALIDATE)  # each builds the submission from the payload
            payload = facility.validate_payload(request.payload, request.target) if checked else dict(request.payload)
            if not following:
                facility.refuse_a_closed_window(payload)  # a held request may outlive its window
            request = dataclasses.replace(request, allocation=allocation, payload=payload)
            outcome = getattr(facility, operation)(request, transport)
        except AltdataError as exc:
            outcome = Outcome(State.FAILED, str(exc), remote_id=remote_id)
        except PayloadError as exc:
            outcome = Outcome(State.REJECTED, str(exc), remote_id=remote_id)
        except Rejected as exc:
            if operation in ("submit", "update", REMOTE_VALIDATE):
                outcome = Outcome(State.REJECTED, str(exc), remote_id=remote_id)
            else:
                outcome = Outcome(State.FAILED, f"{facility.title} refused the {operation}: {exc}", remote_id=remote_id)
        except Throttled as exc:
            outcome = Outcome(State.THROTTLED, str(exc), remote_id=remote_id, poll_after=exc.wait)
        except FacilityUnavailable as exc:
            # A submission that may have reached the facility is never repeated automatically.
            retry = following or not exc.sent
            maybe_sent = operation == "submit" and exc.sent
            outcome = Outcome(State.FAILED, str(exc), remote_id=remote_id, poll_after=RETRY_AFTER_FAILURE if retry else None, maybe_sent=maybe_sent)
        except (RemoteError, CredentialsRefused) as exc:
            retry = following and not getattr(exc, "permanent", False)
            if operation == "submit" and getattr(exc, "maybe_done", False):  # e.g. a 5xx to the creating POST
                outcome = Outcome(State.FAILED, f"{exc}; {MAY_HAVE_ARRIVED}", remote_id=remote_id, maybe_sent=True)
            else:
                outcome = Outcome(State.FAILED, str(exc), remote_id=remote_id, poll_after=RETRY_AFTER_FAILURE if retry else None)
        except (EgressRefused, ConfigurationError) as exc:
            outcome = Outcome(State.FAILED, str(exc), remote_id=remote_id)
        except Exception as exc:  # a facility bug must not lose the request: report it as a failure
            log.exception("%s.%s raised unexpectedly", facility.name, operation)
            outcome = Outcome(State.FAILED, f"internal error in {facility.name}.{operation}: {type(exc).__name__}", remote_id=remote_id)
        outcome = _checked_cursor(facility, operation, outcome, transport, remote_id)
        # Mask first, then fold and cut: cutting first could leave part of a secret unmasked.
        detail = one_line(transport.redactor.text(outcome.detail), DETAIL_LIMIT)
    return dataclasses.replace(outcome, detail=detail, transactions=tuple(transactions))


def _checked_cursor(facility: Facility, operation: str, outcome: Outcome, transport: Transport, remote_id: str | None) -> Outcome:
    """``outcome``, or a failure without the cursor when the cursor could leak or overflow."""
    cursor = outcome.cursor
    if cursor is None:
        return outcome
    problem = None
    if not isinstance(cursor, str):
        problem = "a cursor that is not text"
    elif len(cursor) > CURSOR_LIMIT:
        problem = f"a cursor over {CURSOR_LIMIT} characters"
    elif transport.redactor.text(cursor) != cursor:
        problem = "a cursor holding a secret"
    if problem is None:
        return outcome
    log.error("%s.%s returned %s; it was dropped", facility.name, operation, problem)
    return Outcome(State.FAILED, f"internal error in {facility.name}.{operation}: it returned {problem}", remote_id=outcome.remote_id or remote_id)


def exchange(facility: Facility, altdata: Mapping[str, Any], transport: Transport, *, instrument_name: str | None = None) -> dict[str, Any]:
    """Validate ``altdata`` (against the allocation's instrument too, when ``instrument_name`` is
    given) and run the facility's one-time exchange on it
    (:meth:`~facility_apis.core.interface.Facility.exchange_altdata`): the altdata to store.

    Every error is an ``AltdataError`` with a masked message: the facility's own, or one saying the
    exchange with the facility failed (refused credentials, an unreachable service, a refused
    destination), so a caller that saves allocations refuses the save with field errors. The
    exchange's transactions are not kept: the answer that carries a new token would show it.
    """
    cleaned = facility.validate_altdata(altdata, instrument_name=instrument_name)
    with transport.recording(facility.secrets(cleaned)):
        try:
            exchanged = facility.exchange_altdata(dict(cleaned), transport)
        except AltdataError:
            raise
        except (FacilityError, EgressRefused) as exc:
            message = one_line(transport.redactor.text(str(exc)), DETAIL_LIMIT)
            raise AltdataError.single("$", f"{facility.title} refused or could not complete the credential exchange: {message}") from None
    return facility.validate_altdata(exchanged, instrument_name=instrument_name)
