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
) -> Step:
    """Decide what follows ``outcome`` of ``operation``.

    - terminal states and non-retryable failures end the request;
    - a throttle waits exactly as long as the facility asked, and is not a failure;
    - a transient failure backs off, doubling;
    - while following (``get``), throttles and transient failures keep the status SkyPortal shows,
      and a submission being retried reads ``pending submission: ...`` — never ``failed to
      submit``, which would invite the observer to submit a second time;
    - past ``give_up_at`` the request fails with a clear status.
    """
    state, detail = outcome.state, outcome.detail
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
        submitted = outcome.remote_id is not None
        return Step(State.FAILED, ("failed: " if submitted else "failed to submit: ") + detail, detail, None, None, failures)
    return step
