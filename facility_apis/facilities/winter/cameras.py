"""The WINTER observatory's cameras: WINTER (infrared) and SPRING, each with its default sequences.

Defaults: SkyPortal's ``FILTER_DEFAULTS`` (WINTER: Y and J 8 × 120 s, Hs 15 × 60 s, dark 5 × 120 s;
SPRING: 30 × 30 s in every filter) and wintertoo's dither step (90 arcsec for WINTER, the
observatory's schedule default; 60 for SPRING, wintertoo's ``Spring``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from .too import Sequence, WinterToOFacility


class WINTERFacility(WinterToOFacility):
    """The WINTER infrared camera."""

    name: ClassVar[str] = "winter"
    title: ClassVar[str] = "WINTER"
    skyportal_class: ClassVar[str] = "WINTERAPI"
    camera: ClassVar[str] = "winter"
    defaults: ClassVar[Mapping[str, Sequence]] = {
        "Y": Sequence(120, 8),
        "J": Sequence(120, 8),
        "Hs": Sequence(60, 15),
        "dark": Sequence(120, 5),
    }
    dither_distance: ClassVar[float] = 90.0


class SPRINGFacility(WinterToOFacility):
    """The SPRING camera on the WINTER telescope."""

    name: ClassVar[str] = "spring"
    title: ClassVar[str] = "SPRING"
    skyportal_class: ClassVar[str] = "SPRINGAPI"
    camera: ClassVar[str] = "spring"
    defaults: ClassVar[Mapping[str, Sequence]] = {band: Sequence(30, 30) for band in ("Y", "J", "Hs", "dark")}
    dither_distance: ClassVar[float] = 60.0
