"""The normalised lifecycle of a follow-up request and the ``Outcome`` every operation returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .frames import Frame
    from .photometry import Photometry
    from .transport import Transaction


class State(str, enum.Enum):
    """Where a follow-up request stands. ``detail`` in the Outcome says why, in words."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    THROTTLED = "throttled"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    NO_DATA = "no_data"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELED = "canceled"
    DELETED = "deleted"

    @property
    def terminal(self) -> bool:
        """No further call to the facility can change this state."""
        return self in TERMINAL

    @property
    def active(self) -> bool:
        """The facility holds the request: it should be followed (polled)."""
        return self in (State.SUBMITTED, State.QUEUED, State.RUNNING)


#: Longest ``Outcome.cursor`` a caller must keep (characters).
CURSOR_LIMIT = 16384

TERMINAL = frozenset({State.COMPLETED, State.NO_DATA, State.REJECTED, State.CANCELED, State.DELETED})


@dataclass(frozen=True)
class Outcome:
    """What a facility operation produced.

    ``poll_after`` is the number of seconds the caller should wait before the next call (a
    throttle's wait, or the facility's advised polling interval); ``None`` when nothing is due.

    ``cursor`` is a short text (at most ``CURSOR_LIMIT`` characters, never a secret) the facility
    wants back on its next call for this request, as ``FollowupRequest.cursor``: e.g. which data
    it already delivered, or what the request changed at the facility. Callers that follow a
    request keep the newest one (the gateway in its ``requests.cursor`` column, the SkyPortal
    classes in the request's transactions, ``follow()`` in memory); ``None`` leaves the kept one
    unchanged. Opaque to everyone but the facility.

    ``frames`` are data files the facility lists for the request (see ``frames.py``), the
    complete list as of this call.

    ``maybe_sent`` marks a failed submission that may nevertheless have reached the facility (no
    answer came, or one that proves nothing): its status reads ``failed: ...``, never
    ``failed to submit: ...``, which SkyPortal answers by offering to submit again.
    """

    state: State
    detail: str = ""
    remote_id: str | None = None
    poll_after: float | None = None
    photometry: Photometry | None = None
    transactions: tuple[Transaction, ...] = field(default=(), repr=False)
    cursor: str | None = None
    frames: tuple[Frame, ...] = ()
    maybe_sent: bool = False

    @property
    def status(self) -> str:
        """The SkyPortal ``FollowupRequest.status`` text for this outcome.

        Keeps SkyPortal's words so its rules keep working: ``submitted``, ``rejected: ...`` and
        ``failed to submit: ...`` (both resubmittable in SkyPortal), ``deleted``.
        """
        return skyportal_status(self.state, self.detail, submitted=self.remote_id is not None or self.maybe_sent)


_PREFIX = {
    State.PENDING: "pending submission",
    State.SUBMITTED: "submitted",
    State.QUEUED: "queued",
    State.RUNNING: "running",
    State.COMPLETED: "complete",
    State.NO_DATA: "complete: no data",
    State.REJECTED: "rejected",
    State.THROTTLED: "throttled",
    State.FAILED: "failed",
    State.CANCELED: "canceled",
    State.DELETED: "deleted",
}


def skyportal_status(state: State, detail: str = "", *, submitted: bool = False) -> str:
    """Derive SkyPortal's status string from a state and its detail.

    A throttle or failure before the facility holds the request reads ``failed to submit: ...``
    so that SkyPortal lets the observer submit again; a failure while following an accepted
    request, or of a submission that may have arrived (``submitted``), reads ``failed: ...``.
    """
    prefix = "failed to submit" if state in (State.THROTTLED, State.FAILED) and not submitted else _PREFIX[state]
    return f"{prefix}: {detail}" if detail else prefix
