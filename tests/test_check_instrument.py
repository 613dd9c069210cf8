"""``Facility.check_instrument``: rules tying an allocation's altdata to the instrument it is on,
applied wherever the instrument is known (validation with ``instrument_name``, every ``perform``,
the one-time exchange). The Gemini tests show it at SkyPortal's and the gateway's allocation saves."""

from typing import Any, ClassVar

import pytest

from facility_apis.core.errors import AltdataError
from facility_apis.core.interface import Allocation, Facility, FollowupRequest, Kind, Target
from facility_apis.core.operations import exchange, perform
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.transport import Transport


class SiteBound(Facility):
    """A facility whose altdata names a site that must be the instrument's."""

    name: ClassVar[str] = "atlas"  # borrows ATLAS's schemas: altdata {api_token, base_url}
    title: ClassVar[str] = "Site-bound"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    skyportal_class: ClassVar[str] = "SITEBOUNDAPI"
    seen: ClassVar[list[str]] = []

    def check_instrument(self, altdata: dict[str, Any], instrument_name: str) -> None:
        self.seen.append(instrument_name)
        if not instrument_name.endswith(altdata["api_token"][-1]):
            raise AltdataError.single("$.api_token", "must end with the instrument's site letter")

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        return Outcome(State.SUBMITTED, "sent", remote_id="1")


@pytest.fixture(autouse=True)
def clear():
    SiteBound.seen.clear()


def test_without_an_instrument_the_rule_does_not_run():
    assert SiteBound().validate_altdata({"api_token": "token-N"}) == {"api_token": "token-N"}
    assert SiteBound.seen == []


def test_with_an_instrument_a_mismatch_is_refused_naming_the_field():
    SiteBound().validate_altdata({"api_token": "token-N"}, instrument_name="Scope-N")
    with pytest.raises(AltdataError) as caught:
        SiteBound().validate_altdata({"api_token": "token-N"}, instrument_name="Scope-S")
    assert [str(e) for e in caught.value.errors] == ["$.api_token: must end with the instrument's site letter"]
    assert SiteBound.seen == ["Scope-N", "Scope-S"]


def test_perform_holds_the_allocation_to_its_instrument():
    request = FollowupRequest(1, Target("x", 1.0, 2.0), Allocation(1, {"api_token": "token-N"}, instrument_name="Scope-S"))
    with Transport() as transport:
        outcome = perform(SiteBound(), "submit", request, transport)
    assert outcome.status == "failed to submit: invalid altdata: $.api_token: must end with the instrument's site letter"


def test_the_exchange_checks_against_the_instrument_before_and_after():
    with Transport() as transport:
        assert exchange(SiteBound(), {"api_token": "token-S"}, transport, instrument_name="Scope-S") == {"api_token": "token-S"}
        with pytest.raises(AltdataError):
            exchange(SiteBound(), {"api_token": "token-N"}, transport, instrument_name="Scope-S")
    assert SiteBound.seen == ["Scope-S", "Scope-S", "Scope-S"]
