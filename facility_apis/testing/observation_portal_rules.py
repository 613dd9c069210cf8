"""What the Observation Portal emulator checks in a request group, and how it answers.

The rules and their wording follow the portal's serializers (``observatorycontrolsystem/
observation-portal``, ``requestgroups/serializers.py``): field errors by field name, object errors
under ``non_field_errors``, one entry per list item (``{}`` for an item without errors). The
instruments and sites are a small stand-in for the portal's configuration database (configdb),
with the instrument facts of AEONlib's generated models (``AEONplus/AEONlib``,
``src/aeonlib/ocs/{lco,soar}/instruments.py``, August 2026) and the Spectral camera at Siding
Spring that SkyPortal's classes still offer (LCO's live list no longer has it: pass
``instruments=`` without it to the emulator to model that). Visibility is the target's highest
altitude at each site that hosts the instrument, against the airmass limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..core.timeutil import parse_utc

#: Site code → latitude (degrees).
SITES: dict[str, float] = {"ogg": 20.71, "elp": 30.68, "tfn": 28.30, "lsc": -30.17, "cpt": -32.38, "coj": -31.27, "sor": -30.24}
TELESCOPE_CLASSES = ("0m4", "1m0", "2m0", "4m0")
CONFIGURATION_TYPES = ("EXPOSE", "SPECTRUM", "ARC", "LAMP_FLAT", "STANDARD", "BIAS", "DARK", "SKY_FLAT", "SCRIPT", "ENGINEERING")
#: Configuration types whose acquisition the portal forces off (configdb ``force_acquisition_off``).
CALIBRATIONS = ("ARC", "LAMP_FLAT", "BIAS", "DARK")
OBSERVATION_TYPES = ("NORMAL", "RAPID_RESPONSE", "TIME_CRITICAL", "DIRECT", "REAL_TIME")
MIN_IPP, MAX_IPP = 0.5, 2.0
#: Seconds of overhead per configuration in the emulated durations.
CONFIGURATION_OVERHEAD = 120.0


@dataclass(frozen=True)
class Instrument:
    """One instrument type: where it is, what its configurations may hold."""

    telescope_class: str
    sites: tuple[str, ...]
    types: tuple[str, ...]
    optical_elements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    modes: tuple[str, ...] = ()
    acquisition: tuple[str, ...] = ("OFF",)
    guiding: tuple[str, ...] = ("OFF", "ON")
    rotator: tuple[str, ...] = ()
    exposure_modes: tuple[str, ...] = ()
    #: Filters of the files one exposure makes when the instrument images several bands at once.
    channels: tuple[str, ...] = ()


_SINISTRO_FILTERS = ("I", "R", "U", "w", "Y", "up", "rp", "ip", "gp", "zs", "V", "B")
_SOAR = ("sor",)
_SPECTRA = ("SPECTRUM", "ARC", "LAMP_FLAT")

INSTRUMENTS: dict[str, Instrument] = {
    "1M0-SCICAM-SINISTRO": Instrument("1m0", ("lsc", "cpt", "coj", "elp"), ("EXPOSE", "SKY_FLAT", "BIAS", "DARK"), {"filter": _SINISTRO_FILTERS}),
    "2M0-SCICAM-SPECTRAL": Instrument("2m0", ("coj",), ("EXPOSE", "SKY_FLAT", "BIAS", "DARK"), {"filter": ("gp", "rp", "ip", "zs", "Y")}),
    "2M0-SCICAM-MUSCAT": Instrument(
        "2m0", ("ogg", "coj"), ("EXPOSE", "SKY_FLAT", "BIAS", "DARK"),
        {f"narrowband_{band}_position": ("out", "in") for band in "griz"},
        modes=("MUSCAT_SLOW", "MUSCAT_FAST"), exposure_modes=("SYNCHRONOUS", "ASYNCHRONOUS"), channels=("gp", "rp", "ip", "zs"),
    ),
    "2M0-FLOYDS-SCICAM": Instrument(
        "2m0", ("ogg", "coj"), _SPECTRA, {"slit": ("slit_6.0as", "slit_1.6as", "slit_2.0as", "slit_1.2as")},
        acquisition=("WCS", "BRIGHTEST"), rotator=("VFLOAT", "SKY"),
    ),
    "SOAR_GHTS_REDCAM_IMAGER": Instrument(
        "4m0", _SOAR, ("EXPOSE",), {"filter": ("g-SDSS", "r-SDSS", "i-SDSS", "z-SDSS")},
        modes=("GHTS_R_Image_2x2",), acquisition=("MANUAL",), rotator=("SKY",),
    ),
    "SOAR_GHTS_BLUECAM_IMAGER": Instrument(
        "4m0", _SOAR, ("EXPOSE",), {"filter": ("u-SDSS", "g-SDSS", "r-SDSS", "i-SDSS")},
        modes=("GHTS_B_Image_2x2",), acquisition=("MANUAL",), rotator=("SKY",),
    ),
    "SOAR_GHTS_REDCAM": Instrument(
        "4m0", _SOAR, _SPECTRA, modes=("GHTS_R_2100_5000A_1x2_slit1p0", "GHTS_R_400m1_2x2", "GHTS_R_400m2_2x2", "GHTS_R_400m1_2x2_slit1p5"),
        acquisition=("MANUAL",), guiding=("ON",), rotator=("SKY",),
    ),
    "SOAR_GHTS_BLUECAM": Instrument(
        "4m0", _SOAR, _SPECTRA, modes=("GHTS_B_400m1_2x2", "GHTS_B_400m1_2x2_slit1p5"), acquisition=("MANUAL",), guiding=("ON",), rotator=("SKY",),
    ),
    "SOAR_TRIPLESPEC": Instrument(
        "4m0", _SOAR, (*_SPECTRA, "STANDARD", "BIAS"),
        modes=("fowler1_coadds2", "fowler4_coadds1", "fowler8_coadds1", "fowler16_coadds1", "fowler1_coadds1"),
        acquisition=("MANUAL",), guiding=("ON",), rotator=("SKY",),
    ),
}  # fmt: skip


class Errors(dict):
    """DRF's error body under construction: ``add("field", "message")``; ``nonfield(...)``."""

    def add(self, key: str, message: str) -> None:
        self.setdefault(key, []).append(message)

    def nonfield(self, message: str) -> None:
        self.add("non_field_errors", message)

    def each(self, key: str, items: Any, check: Any, empty: str) -> None:
        """A list field: ``empty`` when it is missing or empty, else one error object per item
        (``{}`` for a good one), kept only when some item has errors."""
        if not isinstance(items, list) or not items:
            self.add(key, empty)
            return
        checked = [check(item) for item in items]
        if any(checked):
            self[key] = checked


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _time(errors: Errors, window: Mapping[str, Any], key: str) -> datetime | None:
    value = window.get(key)
    if value is None:
        if key == "end":
            errors.add(key, "This field is required.")
        return None
    try:
        return parse_utc(value) if isinstance(value, str) else None
    except ValueError:
        pass
    errors.add(key, "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].")
    return None


