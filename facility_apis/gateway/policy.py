"""What happens after a facility call: the next state, status, operation and due time.

Pure: the store applies the ``Step`` it returns in one transaction with the outbox rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.outcome import Outcome, State


@dataclass(frozen=True)
class Schedule:
    """The worker's timing rules (seconds)."""

    default_poll: float = 60.0
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0
    #: How long a request may go without a final answer before the gateway gives up on it.
    horizon: float = 3 * 86400.0
    #: How long, after giving up, the gateway keeps trying to cancel the request at the facility.
    cancel_horizon: float = 86400.0

    def backoff(self, failures: int) -> float:
        """Wait after the ``failures``-th consecutive failure: doubling from the base, capped."""
        return min(self.backoff_cap, self.backoff_base * 2 ** max(failures - 1, 0))


@dataclass(frozen=True)
class Step:
    state: State
    status: str
    detail: str
    operation: str | None
    next_poll_at: float | None
    failures: int
    #: A new give-up time (a cancel after giving up has its own), or None to keep the request's.
    give_up_at: float | None = None


def next_step(
    outcome: Outcome,
    *,
    operation: str,
    previous_state: State,
    previous_status: str,
    failures: int,
    can_poll: bool,
    give_up_at: float,
    now: float,
    schedule: Schedule,
    can_delete: bool = False,
    previous_detail: str = "",
    canceling_after_giving_up: bool = False,
) -> Step:
    """Decide what follows ``outcome`` of ``operation``.

    - terminal states and non-retryable failures (a ``RemoteError(permanent=True)`` among them)
      end the request at once;
    - a throttle waits exactly as long as the facility asked, and is not a failure;
    - a transient failure backs off, doubling;
    - while following (``get``), throttles and transient failures keep the status SkyPortal shows,
      and a submission being retried reads ``pending submission: ...`` — never ``failed to
      submit``, which would invite the observer to submit a second time;
    - ``find`` (an interrupted submission looked up): found, the request is followed; certainly
      absent, it is submitted now; the facility cannot tell, ``failed: ...`` (never "failed to
      submit");
    - past ``give_up_at`` the request fails with a clear status; one the facility holds is first
      canceled there (``delete``, when the facility can), and the final status says how that went
      (``canceling_after_giving_up``: the outcome is that cancel's, ``previous_detail`` why).
    """
    state, detail = outcome.state, outcome.detail
    if canceling_after_giving_up:
        return _after_giving_up(outcome, previous_status, previous_detail, failures, give_up_at, now, schedule)
    if operation == "delete" and state not in (State.DELETED, State.CANCELED):
        return _delete_not_done(outcome, previous_state, previous_status, failures, can_poll, give_up_at, now, schedule)
    if operation == "find" and outcome.remote_id is None:
        if state is State.PENDING:  # certainly never arrived: submit it now
            return Step(State.PENDING, previous_status, detail, "submit", now, failures)
        if state is not State.THROTTLED and not (state is State.FAILED and outcome.poll_after is not None):
            return Step(State.FAILED, f"failed: {detail}", detail, None, None, failures)
    retrying = state is State.THROTTLED or (state is State.FAILED and outcome.poll_after is not None)
    if retrying:
        failures = failures if state is State.THROTTLED else failures + 1
        wait = outcome.poll_after if state is State.THROTTLED else schedule.backoff(failures)
        due = now + (schedule.default_poll if wait is None else wait)
        if operation == "submit":
            reason = "throttled" if state is State.THROTTLED else "facility unavailable"
            step = Step(State.PENDING, f"pending submission: {reason}, will retry", detail, operation, due, failures)
        else:
            step = Step(previous_state, previous_status, detail, operation, due, failures)
    elif state.active and can_poll:
        poll_after = schedule.default_poll if outcome.poll_after is None else outcome.poll_after
        step = Step(state, outcome.status, detail, "get", now + poll_after, 0)
    else:
        step = Step(state, outcome.status, detail, None, None, 0)
    if step.next_poll_at is not None and step.next_poll_at >= give_up_at:
        hours = schedule.horizon / 3600.0
        detail = f"gave up after {hours:g} h without a final answer" + (f" (last: {detail})" if detail else "")
        if outcome.remote_id is not None and can_delete and operation != "delete":
            # It still counts against the account's queue there: cancel it, and say so.
            status = f"failed: {detail}; canceling it at the facility"
            return Step(State.FAILED, status, detail, "delete", now, 0, give_up_at=now + schedule.cancel_horizon)
        may_be_held = outcome.remote_id is not None or operation == "find"  # never invite a second submission
        return Step(State.FAILED, ("failed: " if may_be_held else "failed to submit: ") + detail, detail, None, None, failures)
    return step


