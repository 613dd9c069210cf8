"""Value objects, the base facility's validation and capability reporting, ``perform``."""

import logging

import pytest
import responses

from facility_apis.core.errors import NotImplementedOperation, PayloadError
from facility_apis.core.interface import Allocation, Facility, FollowupRequest, HostPoint, Kind, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.registry import get_facility
from facility_apis.core.schemas import DRAFT7
from facility_apis.core.timeutil import INSTANT_PATTERN
from facility_apis.core.transport import Transport

SECRET = "atlas-token-xyz"


@pytest.mark.parametrize(("ra", "dec", "path"), [(float("nan"), 0, "$.ra"), (360.0, 0, "$.ra"), (10, 91, "$.dec"), (10, float("inf"), "$.dec")])
def test_target_coordinates_must_be_finite_and_in_range(ra, dec, path):
    with pytest.raises(PayloadError) as caught:
        Target("x", ra, dec)
    assert caught.value.errors[0].path == path


def test_both_coordinates_out_of_range_are_both_named():
    with pytest.raises(PayloadError) as caught:
        Target("x", 360.0, -91.0)
    assert [str(e) for e in caught.value.errors] == ["$.ra: must be a finite number in [0, 360)", "$.dec: must be a finite number in [-90, 90]"]


def test_allocation_repr_hides_altdata():
    assert SECRET not in repr(Allocation(1, {"api_token": SECRET}))


def test_implements_reports_overridden_operations():
    atlas = get_facility("atlas")
    assert atlas.implements() == {
        "validate_altdata": True, "prepare": True, "submit": True, "get": True, "update": False, "delete": True, "find": True, "remote_validate": False,
    }  # fmt: skip


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


# -- what the host knows of the target -----------------------------------------------------------


class _AliasFacility(Facility):
    """Takes ``survey_id`` from the target's aliases when the payload has none."""

    name = "alias_probe"
    title = "Alias probe"
    kind = Kind.FORCED_PHOTOMETRY
    skyportal_class = "ALIASPROBEAPI"

    @classmethod
    def altdata_schema(cls):
        return {"$schema": DRAFT7, "type": "object", "properties": {}}

    def request_schema(self):
        return {
            "$schema": DRAFT7,
            "type": "object",
            "properties": {"survey_id": {"type": "string", "pattern": "^[0-9]+$", "title": "Survey id"}},
            "additionalProperties": False,
        }

    def fill_from_target(self, payload, target):
        if "survey_id" not in payload:
            found = [alias for alias in target.aliases if alias.startswith("S")]
            if not found:
                raise PayloadError.single("$.survey_id", "is required: the source has no alias starting with S")
            payload["survey_id"] = found[0][1:]
        return payload


def test_target_keeps_aliases_and_host_photometry_as_tuples():
    point = HostPoint(1.0, 2.0, 10.0, 1.0, origin=None, instrument="ZTF", alert=True)
    target = Target("x", 1.0, 2.0, aliases=["a", "b"], photometry=[point])
    assert target.aliases == ("a", "b") and target.photometry == (point,)
    assert "photometry" not in repr(target)
    assert Target("x", 1.0, 2.0).aliases == () and Target("x", 1.0, 2.0).photometry == ()


def test_validate_payload_with_a_target_fills_from_it_and_checks_the_result():
    facility = _AliasFacility()
    target = Target("x", 1.0, 2.0, aliases=("ZTF26abc", "S123"))
    assert facility.validate_payload({}) == {}  # without a target nothing is filled
    assert facility.validate_payload({}, target) == {"survey_id": "123"}
    assert facility.validate_payload({"survey_id": "9"}, target) == {"survey_id": "9"}  # kept
    with pytest.raises(PayloadError) as caught:
        facility.validate_payload({}, Target("x", 1.0, 2.0, aliases=("ZTF26abc",)))
    assert [e.path for e in caught.value.errors] == ["$.survey_id"]
    with pytest.raises(PayloadError, match=r"\$\.survey_id: must match"):  # what was filled is checked too
        facility.validate_payload({}, Target("x", 1.0, 2.0, aliases=("Sabc",)))


