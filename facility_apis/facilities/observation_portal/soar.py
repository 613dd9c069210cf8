"""SOAR's instruments on the Observation Portal: the Goodman spectrograph (red and blue cameras)
in imaging and spectroscopic modes, and TripleSpec.

Instrument facts: the portal's instrument list (configdb) as captured in AEONlib's generated
models (``AEONplus/AEONlib``, ``src/aeonlib/ocs/soar/instruments.py``, August 2026: the cameras'
instrument types, modes and filters, MANUAL acquisition, the SKY rotator mode, empty optical
elements for the spectroscopic modes); LCO's SOAR API examples for the configuration shapes and
``rotator_angle``; SkyPortal's ``soar.py`` for the arcs (3 × 0.5 s) around a Goodman spectrum and
TripleSpec's 90° default. SOAR requests run on the 4 m telescope class; SOAR data are not listed
from LCO's archive here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ...core.interface import FollowupRequest
from .portal import ObservationPortalFacility

_INSTRUMENT_CONFIG = ("requests", "configurations", "instrument_configs")
_MANUAL = {"mode": "MANUAL"}


class SOARFacility(ObservationPortalFacility, abstract=True):
    """A SOAR instrument: the 4 m class, the sky-fixed rotator at the form's angle, manual
    acquisition."""

    network: ClassVar[str] = "soar"
    telescope_class: ClassVar[str] = "4m0"
    form_fields: ClassVar[Mapping[tuple[str, ...], str]] = {
        ("requests", "configurations", "instrument_type"): "instrument_type",
        (*_INSTRUMENT_CONFIG, "extra_params", "rotator_angle"): "rotator_angle",
        (*_INSTRUMENT_CONFIG, "mode"): "instrument_mode",
    }

    def on_sky(self, payload: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
        """Instrument-configuration fields of the rotator: SKY mode at the form's angle."""
        return {"rotator_mode": "SKY", "extra_params": {"rotator_angle": payload["rotator_angle"]}, **fields}


class GoodmanImagerFacility(SOARFacility):
    """Goodman imaging: one EXPOSE configuration, one instrument configuration per filter."""

    name: ClassVar[str] = "soar_goodman_imager"
    title: ClassVar[str] = "SOAR Goodman imager"
    skyportal_class: ClassVar[str] = "SOARGHTSIMAGERAPI"
    instrument_type: ClassVar[str] = "SOAR_GHTS_REDCAM_IMAGER"
    #: The imaging mode of each camera (2 × 2 binning).
    MODES: ClassVar[Mapping[str, str]] = {"SOAR_GHTS_REDCAM_IMAGER": "GHTS_R_Image_2x2", "SOAR_GHTS_BLUECAM_IMAGER": "GHTS_B_Image_2x2"}
    form_fields: ClassVar[Mapping[tuple[str, ...], str]] = {
        **SOARFacility.form_fields,
        (*_INSTRUMENT_CONFIG, "optical_elements", "filter"): "observation_choices",
        (*_INSTRUMENT_CONFIG, "optical_elements"): "observation_choices",
    }

    def configurations(self, request: FollowupRequest) -> list[dict[str, Any]]:
        payload = request.payload
        camera = payload["instrument_type"]
        configs = self.per_filter(payload, **self.on_sky(payload, mode=self.MODES[camera]))
        return [self.configuration(request, "EXPOSE", configs, instrument_type=camera, acquisition=_MANUAL, guiding={"mode": "ON", "optional": True})]


class GoodmanSpectrographFacility(SOARFacility):
    """Goodman spectroscopy in the form's mode, between arcs in the same mode when asked."""

    name: ClassVar[str] = "soar_goodman_spectrograph"
    title: ClassVar[str] = "SOAR Goodman spectrograph"
    skyportal_class: ClassVar[str] = "SOARGHTSAPI"
    instrument_type: ClassVar[str] = "SOAR_GHTS_REDCAM"
    ARC: ClassVar[Mapping[str, Any]] = {"exposure_time": 0.5, "exposure_count": 3}

    def configurations(self, request: FollowupRequest) -> list[dict[str, Any]]:
        payload = request.payload
        camera, mode = payload["instrument_type"], payload["instrument_mode"]
        spectrum = self.configuration(
            request,
            "SPECTRUM",
            [self.exposures(payload, **self.on_sky(payload, mode=mode, optical_elements={}))],
            instrument_type=camera,
            acquisition=_MANUAL,
            guiding={"mode": "ON", "optional": False},
        )
        if not payload["include_calibrations"]:
            return [spectrum]
        arc = self.configuration(request, "ARC", [{**self.ARC, **self.on_sky(payload, mode=mode, optical_elements={})}], instrument_type=camera)
        return self.bracketed(spectrum, [arc])


class TripleSpecFacility(SOARFacility):
    """TripleSpec: one near-infrared spectrum in the form's readout mode."""

    name: ClassVar[str] = "soar_triplespec"
    title: ClassVar[str] = "SOAR TripleSpec spectrograph"
    skyportal_class: ClassVar[str] = "SOARTSPECAPI"
    instrument_type: ClassVar[str] = "SOAR_TRIPLESPEC"

    def configurations(self, request: FollowupRequest) -> list[dict[str, Any]]:
        payload = request.payload
        config = self.exposures(payload, **self.on_sky(payload, mode=payload["instrument_mode"], optical_elements={}))
        return [self.configuration(request, "SPECTRUM", [config], acquisition=_MANUAL, guiding={"mode": "ON", "optional": False})]
