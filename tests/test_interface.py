"""Value objects, the base facility's validation and capability reporting, ``perform``."""

import logging

import pytest
import responses

from facility_apis.core.errors import NotImplementedOperation, PayloadError
from facility_apis.core.interface import Allocation, Facility, FollowupRequest, Kind, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.registry import get_facility
from facility_apis.core.schemas import DRAFT7
from facility_apis.core.transport import Transport

SECRET = "atlas-token-xyz"


@pytest.mark.parametrize(("ra", "dec", "path"), [(float("nan"), 0, "$.ra"), (360.0, 0, "$.ra"), (10, 91, "$.dec"), (10, float("inf"), "$.dec")])
def test_target_coordinates_must_be_finite_and_in_range(ra, dec, path):
    with pytest.raises(PayloadError) as caught:
        Target("x", ra, dec)
    assert caught.value.errors[0].path == path


def test_allocation_repr_hides_altdata():
    assert SECRET not in repr(Allocation(1, {"api_token": SECRET}))


def test_implements_reports_overridden_operations():
    atlas = get_facility("atlas")
    assert atlas.implements() == {"validate_altdata": True, "prepare": True, "submit": True, "get": True, "update": False, "delete": True}


def test_a_facility_without_its_metadata_is_refused_when_defined():
    with pytest.raises(TypeError) as caught:

        class Incomplete(Facility):
            name = "Not A Name"
            kind = "observation"

    message = str(caught.value)
    for needed in ("name = ", "title = ", "kind = Kind.", "skyportal_class = ", "abstract=True"):
        assert needed in message


def test_an_abstract_base_needs_no_metadata_but_its_facilities_do():
    class PortalFacility(Facility, abstract=True):
        pass

    class Portal(PortalFacility):
        name, title, kind, skyportal_class = "portal", "Portal", Kind.OBSERVATION, "PORTALAPI"

    assert Portal.skyportal_class == "PORTALAPI"
    with pytest.raises(TypeError, match="lacks metadata"):

        class Unnamed(PortalFacility):
            title = "Unnamed"


def test_validate_altdata_drops_blank_values_like_skyportal():
    atlas = get_facility("atlas")()
    assert atlas.validate_altdata({"api_token": "token-123", "base_url": ""}) == {"api_token": "token-123"}


class Broken(Facility):
    name = "broken"
    title = "Broken"
    kind = Kind.NOTIFICATION
    skyportal_class = "BROKENAPI"

    @classmethod
    def altdata_schema(cls):
        return {"$schema": DRAFT7, "type": "object", "properties": {"token": {"type": "string", "writeOnly": True}}}

    def request_schema(self):
        return {"$schema": DRAFT7, "type": "object"}

    def submit(self, request, transport):
        raise KeyError(f"token {request.allocation.altdata['token']} unusable")


def request_for(altdata, payload=None, remote_id=None):
    return FollowupRequest(1, Target("ZTF1", 1.0, 2.0), Allocation(1, altdata), payload or {}, remote_id=remote_id)


def test_unexpected_exception_is_a_failed_outcome_and_logs_no_secret(caplog):
    with caplog.at_level(logging.ERROR):
        outcome = perform(Broken(), "submit", request_for({"token": SECRET}), Transport())
    assert outcome.state is State.FAILED
    assert outcome.status == "failed to submit: internal error in broken.submit: KeyError"
    assert caplog.records, "the bug is logged"
    assert SECRET not in caplog.text


def test_operations_not_implemented_are_refused():
    with pytest.raises(NotImplementedOperation):
        perform(Broken(), "get", request_for({}), Transport())
    with pytest.raises(ValueError, match="unknown operation"):
        perform(Broken(), "explode", request_for({}), Transport())


@responses.activate
def test_perform_maps_bad_altdata_and_payload_without_calling_out():
    atlas = get_facility("atlas")()
    bad_altdata = perform(atlas, "submit", request_for({}), Transport())
    assert bad_altdata.status == "failed to submit: invalid altdata: $.api_token: is required"
    bad_payload = perform(atlas, "submit", request_for({"api_token": SECRET}, {"start_date": "2026-01-05", "end_date": "2026-01-01"}), Transport())
    assert bad_payload.status == "rejected: invalid payload: $.end_date: must not be before start_date"
    assert len(responses.calls) == 0


class Echo(Broken):
    name = "echo"

    def submit(self, request, transport):
        from facility_apis.core.outcome import Outcome

        return Outcome(State.REJECTED, "x" * 495 + request.allocation.altdata["token"] + "y" * 100)


def test_details_are_masked_before_they_are_clipped():
    outcome = perform(Echo(), "submit", request_for({"token": SECRET}), Transport())
    assert len(outcome.detail) == 500
    assert SECRET[:3] not in outcome.detail.replace("x", "")
    assert outcome.detail.startswith("x" * 495 + "***")


@pytest.mark.parametrize("altdata", ["not a mapping", ["api_token"], None])
def test_perform_with_altdata_that_is_not_an_object(altdata):
    outcome = perform(get_facility("atlas")(), "submit", request_for(altdata), Transport())
    assert outcome.state is State.FAILED
    assert outcome.status.startswith("failed to submit: invalid altdata:")