def test_perform_fills_the_payload_from_the_target_on_submit():
    seen = []

    class Recording(_AliasFacility):
        name = "alias_probe_rec"

        def submit(self, request, transport):
            seen.append(dict(request.payload))
            return Outcome(State.SUBMITTED, "ok", remote_id="1")

    allocation = Allocation(1, {})
    request = FollowupRequest(1, Target("x", 1.0, 2.0, aliases=("S77",)), allocation, {})
    assert perform(Recording(), "submit", request, Transport()).state is State.SUBMITTED
    assert seen == [{"survey_id": "77"}]
    missing = FollowupRequest(1, Target("x", 1.0, 2.0), allocation, {})
    outcome = perform(Recording(), "submit", missing, Transport())
    assert outcome.state is State.REJECTED and "$.survey_id: is required" in outcome.detail


class Window(Facility):
    """A facility with a date window: one date filled by the package, one the observer must give."""

    name, title, kind, skyportal_class = "window", "Window", Kind.OBSERVATION, "WINDOWAPI"
    date_fields = ("start_date", "end_date")

    def request_defaults(self):
        return {"start_date": "2026-11-01"}


WINDOW_FORM = {
    "$schema": DRAFT7,
    "type": "object",
    "properties": {"start_date": {"type": "string", "title": "Start"}, "end_date": {"type": "string", "title": "End"}, "n": {"type": "integer", "default": 1}},
    "required": ["start_date", "end_date", "n"],
    "additionalProperties": False,
}


def test_the_kit_never_serves_as_required_a_field_it_fills_and_reads_every_date_spelling(monkeypatch):
    import copy

    import jsonschema

    from facility_apis.core import interface

    monkeypatch.setattr(interface, "load_schema", lambda name, package: copy.deepcopy(WINDOW_FORM))
    facility = Window()
    served = facility.request_schema()
    assert served["required"] == ["end_date"]  # start_date and n have defaults: filled by the package
    jsonschema.validate({"end_date": "2026-11-30 12:00:00"}, served)  # what SkyPortal checks first
    payload = facility.validate_payload({"end_date": "2026-11-30 23:30:00-05:00"})
    assert payload == {"start_date": "2026-11-01", "end_date": "2026-12-01", "n": 1}
    with pytest.raises(PayloadError) as caught:
        facility.validate_payload({"start_date": "2026-02-30", "end_date": "soon"})
    assert [(e.path, e.message.split(" ", 3)[:3]) for e in caught.value.errors] == [
        ("$.end_date", ["must", "be", "a"]),
        ("$.start_date", ["must", "be", "a"]),
    ]
    assert "real calendar date" in str(caught.value) and "pattern" not in str(caught.value)


class Slot(Facility):
    """A facility with an observing window given as two instants."""

    name, title, kind, skyportal_class = "slot", "Slot", Kind.OBSERVATION, "SLOTAPI"
    instant_fields = ("start_date", "end_date")


SLOT_FORM = {
    "$schema": DRAFT7,
    "type": "object",
    "properties": {"start_date": {"type": "string", "format": "date-time"}, "end_date": {"type": "string"}},
    "required": ["start_date", "end_date"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-12-07 13:45:39", "2026-12-07 13:45:39"),  # SkyPortal's request form
        ("2026-12-07T13:45:39Z", "2026-12-07 13:45:39"),
        ("2026-12-07T13:45:39.736487", "2026-12-07 13:45:39"),
        ("2026-12-07T15:45:39+02:00", "2026-12-07 13:45:39"),
        ("2026-12-07 08:45-0500", "2026-12-07 13:45:00"),
        ("2028-02-29T23:30:00-01:00", "2028-03-01 00:30:00"),
    ],
)
def test_the_kit_serves_instant_fields_with_their_pattern_and_reads_every_spelling_as_utc(monkeypatch, text, utc):
    import copy

    import jsonschema

    from facility_apis.core import interface

    monkeypatch.setattr(interface, "load_schema", lambda name, package: copy.deepcopy(SLOT_FORM))
    served = Slot().request_schema()
    for key in ("start_date", "end_date"):
        assert served["properties"][key]["pattern"] == INSTANT_PATTERN and "format" not in served["properties"][key]
    jsonschema.validate({"start_date": text, "end_date": text}, served)  # what SkyPortal and the browser check
    assert Slot().validate_payload({"start_date": text, "end_date": text}) == {"start_date": utc, "end_date": utc}


