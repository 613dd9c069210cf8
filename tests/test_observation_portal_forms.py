"""The Observation Portal instruments' forms and the request groups they build: the whole JSON per
instrument for representative payloads, the window and site rules, the SOAR camera branches, the
allocation forms, and the portal's field errors read back onto form fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from facility_apis.core.errors import AltdataError, FieldError, PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.registry import default_registry
from facility_apis.facilities.observation_portal import (
    FloydsFacility,
    GoodmanImagerFacility,
    GoodmanSpectrographFacility,
    MuscatFacility,
    SinistroFacility,
    SpectralFacility,
    TripleSpecFacility,
    forms,
)

LCO_ALTDATA = {"API_TOKEN": "portal-token-3f9a1c", "PROPOSAL_ID": "LCO2026B-001", "API_ARCHIVE_TOKEN": "archive-token-8d02e4"}
SOAR_ALTDATA = {"API_TOKEN": "portal-token-3f9a1c", "PROPOSAL_ID": "SOAR2026B-004"}
WINDOW = {"start_date": "2099-01-10T00:00:00Z", "end_date": "2099-01-17T00:00:00Z"}
SENT_WINDOW = [{"start": "2099-01-10T00:00:00Z", "end": "2099-01-17T00:00:00Z"}]
TARGET = {"name": "ZTF26aaabbbc", "type": "ICRS", "ra": 150.125, "dec": -20.5, "epoch": 2000}
FAMILY = (SinistroFacility, SpectralFacility, MuscatFacility, FloydsFacility, GoodmanImagerFacility, GoodmanSpectrographFacility, TripleSpecFacility)


def group_of(cls, payload, altdata=LCO_ALTDATA, *, request_id=17):
    """The request group a facility would send for this payload (validated as ``perform`` does)."""
    facility = cls()
    request = FollowupRequest(
        request_id, Target("ZTF26aaabbbc", 150.125, -20.5), Allocation(1, facility.validate_altdata(altdata)), facility.validate_payload(payload)
    )
    call = facility.prepare(request)
    assert (call.method, call.url) == ("POST", "https://observe.lco.global/api/requestgroups/")
    assert call.headers == {"Authorization": f"Token {altdata['API_TOKEN']}", "Accept": "application/json"}
    return call.json


def envelope(configurations, location, *, proposal="LCO2026B-001", observation_type="NORMAL", ipp=1, windows=SENT_WINDOW):
    return {
        "name": "ZTF26aaabbbc_17",
        "proposal": proposal,
        "ipp_value": ipp,
        "operator": "SINGLE",
        "observation_type": observation_type,
        "requests": [{"configurations": configurations, "windows": windows, "location": location}],
    }


# -- the whole request group per instrument ------------------------------------------------------


def test_sinistro_multi_filter_imaging():
    payload = {**WINDOW, "observation_choices": ["gp", "rp", "ip"], "exposure_time": 90, "exposure_counts": 2, "maximum_airmass": 1.8, "priority": 1.1}
    constraints = {"max_airmass": 1.8, "min_lunar_distance": 30}
    assert group_of(SinistroFacility, payload) == envelope(
        [
            {
                "type": "EXPOSE",
                "instrument_type": "1M0-SCICAM-SINISTRO",
                "target": TARGET,
                "constraints": constraints,
                "acquisition_config": {},
                "guiding_config": {},
                "instrument_configs": [
                    {"exposure_time": 90, "exposure_count": 2, "optical_elements": {"filter": "gp"}},
                    {"exposure_time": 90, "exposure_count": 2, "optical_elements": {"filter": "rp"}},
                    {"exposure_time": 90, "exposure_count": 2, "optical_elements": {"filter": "ip"}},
                ],
            }
        ],
        {"telescope_class": "1m0"},
        ipp=1.1,
    )


def test_sinistro_rapid_response_window_starts_now_and_ends_within_a_day():
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now - timedelta(minutes=1), now + timedelta(hours=6)
    payload = {
        "observation_mode": "RAPID_RESPONSE",
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "observation_choices": ["rp"],
        "exposure_time": 30,
    }
    sent = [{"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}]
    assert group_of(SinistroFacility, payload) == envelope(
        [
            {
                "type": "EXPOSE",
                "instrument_type": "1M0-SCICAM-SINISTRO",
                "target": TARGET,
                "constraints": {"max_airmass": 2, "min_lunar_distance": 30},
                "acquisition_config": {},
                "guiding_config": {},
                "instrument_configs": [{"exposure_time": 30, "exposure_count": 1, "optical_elements": {"filter": "rp"}}],
            }
        ],
        {"telescope_class": "1m0"},
        observation_type="RAPID_RESPONSE",
        windows=sent,
    )


def test_spectral_is_sent_to_siding_spring():
    group = group_of(SpectralFacility, {**WINDOW, "observation_choices": ["gp"], "exposure_time": 60})
    (request,) = group["requests"]
    assert request["location"] == {"telescope_class": "2m0", "site": "coj"}
    assert request["configurations"][0]["instrument_type"] == "2M0-SCICAM-SPECTRAL"


def test_muscat_exposes_four_channels_at_once():
    payload = {**WINDOW, "exposure_time": 45, "exposure_counts": 3, "exposure_mode": "ASYNCHRONOUS", "site": "ogg"}
    assert group_of(MuscatFacility, payload) == envelope(
        [
            {
                "type": "EXPOSE",
                "instrument_type": "2M0-SCICAM-MUSCAT",
                "target": TARGET,
                "constraints": {"max_airmass": 2, "min_lunar_distance": 30},
                "acquisition_config": {},
                "guiding_config": {},
                "instrument_configs": [
                    {
                        "exposure_time": 45,
                        "exposure_count": 3,
                        "optical_elements": {
                            "narrowband_g_position": "out",
                            "narrowband_r_position": "out",
                            "narrowband_i_position": "out",
                            "narrowband_z_position": "out",
                        },
                        "extra_params": {
                            "exposure_mode": "ASYNCHRONOUS",
                            "exposure_time_g": 45,
                            "exposure_time_r": 45,
                            "exposure_time_i": 45,
                            "exposure_time_z": 45,
                        },
                    }
                ],
            }
        ],
        {"telescope_class": "2m0", "site": "ogg"},
    )


def test_floyds_spectrum_with_slit_between_flats_and_arcs():
    payload = {**WINDOW, "exposure_time": 1200, "slit": "slit_2.0as", "acquisition_mode": "BRIGHTEST", "acquire_radius": 4, "maximum_airmass": 1.6}
    constraints = {"max_airmass": 1.6, "min_lunar_distance": 30}

    def calibration(kind, seconds):
        return {
            "type": kind,
            "instrument_type": "2M0-FLOYDS-SCICAM",
            "target": TARGET,
            "constraints": constraints,
            "acquisition_config": {},
            "guiding_config": {"mode": "OFF", "optional": False},
            "instrument_configs": [{"exposure_time": seconds, "exposure_count": 1, "rotator_mode": "VFLOAT", "optical_elements": {"slit": "slit_2.0as"}}],
        }

    spectrum = {
        "type": "SPECTRUM",
        "instrument_type": "2M0-FLOYDS-SCICAM",
        "target": TARGET,
        "constraints": constraints,
        "acquisition_config": {"mode": "BRIGHTEST", "extra_params": {"acquire_radius": 4}},
        "guiding_config": {"mode": "ON", "optional": False},
        "instrument_configs": [{"exposure_time": 1200, "exposure_count": 1, "rotator_mode": "VFLOAT", "optical_elements": {"slit": "slit_2.0as"}}],
    }
    flat, arc = calibration("LAMP_FLAT", 50.0), calibration("ARC", 60.0)
    assert group_of(FloydsFacility, payload) == envelope([flat, arc, spectrum, arc, flat], {"telescope_class": "2m0"})


def test_floyds_without_calibrations_and_with_wcs_acquisition_sends_the_spectrum_alone():
    group = group_of(FloydsFacility, {**WINDOW, "include_calibrations": False})
    (spectrum,) = group["requests"][0]["configurations"]
    assert spectrum["type"] == "SPECTRUM" and spectrum["acquisition_config"] == {"mode": "WCS"}
    assert spectrum["instrument_configs"][0]["optical_elements"] == {"slit": "slit_1.6as"}


def test_goodman_blue_imaging_in_two_filters():
    payload = {**WINDOW, "instrument_type": "SOAR_GHTS_BLUECAM_IMAGER", "observation_choices": ["u-SDSS", "g-SDSS"], "exposure_time": 120, "rotator_angle": 30}

    def filter_config(name):
        return {
            "exposure_time": 120,
            "exposure_count": 1,
            "rotator_mode": "SKY",
            "extra_params": {"rotator_angle": 30},
            "mode": "GHTS_B_Image_2x2",
            "optical_elements": {"filter": name},
        }

    assert group_of(GoodmanImagerFacility, payload, SOAR_ALTDATA) == envelope(
        [
            {
                "type": "EXPOSE",
                "instrument_type": "SOAR_GHTS_BLUECAM_IMAGER",
                "target": TARGET,
                "constraints": {"max_airmass": 2, "min_lunar_distance": 30},
                "acquisition_config": {"mode": "MANUAL"},
                "guiding_config": {"mode": "ON", "optional": True},
                "instrument_configs": [filter_config("u-SDSS"), filter_config("g-SDSS")],
            }
        ],
        {"telescope_class": "4m0"},
        proposal="SOAR2026B-004",
    )


def test_goodman_spectrum_between_arcs():
    payload = {**WINDOW, "instrument_mode": "GHTS_R_400m2_2x2", "exposure_time": 600, "exposure_counts": 2, "observation_mode": "TIME_CRITICAL"}
    common = {"rotator_mode": "SKY", "extra_params": {"rotator_angle": 0}, "mode": "GHTS_R_400m2_2x2", "optical_elements": {}}
    constraints = {"max_airmass": 2, "min_lunar_distance": 30}
    arc = {
        "type": "ARC",
        "instrument_type": "SOAR_GHTS_REDCAM",
        "target": TARGET,
        "constraints": constraints,
        "acquisition_config": {},
        "guiding_config": {},
        "instrument_configs": [{"exposure_time": 0.5, "exposure_count": 3, **common}],
    }
    spectrum = {
        "type": "SPECTRUM",
        "instrument_type": "SOAR_GHTS_REDCAM",
        "target": TARGET,
        "constraints": constraints,
        "acquisition_config": {"mode": "MANUAL"},
        "guiding_config": {"mode": "ON", "optional": False},
        "instrument_configs": [{"exposure_time": 600, "exposure_count": 2, **common}],
    }
    assert group_of(GoodmanSpectrographFacility, payload, SOAR_ALTDATA) == envelope(
        [arc, spectrum, arc], {"telescope_class": "4m0"}, proposal="SOAR2026B-004", observation_type="TIME_CRITICAL"
    )


def test_triplespec_spectrum():
    payload = {**WINDOW, "instrument_mode": "fowler8_coadds1", "exposure_time": 120, "exposure_counts": 4}
    assert group_of(TripleSpecFacility, payload, SOAR_ALTDATA) == envelope(
        [
            {
                "type": "SPECTRUM",
                "instrument_type": "SOAR_TRIPLESPEC",
                "target": TARGET,
                "constraints": {"max_airmass": 2, "min_lunar_distance": 30},
                "acquisition_config": {"mode": "MANUAL"},
                "guiding_config": {"mode": "ON", "optional": False},
                "instrument_configs": [
                    {
                        "exposure_time": 120,
                        "exposure_count": 4,
                        "rotator_mode": "SKY",
                        "extra_params": {"rotator_angle": 90},
                        "mode": "fowler8_coadds1",
                        "optical_elements": {},
                    }
                ],
            }
        ],
        {"telescope_class": "4m0"},
        proposal="SOAR2026B-004",
    )


def test_the_group_and_target_names_fit_the_portal_and_let_a_lost_submission_be_found():
    facility = SinistroFacility()
    long_id = "X" * 60
    for request_id, expected in ((17, "X" * 47 + "_17"), (None, "X" * 50)):
        request = FollowupRequest(request_id, Target(long_id, 1.0, 2.0), Allocation(1, LCO_ALTDATA), {})
        assert facility.group_name(request) == expected and len(expected) <= 50
        assert facility.target(request)["name"] == "X" * 50


# -- form rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path", "rule"),
    [
        ({"end_date": "2099-01-09T00:00:00Z"}, "$.end_date", "must be after start_date"),
        ({"start_date": "2020-01-01T00:00:00Z", "end_date": "2020-01-02T00:00:00Z"}, "$.end_date", "must be in the future"),
        ({"start_date": "2099-01-10"}, "$.start_date", "must be a date and time, YYYY-MM-DD HH:MM:SS"),
        ({"observation_mode": "RAPID_RESPONSE"}, "$.start_date", "must not be in the future for a RAPID_RESPONSE request"),
        ({"observation_mode": "SLOW"}, "$.observation_mode", "must be one of"),
        ({"priority": 2.5}, "$.priority", "must be at most 2"),
        ({"exposure_counts": 0}, "$.exposure_counts", "must be at least 1"),
        ({"observation_choices": []}, "$.observation_choices", "must hold at least 1 item(s)"),
        ({"observation_choices": ["gp", "gp"]}, "$.observation_choices", "must not repeat an item"),
        ({"observation_choices": ["H-Alpha"]}, "$.observation_choices[0]", "must be one of"),
    ],
)
def test_a_payload_breaking_a_rule_is_refused_naming_the_field(change, path, rule):
    payload = {**WINDOW, "observation_choices": ["gp"], **change}
    with pytest.raises(PayloadError) as caught:
        SinistroFacility().validate_payload(payload)
    assert any(e.path == path and rule in e.message for e in caught.value.errors), caught.value.errors


def test_a_rapid_response_window_must_end_within_a_day():
    now = datetime.now(UTC)
    late = (now + timedelta(hours=30)).isoformat()
    payload = {"observation_mode": "RAPID_RESPONSE", "start_date": now.isoformat(), "end_date": late, "observation_choices": ["gp"]}
    with pytest.raises(PayloadError) as caught:
        SinistroFacility().validate_payload(payload)
    assert caught.value.errors == [FieldError("$.end_date", "must be within 24 hours of now for a RAPID_RESPONSE request")]


@pytest.mark.parametrize("cls", FAMILY)
def test_the_untouched_form_as_skyportal_fills_it_is_accepted_and_sent_as_the_portal_spells_it(cls):
    """SkyPortal's request form puts "YYYY-MM-DD HH:MM:SS" (UTC, no zone) in the window's fields;
    the rest of the untouched form is its defaults, which every required field has."""
    facility = cls()
    served = facility.request_schema()
    assert served["required"] == [] and all("format" not in served["properties"][key] for key in ("start_date", "end_date"))
    untouched = {key: spec["default"] for key, spec in served["properties"].items() if "default" in spec}
    untouched |= {"start_date": "2099-01-10 00:00:00", "end_date": "2099-01-16 18:30:00"}
    payload = facility.validate_payload(untouched)
    assert (payload["start_date"], payload["end_date"]) == ("2099-01-10 00:00:00", "2099-01-16 18:30:00")
    altdata = SOAR_ALTDATA if facility.network == "soar" else LCO_ALTDATA
    group = group_of(cls, untouched, altdata)
    assert group["requests"][0]["windows"] == [{"start": "2099-01-10T00:00:00Z", "end": "2099-01-16T18:30:00Z"}]


def test_a_window_in_another_zone_is_sent_in_utc():
    payload = {"start_date": "2099-01-10T02:00:00.5+02:00", "end_date": "2099-01-16T23:30:00-05:00", "observation_choices": ["gp"]}
    group = group_of(SinistroFacility, payload)
    assert group["requests"][0]["windows"] == [{"start": "2099-01-10T00:00:00Z", "end": "2099-01-17T04:30:00Z"}]


def test_window_defaults_are_computed_at_each_call(monkeypatch):
    moments = iter([datetime(2099, 3, 1, 12, 30, 45, tzinfo=UTC), datetime(2099, 3, 2, 8, 0, 5, tzinfo=UTC)])
    monkeypatch.setattr(forms, "utcnow", lambda: next(moments))
    facility = SinistroFacility()
    first, second = facility.request_schema()["properties"], facility.request_schema()["properties"]
    assert (first["start_date"]["default"], first["end_date"]["default"]) == ("2099-03-01T12:30:00Z", "2099-03-08T12:30:00Z")
    assert (second["start_date"]["default"], second["end_date"]["default"]) == ("2099-03-02T08:00:00Z", "2099-03-09T08:00:00Z")


@pytest.mark.parametrize(
    ("cls", "payload", "path"),
    [
        (GoodmanImagerFacility, {"instrument_type": "SOAR_GHTS_BLUECAM_IMAGER", "observation_choices": ["z-SDSS"]}, "$.observation_choices[0]"),
        (GoodmanImagerFacility, {"instrument_type": "SOAR_GHTS_REDCAM_IMAGER", "observation_choices": ["u-SDSS"]}, "$.observation_choices[0]"),
        (GoodmanSpectrographFacility, {"instrument_type": "SOAR_GHTS_BLUECAM", "instrument_mode": "GHTS_R_400m1_2x2"}, "$.instrument_mode"),
        (GoodmanSpectrographFacility, {"instrument_type": "SOAR_GHTS_BLUECAM"}, "$.instrument_mode"),  # the default mode is the red camera's
    ],
)
def test_the_camera_decides_the_filters_and_modes_server_side_too(cls, payload, path):
    with pytest.raises(PayloadError) as caught:
        cls().validate_payload({**WINDOW, **payload})
    assert path in [e.path for e in caught.value.errors]


def test_every_form_has_the_shared_fields_first_then_its_own_and_a_ui_order_naming_them_all():
    shared = list(forms.load_schema(forms.COMMON_FORM)["properties"])
    for cls in FAMILY:
        schema = cls().request_schema()
        assert list(schema["properties"])[: len(shared)] == shared
        # Every shared field is required, or has a default the package fills (then never served as required).
        assert all(key in schema["required"] or "default" in schema["properties"][key] for key in shared)
        assert schema["additionalProperties"] is False and schema["$id"] == f"facility_apis/{cls.name}/request"
        assert sorted(cls.ui_schema()["ui:order"]) == sorted(schema["properties"])


def test_the_sinistro_form_narrows_to_the_filters_skyportal_lists_for_the_instrument():
    facility = SinistroFacility()
    narrowed = facility.instrument_form(facility.request_schema(), name="Sinistro", filters=("sdssg", "sdssr", "ps1::z"))
    assert narrowed["properties"]["observation_choices"]["items"]["enum"] == ["gp", "rp", "zs"]
    assert narrowed["properties"]["observation_choices"]["default"] == ["gp", "rp"]  # what is left of g, r, i
    only_z = facility.instrument_form(facility.request_schema(), name="Sinistro", filters=("ps1::z",))
    assert only_z["properties"]["observation_choices"]["default"] == ["zs"]
    untouched = facility.instrument_form(facility.request_schema(), name="Sinistro", filters=("ztfg",))
    assert len(untouched["properties"]["observation_choices"]["items"]["enum"]) == 12


# -- allocations ---------------------------------------------------------------------------------


def test_lco_allocations_may_carry_an_archive_token_soar_ones_may_not():
    assert SinistroFacility().validate_altdata({**LCO_ALTDATA, "API_ARCHIVE_TOKEN": ""}) == {k: v for k, v in LCO_ALTDATA.items() if k != "API_ARCHIVE_TOKEN"}
    assert SinistroFacility.secret_fields() == {"API_TOKEN", "API_ARCHIVE_TOKEN"} and TripleSpecFacility.secret_fields() == {"API_TOKEN"}
    with pytest.raises(AltdataError) as caught:
        TripleSpecFacility().validate_altdata({**SOAR_ALTDATA, "API_ARCHIVE_TOKEN": "x"})
    assert [e.path for e in caught.value.errors] == ["$.API_ARCHIVE_TOKEN"]
    for bad in ({"API_TOKEN": "has space"}, {"API_TOKEN": "tab\tinside"}, {"PROPOSAL_ID": "two words"}):
        with pytest.raises(AltdataError) as caught:
            SinistroFacility().validate_altdata({**LCO_ALTDATA, **bad})
        assert all(value not in str(caught.value) for value in bad.values())  # the rule in words, never the value


def test_every_family_member_is_registered_under_its_skyportal_class():
    registered = {cls.name: cls for cls in default_registry().all()}
    classes = {cls.skyportal_class: cls.name for cls in FAMILY}
    assert classes == {
        "SINISTROAPI": "lco_sinistro",
        "SPECTRALAPI": "lco_spectral",
        "MUSCATAPI": "lco_muscat",
        "FLOYDSAPI": "lco_floyds",
        "SOARGHTSIMAGERAPI": "soar_goodman_imager",
        "SOARGHTSAPI": "soar_goodman_spectrograph",
        "SOARTSPECAPI": "soar_triplespec",
    }
    assert all(registered[name] is cls for cls in FAMILY for name in [cls.name])


# -- the portal's errors, read back onto the form -------------------------------------------------


def test_nested_portal_errors_become_form_fields_once_each():
    NEGATIVE = "Ensure this value is greater than or equal to 0."
    errors = {
        "proposal": ["Please provide a proposal."],
        "requests": [
            {
                "windows": [{"end": ["Window end time must be in the future"]}],
                "configurations": [
                    {"instrument_configs": [{"exposure_time": [NEGATIVE]}, {}, {"exposure_time": [NEGATIVE]}]},
                    {"acquisition_config": {"mode": ["bad"]}},
                    {"non_field_errors": ["optical element zz of type filter is not available"]},
                ],
                "non_field_errors": ["According to the constraints of the request, the target will not be visible"],
            }
        ],
        "non_field_errors": ["You do not belong to the proposal you are trying to submit with"],
    }
    fields = {**forms.FORM_FIELDS, **FloydsFacility.form_fields}
    assert forms.field_errors(errors, fields) == [
        FieldError("$.altdata.PROPOSAL_ID", "Please provide a proposal."),
        FieldError("$.end_date", "Window end time must be in the future"),
        FieldError("$.exposure_time", NEGATIVE),
        FieldError("$.acquisition_mode", "bad"),
        FieldError("$.requests[0].configurations[2]", "optical element zz of type filter is not available"),
        FieldError("$", "According to the constraints of the request, the target will not be visible"),
        FieldError("$", "You do not belong to the proposal you are trying to submit with"),
    ]