#: Joins a request's own status and why the delete the observer asked for did not happen.
NOT_DELETED = "; not deleted at the facility: "

#: Begins the status of a request cancelled here while a facility that cannot withdraw it holds it.
DELETED_HERE_ONLY = "deleted: deleted here only: "


def deleted_here_only(title: str) -> str:
    """The status of a request the observer cancelled after it reached a facility that offers no
    way to withdraw one (no ``delete``): the gateway stops following it, but the facility may still
    carry it out, and only its team can stop that."""
    return f"{DELETED_HERE_ONLY}{title} offers no way to withdraw a request, so it may still be carried out; ask the facility's team to withdraw it"


def _delete_not_done(
    outcome: Outcome, previous_state: State, previous_status: str, failures: int, can_poll: bool, give_up_at: float, now: float, schedule: Schedule
) -> Step:
    """A delete the observer asked for that did not happen keeps the request's own state: a
    completed request stays complete (LCO refuses to cancel a finished request group) and a live
    one stays followed. A transient failure is tried again, but not past the horizon of a request
    still live, nor, for a finished one, once the waits add up to ``cancel_horizon``; the status
    then says the delete did not happen, and the delete may be asked for again."""
    state, detail = outcome.state, outcome.detail
    own_status = previous_status.split(NOT_DELETED, 1)[0]
    retrying = state is State.THROTTLED or (state is State.FAILED and outcome.poll_after is not None)
    if retrying:
        failures = failures if state is State.THROTTLED else failures + 1
        due = now + (outcome.poll_after if state is State.THROTTLED and outcome.poll_after else schedule.backoff(failures))
        waited = sum(schedule.backoff(n) for n in range(1, failures + 1))
        if due < give_up_at if previous_state.active else waited < schedule.cancel_horizon:
            return Step(previous_state, previous_status, detail, "delete", due, failures)
    status = f"{own_status}{NOT_DELETED}{detail}"
    if previous_state.active and can_poll:
        return Step(previous_state, status, detail, "get", now + schedule.default_poll, 0)
    return Step(previous_state, status, detail, None, None, 0)


def _after_giving_up(outcome: Outcome, previous_status: str, reason: str, failures: int, give_up_at: float, now: float, schedule: Schedule) -> Step:
    """What follows the cancel the gateway sent after giving up (``reason``): the final status
    names both, or the cancel is tried again until its own horizon."""
    state, detail = outcome.state, outcome.detail
    if state in (State.DELETED, State.CANCELED):
        return Step(State.FAILED, f"failed: {reason}; {detail}", reason, None, None, 0)
    retrying = state is State.THROTTLED or (state is State.FAILED and outcome.poll_after is not None)
    if retrying:
        failures = failures if state is State.THROTTLED else failures + 1
        due = now + (outcome.poll_after if state is State.THROTTLED and outcome.poll_after else schedule.backoff(failures))
        if due < give_up_at:
            return Step(State.FAILED, previous_status, reason, "delete", due, failures)
    return Step(State.FAILED, f"failed: {reason}; could not cancel it at the facility: {detail}", reason, None, None, failures)
