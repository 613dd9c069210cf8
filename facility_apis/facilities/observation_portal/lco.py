"""LCO's instruments on the Observation Portal: the 1 m Sinistro imagers, the 2 m Spectral and
MuSCAT imagers and the 2 m FLOYDS spectrographs.

Instrument facts: the portal's instrument list (configdb) as captured in AEONlib's generated
models (``AEONplus/AEONlib``, ``src/aeonlib/ocs/lco/instruments.py``, August 2026: Sinistro
filters, MuSCAT's ``narrowband_<g|r|i|z>_position`` elements and ``exposure_mode``/
``exposure_time_<g|r|i|z>`` extra parameters, FLOYDS slits, WCS and BRIGHTEST acquisition);
the portal's tests for BRIGHTEST's required ``acquire_radius``; LCO's API examples for the
configuration shapes; SkyPortal's ``lco.py`` for FLOYDS's lamp flat (50 s) and arc (60 s) around
the spectrum and for Spectral being in the south. That list no longer names
``2M0-SCICAM-SPECTRAL``: the portal refuses Spectral requests while LCO does not offer it (see
the facility's page).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ...core.interface import FollowupRequest
from .portal import ObservationPortalFacility

_INSTRUMENT_CONFIG = ("requests", "configurations", "instrument_configs")


class LCOFacility(ObservationPortalFacility, abstract=True):
    """An LCO instrument: its allocations may carry an archive token, which lists the reduced
    frames of a completed request."""

    network: ClassVar[str] = "lco"


class LCOImagerFacility(LCOFacility, abstract=True):
    """A filter-wheel imager: one EXPOSE configuration, one instrument configuration per filter."""

    #: LCO's filter names → SkyPortal's bandpass names (for narrowing the form to an instrument).
    BANDPASSES: ClassVar[Mapping[str, str]] = {
        "up": "sdssu", "gp": "sdssg", "rp": "sdssr", "ip": "sdssi", "zs": "ps1::z", "Y": "ps1::y",
        "U": "bessellux", "B": "bessellb", "V": "bessellv", "R": "bessellr", "I": "besselli",
    }  # fmt: skip
    form_fields: ClassVar[Mapping[tuple[str, ...], str]] = {
        (*_INSTRUMENT_CONFIG, "optical_elements", "filter"): "observation_choices",
        (*_INSTRUMENT_CONFIG, "optical_elements"): "observation_choices",
    }

    def configurations(self, request: FollowupRequest) -> list[dict[str, Any]]:
        return [self.configuration(request, "EXPOSE", self.per_filter(request.payload))]

    def instrument_form(self, schema: dict[str, Any], *, name: str | None, filters: tuple[str, ...]) -> dict[str, Any]:
        """Only the filters SkyPortal's instrument lists (by bandpass), when it lists any of them;
        the default keeps those of its filters still offered, else the first one offered, so the
        untouched form can still be submitted."""
        field = schema["properties"]["observation_choices"]
        offered = [choice for choice in field["items"]["enum"] if self.BANDPASSES.get(choice) in filters]
        if offered:
            field["items"]["enum"] = offered
            if "default" in field:
                field["default"] = [choice for choice in field["default"] if choice in offered] or offered[:1]
        return schema


class SinistroFacility(LCOImagerFacility):
    name: ClassVar[str] = "lco_sinistro"
    title: ClassVar[str] = "LCO 1 m Sinistro imager"
    skyportal_class: ClassVar[str] = "SINISTROAPI"
    instrument_type: ClassVar[str] = "1M0-SCICAM-SINISTRO"
    telescope_class: ClassVar[str] = "1m0"


class SpectralFacility(LCOImagerFacility):
    """Spectral, on the 2 m Faulkes Telescope South at Siding Spring: the form's ``site`` is
    ``coj``, so the portal checks the target's visibility there."""

    name: ClassVar[str] = "lco_spectral"
    title: ClassVar[str] = "LCO 2 m Spectral imager"
    skyportal_class: ClassVar[str] = "SPECTRALAPI"
    instrument_type: ClassVar[str] = "2M0-SCICAM-SPECTRAL"
    telescope_class: ClassVar[str] = "2m0"


