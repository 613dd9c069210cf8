"""The kit's additions for facilities that list files and can check a request remotely:
``Frame``/``Outcome.frames`` (kept by the gateway, shown by its API, documented upgrade), and the
``remote_validate`` operation run through ``perform``."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy

from facility_apis.core.errors import FacilityUnavailable, NotImplementedOperation, Rejected, RemoteError
from facility_apis.core.frames import Frame, frames_summary
from facility_apis.core.interface import Allocation, Facility, FollowupRequest, Kind, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.timeutil import iso_date, utcnow
from facility_apis.core.transport import Transport
from facility_apis.gateway.crypto import SecretBox
from facility_apis.gateway.pacing import FacilityLimit, Rate
from facility_apis.gateway.store import Store

ROOT = Path(__file__).resolve().parent.parent
SECRET = "frames-secret-token-77a1"


# -- Frame ---------------------------------------------------------------------------------


def test_a_frame_round_trips_as_a_dict_and_refuses_what_cannot_be_a_file():
    frame = Frame("cpt1m010-fa16-20261121-0042-e91.fits.fz", "https://archive.example/f/42", "rp", 61000.25)
    assert frame.as_dict() == {"name": "cpt1m010-fa16-20261121-0042-e91.fits.fz", "url": "https://archive.example/f/42", "filter": "rp", "mjd": 61000.25}
    assert Frame.from_dict(frame.as_dict()) == frame
    for bad in (("", "https://x/1"), ("a.fits", "")):
        with pytest.raises(ValueError, match="name and a url"):
            Frame(*bad)
    with pytest.raises(ValueError, match="finite"):
        Frame("a.fits", "https://x/1", mjd=math.nan)


def test_frames_summary_counts_per_filter_in_first_seen_order():
    frames = [Frame(f"f{i}", f"https://x/{i}", band) for i, band in enumerate(["gp", "rp", "gp", None])]
    assert frames_summary(frames) == "4 frames (gp ×2, rp, no filter)"
    assert frames_summary(frames[:1], "reduced frame") == "1 reduced frame (gp)"
    assert frames_summary([]) == "0 frames"


# -- remote_validate through perform --------------------------------------------------------


class Checked(Facility):
    """A facility whose remote check answers whatever the test sets."""

    name: ClassVar[str] = "atlas"  # borrows ATLAS's schemas: only the check matters here
    title: ClassVar[str] = "Checked"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    skyportal_class: ClassVar[str] = "CHECKEDAPI"
    date_fields: ClassVar[tuple[str, ...]] = ("start_date", "end_date")
    answer: ClassVar[object] = None

    def remote_validate(self, request, transport):
        if isinstance(self.answer, Exception):
            raise self.answer
        return Outcome(State.PENDING, f"would be accepted for {request.allocation.altdata['api_token']}")


def _request(**payload) -> FollowupRequest:
    dates = {"start_date": iso_date(utcnow()), "end_date": iso_date(utcnow() + timedelta(days=30))}  # an open window
    return FollowupRequest(1, Target("ZTF26chk", 10.0, 20.0), Allocation(1, {"api_token": SECRET}), {**dates, **payload})


@pytest.mark.parametrize(
    ("answer", "state", "poll_after"),
    [
        (None, State.PENDING, None),
        (Rejected("end_date: Window end time must be in the future"), State.REJECTED, None),
        (RemoteError("the portal answered HTTP 500"), State.FAILED, None),
        (FacilityUnavailable("no answer", sent=True), State.FAILED, None),
    ],
)
def test_remote_validate_runs_as_a_submission_does(monkeypatch, answer, state, poll_after):
    monkeypatch.setattr(Checked, "answer", answer)
    outcome = perform(Checked(), "remote_validate", _request(), Transport())
    assert (outcome.state, outcome.poll_after) == (state, poll_after)
    assert SECRET not in outcome.detail  # masked like every detail
    if state is State.REJECTED:
        assert outcome.status == "rejected: end_date: Window end time must be in the future"


def test_remote_validate_checks_the_payload_first_and_is_reported_by_implements():
    outcome = perform(Checked(), "remote_validate", _request(start_date="not a date"), Transport())
    assert outcome.status.startswith("rejected: invalid payload: $.start_date: must be a ")
    assert Checked.implements()["remote_validate"] is True
    with pytest.raises(NotImplementedOperation, match="does not implement remote_validate"):
        perform(_atlas(), "remote_validate", _request(), Transport())
    with pytest.raises(ValueError, match="expected one of submit, get, update, delete, find, remote_validate"):
        perform(Checked(), "inquire", _request(), Transport())


def _atlas() -> Facility:
    from facility_apis.facilities.atlas import ATLASFacility

    return ATLASFacility()


# -- the gateway keeps the newest frames -----------------------------------------------------


def test_the_gateway_keeps_the_newest_frames_and_shows_them(gateway_store):
    owner = gateway_store.clients.authenticate(gateway_store.clients.add("c"))
    gateway_store.allocations.put(owner, 7, "atlas", {"api_token": SECRET}, instrument_id=1)
    request_id = gateway_store.requests.add(7, Target("ZTF26frm", 1.0, 2.0), {}, remote_id="42")
    assert gateway_store.requests.view(request_id)["frames"] == []
    first = (Frame("a.fits", "https://x/a", "gp", 61000.1),)
    both = (*first, Frame("b.fits", "https://x/b", "rp", 61000.2))
    for frames, state in ((first, State.RUNNING), ((), State.RUNNING), (both, State.COMPLETED)):
        (job,) = gateway_store.jobs.claim("w", 1, lease=30)
        assert gateway_store.jobs.record(job, Outcome(state, "x", remote_id="42", poll_after=0, frames=frames), can_poll=True)
        expected = [f.as_dict() for f in (frames or first)]  # an outcome without frames keeps the last list
        assert gateway_store.requests.view(request_id)["frames"] == expected


def test_the_documented_upgrades_open_a_version_1_database(database, secret_key):
    """The SQL in docs/gateway.md (Upgrading), run in turn on a database shaped as version 1 was."""
    url, options = database
    Store(url, SecretBox(secret_key), **options).close()
    engine = sqlalchemy.create_engine(url, **options)
    with engine.begin() as connection:  # back to version 1: no cursor, no frames, no facility accounts
        connection.exec_driver_sql("ALTER TABLE requests DROP COLUMN frames")
        connection.exec_driver_sql("ALTER TABLE requests DROP COLUMN cursor")
        connection.exec_driver_sql("DROP INDEX ix_requests_leased")
        connection.exec_driver_sql("DROP TABLE facility_accounts")
        connection.exec_driver_sql("DROP TABLE account_calls")
        connection.exec_driver_sql("UPDATE gateway_meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(Exception, match="schema version 1, this facility_apis needs 4"):
        Store(url, SecretBox(secret_key), **options)
    notes = (ROOT / "docs" / "gateway.md").read_text(encoding="utf-8")
    for version in (2, 3, 4):
        sql = re.search(rf"\*\*Schema version {version}\*\*.*?```sql\n(.*?)```", notes, re.DOTALL).group(1)
        if url.startswith("sqlite"):  # as the note says
            sql = sql.replace("id SERIAL PRIMARY KEY", "id INTEGER PRIMARY KEY")
        with engine.begin() as connection:
            for statement in filter(None, (s.strip() for s in sql.split(";"))):
                connection.exec_driver_sql(statement)
    engine.dispose()
    store = Store(url, SecretBox(secret_key), **options)
    try:
        owner = store.clients.authenticate(store.clients.add("c"))
        store.allocations.put(owner, 1, "atlas", {"api_token": SECRET})
        request_id = store.requests.add(1, Target("ZTF26up", 1.0, 2.0), {})
        assert store.requests.view(request_id)["frames"] == []
        (job,) = store.jobs.claim("w", 1, lease=30, limits=lambda _: FacilityLimit(rates={"write": Rate(5, 60.0)}))  # counted in account_calls
        assert job.request.cursor is None
        assert store.jobs.record(job, Outcome(State.THROTTLED, "throttled", poll_after=60), can_poll=True)  # the account pauses
        assert [(a["paused_seconds"] or 0) > 50 for a in store.metrics()["accounts"]] == [False, True]  # the facility, then the account
        assert [a["ramp"] for a in store.metrics()["accounts"]] == [None, 1]  # it will resume with one call
    finally:
        store.close()
