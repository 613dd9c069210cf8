"""The SEDM request document: the JSON SEDM's intake reads (``marshals/interface.py`` and
``marshals/watcher.py`` of SEDM's ``sedmpy``, and SkyPortal's ``convert_request_to_sedm`` for what
its requests carry).

Keys: ``Filters`` and ``Followup`` (the mode: filters comma-separated, ``IFU`` for a spectrum),
``email``, ``startdate``, ``enddate``, ``prior_photometry``, ``priority``, ``programname``,
``requestid`` (SEDM's ``marshal_id``: it finds a request again by it, for an edit or a deletion,
and reports statuses under it), ``sourceid`` and ``sourcename`` (at most 26 characters),
``status`` (``new``, ``edit`` or ``delete``), ``username``, ``ra``, ``dec`` (degrees),
``exptime`` (-1: SEDM chooses), ``maxairmass``, ``max_fwhm``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ...core.interface import HostPoint
from ...core.timeutil import from_mjd

#: SEDM's limit on a source name.
NAME_LIMIT = 26
#: The advanced options' values when the request does not give them (SkyPortal's defaults).
ADVANCED_DEFAULTS = {"exposure_time": -1, "maximum_airmass": 2.8, "maximum_fwhm": 10}
#: Each fixed mode: its filters and whether it takes a spectrum.
MODES: dict[str, tuple[tuple[str, ...], bool]] = {
    "IFU": ((), True),
    "3-shot (gri)": (("g", "r", "i"), False),
    "4-shot (ugri)": (("u", "g", "r", "i"), False),
    "4-shot+IFU": (("u", "g", "r", "i"), True),
    "3-shot+IFU": (("g", "r", "i"), True),
}
MIX = "Mix 'n Match"
#: SkyPortal's ZTF bandpasses and SEDM's band names for them (SEDM takes the last letter).
ZTF_BANDS = {"ztfg": "g", "ztfr": "r", "ztfi": "i"}
JD_OF_MJD = 2_400_000.5


def observations(payload: Mapping[str, Any]) -> tuple[str, str]:
    """``(Filters, Followup)`` for the payload's mode: ``("g,r,i", "")``, ``("", "IFU")``, ...; for
    Mix 'n Match the filters chosen, in the order u, g, r, i."""
    mode = payload["observation_type"]
    if mode == MIX:
        chosen = set(payload["observation_choices"])
        filters, spectrum = tuple(band for band in ("u", "g", "r", "i") if band in chosen), "IFU" in chosen
    else:
        filters, spectrum = MODES[mode]
    return ",".join(filters), "IFU" if spectrum else ""


def prior_photometry(points: Iterable[HostPoint]) -> dict[str, dict[str, Any]]:
    """The newest detection in each ZTF band: ``{"g": {"jd", "mag", "obsdate"}, ...}`` (the JD,
    the AB magnitude, the UTC date), from the host's points that carry a band, a time and a
    magnitude (non-detections have none)."""
    newest: dict[str, HostPoint] = {}
    for point in points:
        band = ZTF_BANDS.get(point.filter or "")
        if band is None or point.mjd is None or point.mag is None or not (math.isfinite(point.mjd) and math.isfinite(point.mag)):
            continue
        if band not in newest or point.mjd > newest[band].mjd:  # type: ignore[operator]
            newest[band] = point
    return {
        band: {"jd": round(point.mjd + JD_OF_MJD, 6), "mag": round(point.mag, 3), "obsdate": from_mjd(point.mjd).date().isoformat()}
        for band, point in sorted(newest.items())
    }


def document(
    *,
    status: str,
    request_id: int | None,
    source: str,
    ra: float,
    dec: float,
    payload: Mapping[str, Any],
    username: str,
    email: str,
    program: str,
) -> dict[str, Any]:
    """The document for one action (``status``: ``new``, ``edit`` or ``delete``)."""
    filters, followup = observations(payload)
    name = source[:NAME_LIMIT]
    return {
        "Filters": filters,
        "Followup": followup,
        "email": email,
        "enddate": payload["end_date"],
        "startdate": payload["start_date"],
        "prior_photometry": dict(payload.get("prior_photometry") or {}),
        "priority": payload["priority"],
        "programname": program,
        "requestid": request_id,
        "sourceid": name,
        "sourcename": name,
        "status": status,
        "username": username,
        "ra": ra,
        "dec": dec,
        "exptime": payload.get("exposure_time", ADVANCED_DEFAULTS["exposure_time"]),
        "maxairmass": payload.get("maximum_airmass", ADVANCED_DEFAULTS["maximum_airmass"]),
        "max_fwhm": payload.get("maximum_fwhm", ADVANCED_DEFAULTS["maximum_fwhm"]),
    }