class MuscatFacility(LCOFacility):
    """MuSCAT: g, r, i and z at once, each for the form's exposure time, narrow-band filters out."""

    name: ClassVar[str] = "lco_muscat"
    title: ClassVar[str] = "LCO 2 m MuSCAT imager"
    skyportal_class: ClassVar[str] = "MUSCATAPI"
    instrument_type: ClassVar[str] = "2M0-SCICAM-MUSCAT"
    telescope_class: ClassVar[str] = "2m0"
    BANDS: ClassVar[str] = "griz"
    form_fields: ClassVar[Mapping[tuple[str, ...], str]] = {
        (*_INSTRUMENT_CONFIG, "extra_params", "exposure_mode"): "exposure_mode",
        **{(*_INSTRUMENT_CONFIG, "extra_params", f"exposure_time_{band}"): "exposure_time" for band in BANDS},
    }

    def configurations(self, request: FollowupRequest) -> list[dict[str, Any]]:
        payload = request.payload
        seconds = payload["exposure_time"]
        config = self.exposures(
            payload,
            optical_elements={f"narrowband_{band}_position": "out" for band in self.BANDS},
            extra_params={"exposure_mode": payload["exposure_mode"], **{f"exposure_time_{band}": seconds for band in self.BANDS}},
        )
        return [self.configuration(request, "EXPOSE", [config])]


class FloydsFacility(LCOFacility):
    """FLOYDS: the spectrum on the chosen slit, between lamp flats and arcs when asked."""

    name: ClassVar[str] = "lco_floyds"
    title: ClassVar[str] = "LCO 2 m FLOYDS spectrograph"
    skyportal_class: ClassVar[str] = "FLOYDSAPI"
    instrument_type: ClassVar[str] = "2M0-FLOYDS-SCICAM"
    telescope_class: ClassVar[str] = "2m0"
    #: Calibrations before the spectrum (and after it, in reverse), with their exposure times (s).
    CALIBRATIONS: ClassVar[tuple[tuple[str, float], ...]] = (("LAMP_FLAT", 50.0), ("ARC", 60.0))
    form_fields: ClassVar[Mapping[tuple[str, ...], str]] = {
        (*_INSTRUMENT_CONFIG, "optical_elements", "slit"): "slit",
        (*_INSTRUMENT_CONFIG, "optical_elements"): "slit",
        ("requests", "configurations", "acquisition_config", "mode"): "acquisition_mode",
        ("requests", "configurations", "acquisition_config", "extra_params", "acquire_radius"): "acquire_radius",
        ("requests", "configurations", "acquisition_config"): "acquisition_mode",
    }

    def configurations(self, request: FollowupRequest) -> list[dict[str, Any]]:
        payload = request.payload
        optics = {"slit": payload["slit"]}
        acquisition: dict[str, Any] = {"mode": payload["acquisition_mode"]}
        if payload["acquisition_mode"] == "BRIGHTEST":
            acquisition["extra_params"] = {"acquire_radius": payload["acquire_radius"]}
        spectrum = self.configuration(
            request,
            "SPECTRUM",
            [self.exposures(payload, rotator_mode="VFLOAT", optical_elements=optics)],
            acquisition=acquisition,
            guiding={"mode": "ON", "optional": False},
        )
        if not payload["include_calibrations"]:
            return [spectrum]
        calibrations = [
            self.configuration(
                request,
                kind,
                [{"exposure_time": seconds, "exposure_count": 1, "rotator_mode": "VFLOAT", "optical_elements": optics}],
                guiding={"mode": "OFF", "optional": False},
            )
            for kind, seconds in self.CALIBRATIONS
        ]
        return self.bracketed(spectrum, calibrations)