def highest_altitude(latitude: float, dec: float) -> float:
    """The target's altitude at upper culmination (degrees)."""
    return 90.0 - abs(latitude - dec)


def visible_at(site: str, dec: float, max_airmass: float) -> bool:
    altitude = highest_altitude(SITES[site], dec)
    return altitude > 0 and 1.0 / math.sin(math.radians(altitude)) <= max_airmass


class RequestGroupCheck:
    """Checks one request group body against ``instruments`` for a user of ``proposals``, at ``now``;
    with ``semesters`` (``(start, end)`` pairs), a window must fit in one of them.

    After ``run()``: ``errors`` (DRF's shape, empty when valid) and, when valid, ``durations``
    (the portal's ``request_durations``) and ``sites`` (per request, where it can be observed).
    """

    def __init__(
        self,
        body: Any,
        *,
        proposals: set[str],
        instruments: Mapping[str, Instrument],
        now: datetime,
        semesters: tuple[tuple[datetime, datetime], ...] = (),
    ):
        self.body, self.proposals, self.instruments, self.now, self.semesters = body, proposals, instruments, now, semesters
        self.errors: dict[str, Any] = {}
        self.durations: dict[str, Any] = {}
        self.sites: list[list[str]] = []

    def run(self) -> RequestGroupCheck:
        body = self.body
        if not isinstance(body, dict):
            self.errors = {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}
            return self
        errors = Errors()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.add("name", "Please provide a name." if name in ("", None) else "Not a valid string.")
        elif len(name) > 50:
            errors.add("name", "Ensure this field has no more than 50 characters.")
        if body.get("proposal") in (None, ""):
            errors.add("proposal", "Please provide a proposal.")
        for key, choices in (("operator", ("SINGLE", "MANY")), ("observation_type", OBSERVATION_TYPES)):
            if body.get(key) not in choices:
                errors.add(key, f'"{body.get(key)}" is not a valid choice.' if key in body else "This field is required.")
        if not _number(body.get("ipp_value")):
            errors.add("ipp_value", "A valid number is required.")
        requests = body.get("requests")
        errors.each("requests", requests, self._request, "You must specify at least 1 request")
        if not errors:
            self._group_rules(body, errors)
        self.errors = dict(errors)
        if not self.errors:
            per_request = [{"duration": request_duration(r), "configurations": [], "largest_interval": 28800.0} for r in requests]
            self.durations = {"requests": per_request, "duration": sum(r["duration"] for r in per_request)}
        return self

    def _group_rules(self, body: dict[str, Any], errors: Errors) -> None:
        """The portal's RequestGroupSerializer.validate: the first broken rule only."""
        if body["proposal"] not in self.proposals:
            return errors.nonfield("You do not belong to the proposal you are trying to submit with")
        if not MIN_IPP <= body["ipp_value"] <= MAX_IPP:
            return errors.nonfield(f"requestgroups ipp_value must be >= {MIN_IPP}, <= {MAX_IPP}")
        if body["operator"] == "SINGLE" and len(body["requests"]) > 1:
            return errors.nonfield("'Single' type requestgroups must have exactly one child request.")
        if body["operator"] == "MANY" and len(body["requests"]) == 1:
            return errors.nonfield("'Many' type requestgroups must have more than one child request.")
        if body["observation_type"] == "RAPID_RESPONSE":
            for request in body["requests"]:
                for window in request["windows"]:
                    if parse_utc(window.get("start") or self.now) > self.now:
                        return errors.nonfield("The Rapid Response observation window start time cannot be in the future.")
                    if parse_utc(window["end"]) - self.now > timedelta(seconds=request_duration(request) + 86400):
                        return errors.nonfield(
                            "A Rapid Response observation must start within the next 24 hours, so the window end time must be "
                            "within the next (24 hours + the observation duration)"
                        )
        return None

    def _request(self, request: Any) -> dict[str, Any]:
        errors = Errors()
        if not isinstance(request, dict):
            return {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}
        errors.each("configurations", request.get("configurations"), self._configuration, "You must specify at least 1 configuration")
        errors.each("windows", request.get("windows"), self._window, "You must specify at least 1 window")
        location = request.get("location")
        if not isinstance(location, dict) or location.get("telescope_class") not in TELESCOPE_CLASSES:
            errors["location"] = {"telescope_class": ['"{}" is not a valid choice.'.format((location or {}).get("telescope_class"))]}
        elif location.get("site") is not None and location["site"] not in SITES:
            errors["location"] = {"site": [f'"{location["site"]}" is not a valid choice.']}
        if errors:
            return dict(errors)
        message, sites = self._placement(request)
        if message:
            errors.nonfield(message)
        self.sites.append(sites)
        return dict(errors)

    def _placement(self, request: dict[str, Any]) -> tuple[str | None, list[str]]:
        """The instruments at the location, then visibility (RequestSerializer.validate)."""
        location = request["location"]
        site = location.get("site")
        hosts = set(SITES)
        for configuration in request["configurations"]:
            instrument = self.instruments[configuration["instrument_type"].upper()]
            if instrument.telescope_class != location["telescope_class"] or (site and site not in instrument.sites):
                valid = sorted(
                    code for code, other in self.instruments.items()
                    if other.telescope_class == location["telescope_class"] and (not site or site in other.sites)
                )  # fmt: skip
                return (
                    f"Invalid instrument type '{configuration['instrument_type']}' at site={site or 'Any'}, enc=Any, tel=Any. \n"
                    f"Valid instruments include: {', '.join(valid)}, .",
                    [],
                )
            hosts &= set(instrument.sites)
        if site:
            hosts &= {site}
        visible = sorted(
            host for host in hosts
            if all(visible_at(host, c["target"]["dec"], c["constraints"].get("max_airmass", 1.6)) for c in request["configurations"])
        )  # fmt: skip
        if not visible:
            return (
                "According to the constraints of the request, the target will not be visible within the time window. Check that "
                "the target is in the nighttime sky. Consider modifying the time window or loosening the airmass or lunar separation "
                "constraints. If the target is non sidereal, double check that the provided elements are correct.",
                [],
            )
        return None, visible

    def _window(self, window: Any) -> dict[str, Any]:
        errors = Errors()
        if not isinstance(window, dict):
            return {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}
        start, end = _time(errors, window, "start"), _time(errors, window, "end")
        if end is not None and end < self.now:
            errors.add("end", "Window end time must be in the future")
        if not errors and end is not None and end <= (start or self.now):
            errors.nonfield(f"Window end '{end}' cannot be earlier than window start '{start or self.now}'")
        elif not errors and end is not None and self.semesters:
            first = start or self.now
            if not any(low <= first and end <= high for low, high in self.semesters):
                errors.nonfield("The observation window does not fit within any defined semester.")
        return dict(errors)

    def _configuration(self, configuration: Any) -> dict[str, Any]:
        errors = Errors()
        if not isinstance(configuration, dict):
            return {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}
        code = configuration.get("instrument_type")
        instrument = self.instruments.get(code.upper()) if isinstance(code, str) else None
        if instrument is None:
            errors.add("instrument_type", f"Invalid instrument type {code}. Valid instruments may include: {', '.join(self.instruments)}")
        if configuration.get("type") not in CONFIGURATION_TYPES:
            errors.add("type", f'"{configuration.get("type")}" is not a valid choice.')
        target = configuration.get("target")
        if not isinstance(target, dict):
            errors["target"] = {"non_field_errors": ["This field is required."]}
        else:
            problems = Errors()
            if target.get("type") != "ICRS":
                problems.add("type", f'"{target.get("type")}" is not a valid choice.')
            for key, low, high in (("ra", 0.0, 360.0), ("dec", -90.0, 90.0)):
                value = target.get(key)
                if not _number(value) or not low <= value <= high:
                    problems.add(key, f"Ensure this value is between {low:g} and {high:g}." if _number(value) else "This field is required.")
            if not isinstance(target.get("name"), str) or not target["name"]:
                problems.add("name", "This field is required.")
            elif len(target["name"]) > 50:
                problems.add("name", "Ensure this field has no more than 50 characters.")
            if problems:
                errors["target"] = dict(problems)
        constraints = configuration.get("constraints")
        problems = Errors()
        if not isinstance(constraints, dict):
            problems.nonfield("This field is required.")
        for key, low, high in (("max_airmass", 1.0, 25.0), ("min_lunar_distance", 0.0, 180.0)):
            value = constraints.get(key) if isinstance(constraints, dict) else None
            if value is not None and (not _number(value) or not low <= value <= high):
                bound = f"less than or equal to {high:g}" if _number(value) and value > high else f"greater than or equal to {low:g}"
                problems.add(key, f"Ensure this value is {bound}.")
        if problems:
            errors["constraints"] = dict(problems)
        configs = configuration.get("instrument_configs")
        errors.each("instrument_configs", configs, self._instrument_config, "A configuration must have at least one instrument configuration")
        if not errors and instrument is not None:
            message = self._configuration_rules(configuration, instrument)
            if message:
                errors.nonfield(message)
        return dict(errors)

    @staticmethod
    def _instrument_config(config: Any) -> dict[str, Any]:
        errors = Errors()
        if not isinstance(config, dict):
            return {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}
        if not _number(config.get("exposure_time")):
            errors.add("exposure_time", "A valid number is required." if "exposure_time" in config else "This field is required.")
        elif config["exposure_time"] < 0:
            errors.add("exposure_time", "Ensure this value is greater than or equal to 0.")
        count = config.get("exposure_count")
        if not isinstance(count, int) or isinstance(count, bool):
            errors.add("exposure_count", "A valid integer is required." if "exposure_count" in config else "This field is required.")
        elif count < 1:
            errors.add("exposure_count", "Ensure this value is greater than or equal to 1.")
        return dict(errors)

    @staticmethod
    def _configuration_rules(configuration: dict[str, Any], instrument: Instrument) -> str | None:
        """ConfigurationSerializer.validate: modes and optical elements, the first broken rule."""
        code, kind = configuration["instrument_type"], configuration["type"]
        guiding = (configuration.get("guiding_config") or {}).get("mode")
        if guiding and guiding not in instrument.guiding:
            return f"Guiding mode {guiding} is not available for instrument type {code}"
        if kind not in instrument.types:
            return f"configuration type {kind} is not valid for instrument type {code}"
        acquisition = configuration.get("acquisition_config") or {}
        if kind not in CALIBRATIONS and acquisition.get("mode") and acquisition["mode"] not in instrument.acquisition:
            return f"Acquisition mode {acquisition['mode']} is not available for instrument type {code}"
        if acquisition.get("mode") == "BRIGHTEST" and not _number((acquisition.get("extra_params") or {}).get("acquire_radius")):
            return "Acquisition mode BRIGHTEST requirements are not met: extra_params{acquire_radius error: required field}"
        for config in configuration["instrument_configs"]:
            mode = config.get("mode")
            if mode and mode not in instrument.modes:
                return f"Readout mode {mode} is not available for instrument type {code}"
            rotator = config.get("rotator_mode")
            if instrument.rotator and rotator and rotator not in instrument.rotator:
                return f"Rotator mode {rotator} is not available for instrument type {code}"
            if rotator == "SKY" and not _number((config.get("extra_params") or {}).get("rotator_angle", 0)):
                return "Rotator mode SKY requirements are not met: extra_params{rotator_angle error: must be of float type}"
            elements = config.get("optical_elements") or {}
            for element, value in elements.items():
                if element not in instrument.optical_elements:
                    return f"optical_element of type {element} is not available on {code} instruments"
                if value not in instrument.optical_elements[element]:
                    return f"optical element {value} of type {element} is not available"
            for element in instrument.optical_elements:
                if element not in elements and kind not in ("BIAS", "DARK"):
                    return f"Must set optical element of type {element} for instrument type {code}"
            if instrument.exposure_modes:
                extra = config.get("extra_params") or {}
                mode = extra.get("exposure_mode")
                if mode not in instrument.exposure_modes:
                    return f"Exposure mode {mode} is not available for instrument type {code}"
                missing = [f"exposure_time_{band}" for band in "griz" if not _number(extra.get(f"exposure_time_{band}"))]
                if missing:
                    return f"Exposure mode {mode} requirements are not met: extra_params{{{missing[0]} error: required field}}"
        return None



def request_duration(request: Mapping[str, Any]) -> float:
    """Seconds a request takes in the emulation: its exposures plus an overhead per configuration."""
    seconds = 0.0
    for configuration in request.get("configurations") or []:
        seconds += CONFIGURATION_OVERHEAD
        for config in configuration.get("instrument_configs") or []:
            seconds += float(config.get("exposure_time") or 0) * int(config.get("exposure_count") or 0)
    return seconds
