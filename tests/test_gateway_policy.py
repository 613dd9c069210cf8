"""What follows each outcome: waits, backoff, the statuses SkyPortal sees, giving up."""

from __future__ import annotations

import pytest

from facility_apis.core.outcome import Outcome, State
from facility_apis.gateway.policy import Schedule, next_step

SCHEDULE = Schedule(default_poll=60, backoff_base=30, backoff_cap=3600, horizon=86400)
NOW = 1_000_000.0


def step(outcome: Outcome, operation: str = "get", *, failures: int = 0, can_poll: bool = True, give_up_at: float = NOW + 86400):
    return next_step(
        outcome,
        operation=operation,
        previous_state=State.QUEUED,
        previous_status="queued: 2 tasks ahead",
        failures=failures,
        can_poll=can_poll,
        give_up_at=give_up_at,
        now=NOW,
        schedule=SCHEDULE,
    )


def test_an_active_request_is_polled_when_the_facility_advises():
    result = step(Outcome(State.RUNNING, "started", remote_id="t/1", poll_after=15))
    assert (result.state, result.status, result.operation, result.next_poll_at) == (State.RUNNING, "running: started", "get", NOW + 15)
    assert step(Outcome(State.RUNNING, remote_id="t/1")).next_poll_at == NOW + 60  # no advice: the default
    assert step(Outcome(State.RUNNING, remote_id="t/1", poll_after=0)).next_poll_at == NOW  # zero means now


def test_a_throttle_while_following_keeps_the_status_and_waits_exactly():
    result = step(Outcome(State.THROTTLED, "rate limit", remote_id="t/1", poll_after=7), failures=2)
    assert (result.state, result.status, result.next_poll_at, result.failures) == (State.QUEUED, "queued: 2 tasks ahead", NOW + 7, 2)


def test_a_retried_submission_never_reads_failed_to_submit():
    throttled = step(Outcome(State.THROTTLED, "rate limit", poll_after=5), "submit")
    unavailable = step(Outcome(State.FAILED, "503", poll_after=60), "submit")
    assert (throttled.state, throttled.status, throttled.operation) == (State.PENDING, "pending submission: throttled, will retry", "submit")
    assert unavailable.status == "pending submission: facility unavailable, will retry"


@pytest.mark.parametrize(("failures", "wait"), [(0, 30), (1, 60), (2, 120), (10, 3600)])
def test_transient_failures_back_off_doubling_to_the_cap(failures, wait):
    result = step(Outcome(State.FAILED, "503", remote_id="t/1", poll_after=60), failures=failures)
    assert (result.next_poll_at - NOW, result.failures, result.status) == (wait, failures + 1, "queued: 2 tasks ahead")


def test_final_and_unretryable_outcomes_end_the_request():
    assert step(Outcome(State.COMPLETED, "3 points", remote_id="t/1")).operation is None
    refused = step(Outcome(State.FAILED, "may have reached the facility"), "submit")
    assert (refused.operation, refused.status) == (None, "failed to submit: may have reached the facility")
    no_get = step(Outcome(State.SUBMITTED, remote_id="n/1"), "submit", can_poll=False)
    assert (no_get.state, no_get.operation, no_get.next_poll_at) == (State.SUBMITTED, None, None)


def test_past_the_horizon_the_gateway_gives_up_clearly():
    result = step(Outcome(State.RUNNING, "started", remote_id="t/1", poll_after=120), give_up_at=NOW + 100)
    assert (result.state, result.operation) == (State.FAILED, None)
    assert result.status == "failed: gave up after 24 h without a final answer (last: started)"
    never = step(Outcome(State.THROTTLED, "rate limit", poll_after=120), "submit", give_up_at=NOW + 100)
    assert never.status.startswith("failed to submit: gave up after 24 h")


@pytest.mark.parametrize("previous", [State.COMPLETED, State.NO_DATA, State.FAILED])
def test_a_delete_of_a_finished_request_failing_transiently_stops_after_the_cancel_horizon(previous):
    """Backed off, the retries stop once their waits add up to ``cancel_horizon``; the request
    keeps its own state and its status says the delete did not happen."""
    failures, waited, retries = 0, 0.0, 0
    for _ in range(200):
        result = next_step(
            Outcome(State.FAILED, "HTTP 503", remote_id="t/1", poll_after=30), operation="delete", previous_state=previous,
            previous_status="complete: done", failures=failures, can_poll=True, give_up_at=NOW - 1, now=NOW, schedule=SCHEDULE,
            can_delete=True,
        )  # fmt: skip
        assert result.state is previous
        if result.operation is None:
            break
        assert result.operation == "delete" and result.next_poll_at == NOW + SCHEDULE.backoff(result.failures)
        failures, waited, retries = result.failures, waited + SCHEDULE.backoff(result.failures), retries + 1
    assert waited >= SCHEDULE.cancel_horizon - SCHEDULE.backoff_cap and retries < 100
    assert result.status == "complete: done; not deleted at the facility: HTTP 503"


def test_a_second_refused_delete_does_not_repeat_the_note():
    result = next_step(
        Outcome(State.REJECTED, "already complete", remote_id="t/1"), operation="delete", previous_state=State.COMPLETED,
        previous_status="complete: done; not deleted at the facility: HTTP 503", failures=0, can_poll=True,
        give_up_at=NOW, now=NOW, schedule=SCHEDULE, can_delete=True,
    )  # fmt: skip
    assert (result.state, result.status, result.operation) == (State.COMPLETED, "complete: done; not deleted at the facility: already complete", None)
