"""The kit's per-request cursor and one-time altdata exchange, on a minimal facility: perform's
checks, follow() and the gateway store carrying the cursor, the gateway API and the SkyPortal
classes storing exchanged altdata, and per-point origin/altdata in Photometry."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import responses

from facility_apis.core.errors import AltdataError, FacilityUnavailable
from facility_apis.core.interface import Allocation, Facility, FollowupRequest, Kind, Target
from facility_apis.core.operations import exchange, perform
from facility_apis.core.outcome import CURSOR_LIMIT, Outcome, State
from facility_apis.core.photometry import Photometry
from facility_apis.core.timeutil import iso_date, utcnow
from facility_apis.core.transport import Transport
from facility_apis.skyportal.follow import follow

SECRET = "s3cret-token-for-cursor-tests"


class Counting(Facility):
    """Counts its polls in the cursor; ``mode`` chooses a misbehaving cursor."""

    name: ClassVar[str] = "atlas"  # borrows ATLAS's schemas (api_token): only the behaviour matters here
    title: ClassVar[str] = "Counting"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    skyportal_class: ClassVar[str] = "COUNTINGAPI"
    mode = "count"
    seen: ClassVar[list[str | None]] = []

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        return Outcome(State.SUBMITTED, "ok", remote_id="r1", poll_after=0.0, cursor="0")

    def get(self, request: FollowupRequest, transport: Transport) -> Outcome:
        type(self).seen.append(request.cursor)
        if self.mode == "secret":
            return Outcome(State.RUNNING, "x", remote_id="r1", poll_after=1.0, cursor=f"t={request.allocation.altdata['api_token']}")
        if self.mode == "long":
            return Outcome(State.RUNNING, "x", remote_id="r1", poll_after=1.0, cursor="x" * (CURSOR_LIMIT + 1))
        polls = len(type(self).seen)
        if polls >= 3:
            return Outcome(State.COMPLETED, f"{polls} polls", remote_id="r1")
        return Outcome(State.RUNNING, f"{polls} polls", remote_id="r1", poll_after=0.0, cursor=None if polls == 2 else str(polls))

    def exchange_altdata(self, altdata: dict[str, Any], transport: Transport) -> dict[str, Any]:
        if altdata["api_token"] == "unreachable":
            raise FacilityUnavailable(f"could not connect while sending {altdata['api_token']}")
        return {**altdata, "api_token": "exchanged-" + altdata["api_token"]}


def request(cursor=None, remote_id=None) -> FollowupRequest:
    payload = {"start_date": iso_date(utcnow()), "end_date": iso_date(utcnow() + timedelta(days=1))}  # the borrowed ATLAS form, an open window
    return FollowupRequest(1, Target("ZTF26cursor", 1.0, 2.0), Allocation(1, {"api_token": SECRET}), payload, remote_id=remote_id, cursor=cursor)


@pytest.fixture(autouse=True)
def reset():
    Counting.seen = []
    Counting.mode = "count"


def test_follow_hands_the_newest_cursor_back_and_none_keeps_it():
    with Transport() as transport:
        outcome = follow(Counting(), request(), transport, sleep=lambda _: None)
    assert outcome.status == "complete: 3 polls"
    assert Counting.seen == ["0", "1", "1"]  # poll 2 returned no cursor: the kept one came back


@pytest.mark.parametrize(("mode", "problem"), [("secret", "a cursor holding a secret"), ("long", f"a cursor over {CURSOR_LIMIT} characters")])
def test_perform_drops_a_cursor_that_holds_a_secret_or_is_too_long(mode, problem):
    Counting.mode = mode
    with Transport() as transport:
        outcome = perform(Counting(), "get", request(remote_id="r1"), transport)
    assert outcome.state is State.FAILED and outcome.cursor is None and outcome.poll_after is None
    assert outcome.detail == f"internal error in atlas.get: it returned {problem}"


def test_exchange_returns_what_to_store_and_maps_failures_to_masked_altdata_errors():
    with Transport() as transport:
        assert exchange(Counting(), {"api_token": "abc-token"}, transport) == {"api_token": "exchanged-abc-token"}
        with pytest.raises(AltdataError) as caught:
            exchange(Counting(), {"api_token": "unreachable"}, transport)
    assert str(caught.value) == "invalid altdata: $: Counting refused or could not complete the credential exchange: could not connect while sending ***"


def test_the_default_exchange_changes_nothing_and_sends_nothing():
    from facility_apis.facilities.atlas import ATLASFacility

    with responses.RequestsMock() as mock, Transport() as transport:
        assert exchange(ATLASFacility(), {"api_token": "abc-token", "base_url": ""}, transport) == {"api_token": "abc-token"}
    assert len(mock.calls) == 0


def test_photometry_with_per_point_origin_and_altdata():
    photometry = Photometry([1.0, 2.0], [17.0, None], [0.1, None], [19.0, 18.5], ["ztfg", "ztfr"], origin=["a", "b"], altdata=[{"o": 1}, {"o": 2}])
    bodies = [json.loads(upload) for upload in photometry.uploads("ZTF1", 3)]
    assert len(bodies) == 1
    (body,) = bodies
    assert body["origin"] == ["a", "b"] and body["altdata"] == [{"o": 1}, {"o": 2}]
    without_origin = [json.loads(upload) for upload in Photometry([1.0], [None], [None], [19.0], ["ztfg"]).uploads("ZTF1", 3)]
    assert len(without_origin) == 1 and "origin" not in without_origin[0]
    with pytest.raises(ValueError, match="differ in length"):
        Photometry([1.0], [None], [None], [19.0], ["ztfg"], altdata=[{}, {}])


def test_the_gateway_store_keeps_the_cursor_between_claims(gateway_store):
    owner = gateway_store.clients.authenticate(gateway_store.clients.add("cursor-client"))
    gateway_store.allocations.put(owner, 1, "atlas", {"api_token": SECRET})
    gateway_store.requests.add(1, Target("ZTF26cursor", 1.0, 2.0), {}, remote_id="r1", now=100.0)
    cursors = []
    for number, returned in enumerate(["one", None, "three"]):
        (job,) = gateway_store.jobs.claim("w", 1, 60.0, now=200.0 + number * 10)
        cursors.append(job.request.cursor)
        outcome = Outcome(State.RUNNING, "x", remote_id="r1", poll_after=1.0, cursor=returned)
        assert gateway_store.jobs.record(job, outcome, can_poll=True, now=200.0 + number * 10)
    (job,) = gateway_store.jobs.claim("w", 1, 60.0, now=1000.0)
    assert [*cursors, job.request.cursor] == [None, "one", "one", "three"]


def test_the_skyportal_class_returns_the_exchanged_altdata_for_skyportal_to_store():
    """SkyPortal's POST /api/allocation stores what validate_altdata returns: the token, not the password."""
    from facility_apis.facilities.bhtom import BHTOMFacility
    from facility_apis.skyportal import configure
    from facility_apis.skyportal.adapter import make_api_class
    from facility_apis.testing.bhtom import BHTOMEmulator
    from facility_apis.testing.network import loopback_egress

    with BHTOMEmulator({"observer": ("pass word", "bhtom-sp-token")}) as bhtom:
        configure(facilities={"bhtom": {"base_url": bhtom.base_url}}, egress=loopback_egress(bhtom))
        try:
            api = make_api_class("BHTOMAPI", BHTOMFacility)
            stored = api.validate_altdata({"username": "observer", "password": "pass word", "base_url": ""})
            assert stored == {"username": "observer", "api_token": "bhtom-sp-token"}
            with pytest.raises(AltdataError, match=r"\$\.password: BHTOM refused the username and password"):
                api.validate_altdata({"username": "observer", "password": "not the password"})
        finally:
            configure()
