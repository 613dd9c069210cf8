"""The lifecycle states and the SkyPortal status strings derived from them."""

import pytest

from facility_apis.core.outcome import TERMINAL, Outcome, State, skyportal_status


@pytest.mark.parametrize(
    ("state", "detail", "remote_id", "status"),
    [
        (State.PENDING, "", None, "pending submission"),
        (State.SUBMITTED, "ATLAS task 7", "u", "submitted: ATLAS task 7"),
        (State.THROTTLED, "retry in 5 s", None, "failed to submit: retry in 5 s"),
        (State.THROTTLED, "retry in 5 s", "u", "throttled: retry in 5 s"),
        (State.QUEUED, "position 2", "u", "queued: position 2"),
        (State.RUNNING, "started", "u", "running: started"),
        (State.COMPLETED, "3 points", "u", "complete: 3 points"),
        (State.NO_DATA, "No data returned", "u", "complete: no data: No data returned"),
        (State.REJECTED, "too many", None, "rejected: too many"),
        (State.FAILED, "down", None, "failed to submit: down"),
        (State.FAILED, "down", "u", "failed: down"),
        (State.CANCELED, "", "u", "canceled"),
        (State.DELETED, "", None, "deleted"),
    ],
)
def test_status_strings_keep_skyportal_words(state, detail, remote_id, status):
    assert Outcome(state, detail, remote_id=remote_id).status == status
    assert skyportal_status(state, detail, submitted=remote_id is not None) == status


def test_resubmittable_failures_carry_skyportals_resubmit_words():
    # SkyPortal resubmits on PUT when the status contains "failed to submit" or "rejected".
    for state in (State.THROTTLED, State.FAILED, State.REJECTED):
        status = Outcome(state, "why").status
        assert "failed to submit" in status or "rejected" in status


def test_terminal_and_active_partition():
    assert TERMINAL == {State.COMPLETED, State.NO_DATA, State.REJECTED, State.CANCELED, State.DELETED}  # noqa: SIM300 - actual value first
    assert {s for s in State if s.active} == {State.SUBMITTED, State.QUEUED, State.RUNNING}
    assert not any(s.active for s in TERMINAL)
