"""The Liverpool Telescope's RTML instruments: IO:O, IO:I and SPRAT.

Device names, filters, gratings and binnings as LT's TEA reads them (GitHub ``LivTel/tea``:
``config/ltproxy_filter-combo.properties`` maps the IO:O filter types ``U G R I Z`` to the SDSS
filters and IO:I's ``H``; ``DeviceInstrumentUtilites`` requires IO:I binning 1 and Sprat gratings
``red``/``blue``; ``ltproxy.tea.properties`` gives the default binnings IO:O 2, IO:I 1, Sprat 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .facility import LiverpoolFacility
from .rtml import Exposure, Setup

#: IO:O's filters by the form's names (SkyPortal's LT form) to LT's RTML filter types.
IOO_FILTERS = {"u": "U", "g": "G", "r": "R", "i": "I", "z": "Z"}


def _exposure(setup: Setup, payload: Mapping[str, Any]) -> Exposure:
    return Exposure(setup, float(payload["exposure_time"]), int(payload["exposure_counts"]))


class IOOFacility(LiverpoolFacility):
    """IO:O, the optical imager: one Schedule per chosen filter, binned 2×2."""

    name: ClassVar[str] = "lt_ioo"
    title: ClassVar[str] = "Liverpool Telescope IO:O"
    skyportal_class: ClassVar[str] = "IOOAPI"

    def exposures(self, payload: Mapping[str, Any]) -> list[Exposure]:
        chosen = dict.fromkeys(payload["observation_choices"])  # form order, each filter once
        return [_exposure(Setup("IO:O", "camera", "optical", 2, filter=IOO_FILTERS[band]), payload) for band in chosen]

    def instrument_form(self, schema: dict[str, Any], *, name: str | None, filters: tuple[str, ...]) -> dict[str, Any]:
        """The filter choices narrowed to the SkyPortal instrument's SDSS filters (``sdssg`` for
        ``g``, ...), when it lists any of them; otherwise all five."""
        items = schema["properties"]["observation_choices"]["items"]
        offered = [band for band in items["enum"] if f"sdss{band}" in filters]
        if offered:
            items["enum"] = offered
        return schema


class IOIFacility(LiverpoolFacility):
    """IO:I, the near-infrared imager: H band, unbinned (the TEA refuses any other binning)."""

    name: ClassVar[str] = "lt_ioi"
    title: ClassVar[str] = "Liverpool Telescope IO:I"
    skyportal_class: ClassVar[str] = "IOIAPI"

    def exposures(self, payload: Mapping[str, Any]) -> list[Exposure]:
        return [_exposure(Setup("IO:I", "camera", "infrared", 1, filter=band), payload) for band in dict.fromkeys(payload["observation_choices"])]


class SPRATFacility(LiverpoolFacility):
    """SPRAT, the low-resolution spectrograph (``Sprat`` to LT): one Schedule with the chosen
    grating, unbinned."""

    name: ClassVar[str] = "lt_sprat"
    title: ClassVar[str] = "Liverpool Telescope SPRAT"
    skyportal_class: ClassVar[str] = "SPRATAPI"

    def exposures(self, payload: Mapping[str, Any]) -> list[Exposure]:
        return [_exposure(Setup("Sprat", "spectrograph", "optical", 1, grating=payload["observation_type"]), payload)]