@pytest.mark.parametrize("text", ["0000-01-01 00:00:00", "2026-02-30 10:00:00", "2026-12-31T23:59:60Z", "2026-12-07", "soon", "2026-12-07 13:45:39\n"])
def test_the_kit_refuses_an_impossible_instant_naming_the_field_and_the_rule(monkeypatch, text):
    import copy

    from facility_apis.core import interface

    monkeypatch.setattr(interface, "load_schema", lambda name, package: copy.deepcopy(SLOT_FORM))
    with pytest.raises(PayloadError) as caught:
        Slot().validate_payload({"start_date": "2026-12-07 13:45:39", "end_date": text})
    (error,) = caught.value.errors
    assert error.path == "$.end_date"
    assert "date and time" in error.message or "real calendar date" in error.message
    assert "pattern" not in error.message and "^" not in error.message and text.strip() not in error.message


# -- the observing window's end, where the gateway's horizon starts ---------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"end_date": "2026-12-10"}, "2026-12-11T00:00:00+00:00"),  # a day includes all of it
        ({"end_date": "2026-12-10 18:30:00"}, "2026-12-10T18:30:00+00:00"),
        ({"end_date": "2026-12-10T18:30:00+02:00"}, "2026-12-10T16:30:00+00:00"),
        ({"start_date": "2026-12-01"}, None),
        ({"end_date": "not a date"}, None),
        ({"end_date": 20261210}, None),
    ],
)
def test_the_window_ends_with_the_payloads_end_date(payload, expected):
    end = get_facility("sedm")().window_end(payload)
    assert (None if end is None else end.isoformat()) == expected


def test_facilities_whose_window_is_a_duration_say_when_it_ends():
    from datetime import timedelta

    from facility_apis.core.timeutil import utcnow

    before = utcnow()
    bhtom = get_facility("bhtom")().window_end({"follow_days": 12})
    campaign = get_facility("swift")().window_end({"request_type": "XRT/UVOT ToO", "exposure_counts": 10, "monitoring_freq": 2.5})
    archive = get_facility("swift")().window_end({"request_type": "XRT/UVOT/BAT Data", "end_date": "2020-01-31"})
    after = utcnow()
    assert before + timedelta(days=12) <= bhtom <= after + timedelta(days=12)
    assert before + timedelta(days=25) <= campaign <= after + timedelta(days=25)
    assert archive is None  # a search of the archive observes nothing


def test_an_observation_whose_window_has_closed_is_refused_before_anything_is_sent():
    """SEDM (an observation) with yesterday's end: ``submit`` is rejected on ``$.end_date``
    without a call; forced photometry and Swift's archive search ask about the past and are never
    refused."""
    from datetime import timedelta

    from facility_apis.core.timeutil import iso_date, utcnow

    sedm = get_facility("sedm")({"endpoint": "https://sedm.example/add_request"})
    today, yesterday = iso_date(utcnow()), iso_date(utcnow() - timedelta(days=1))
    closed = {"observation_type": "IFU", "priority": 1, "start_date": iso_date(utcnow() - timedelta(days=3)), "end_date": yesterday}
    with pytest.raises(PayloadError) as caught:
        sedm.refuse_a_closed_window(sedm.validate_payload(closed))
    assert [(e.path, e.message) for e in caught.value.errors] == [
        ("$.end_date", f"is in the past: the observing window closed at {today} 00:00 UTC; choose a window that has not ended")
    ]
    sedm.refuse_a_closed_window(sedm.validate_payload({**closed, "end_date": today}))  # open until midnight
    request = FollowupRequest(1, Target("ZTF26abc", 10.0, 20.0), Allocation(2, {"programname": "ZTF"}), closed, followup_request_id=3)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked, Transport() as transport:
        outcome = perform(sedm, "submit", request, transport)
        assert outcome.state is State.REJECTED and "$.end_date: is in the past" in outcome.status
        assert len(mocked.calls) == 0
    atlas = get_facility("atlas")
    atlas().refuse_a_closed_window({"start_date": "2020-01-01", "end_date": "2020-02-01"})
    get_facility("swift")().refuse_a_closed_window({"request_type": "XRT/UVOT/BAT Data", "end_date": "2020-01-31"})
