"""One ToO trigger: the servlet's parameters, and what its answer means.

Protocol: Gemini's "URL-based Submission of ToO Triggers" (``urltoo_readme.txt``, B. Miller and
S. Walker, 2021-08-23, in Gemini's ``gsselect`` repository). ``POST <server>/too`` with the
parameters in the query string: ``prog``, ``email``, ``password`` (the user key), ``obsnum`` (the
template observation, which must be On Hold), ``target``, ``ra`` (``HH:MM:SS.SS``, J2000), ``dec``
(``DD:MM:SS.SSS``), optional ``noteTitle``, ``note``, ``exptime`` (an integer 1-1200 s; the
template's when absent), ``group`` (created when it does not exist), ``gstarget``/``gsra``/
``gsdec``/``gsmags``/``gsprobe`` (all of ``gsra``, ``gsdec``, ``gsprobe`` once any is given; the
Observing Tool picks a guide star when none is given), ``ready`` (``true``: Prepared/Ready, which
is the trigger; otherwise the copy stays On Hold), ``windowDate`` (UTC ``YYYY-MM-DD``),
``windowTime`` (UTC ``HH:MM``), ``windowDuration`` (integer hours), ``elevationType`` (``none``,
``hourAngle``, ``airmass``), ``elevationMin``, ``elevationMax``. The server clones the template
and answers with the new observation's id as text (``urltrigger.py`` reads ``response.text``);
a missing target, ra or dec, an unparseable coordinate or probe, or an incomplete guide star is
HTTP 400 with the reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from ...core.answers import body_line, expect
from ...core.coordinates import dec_dms, hms
from ...core.errors import RemoteError

SERVICE = "Gemini"
#: The guide probes the servlet takes.
PROBES = ("PWFS1", "PWFS2", "OIWFS", "AOWFS")


@dataclass(frozen=True)
class GuideStar:
    """A guide star for the trigger: ``name``, position in degrees (ICRS/J2000), the probe."""

    name: str
    ra: float
    dec: float
    probe: str


def ra_text(ra: float) -> str:
    """Right ascension as the servlet reads it: ``HH:MM:SS.SS``."""
    return hms(ra, 2)


def dec_text(dec: float) -> str:
    """Declination as the servlet reads it, ``DD:MM:SS.SSS``: a sign only when negative (its
    example, ``4:31:03.23``, has none)."""
    return dec_dms(dec, 3).text().removeprefix("+")


def window(start: datetime, end: datetime) -> dict[str, str]:
    """The timing window: start date and time (UTC, to the minute) and its length in whole hours,
    rounded up so the window never ends before ``end``."""
    hours = max(1, math.ceil((end - start).total_seconds() / 3600.0 - 1e-9))
    return {"windowDate": start.strftime("%Y-%m-%d"), "windowTime": start.strftime("%H:%M"), "windowDuration": str(hours)}


def _number(value: float) -> str:
    return f"{float(value):g}"


def parameters(
    *,
    program_id: str,
    email: str,
    key: str,
    obsnum: int,
    target: str,
    ra: float,
    dec: float,
    payload: dict[str, Any],
    start: datetime,
    end: datetime,
    guide_star: GuideStar | None,
) -> dict[str, str]:
    """The query parameters of one trigger, in the servlet's names."""
    params = {
        "prog": program_id,
        "email": email,
        "password": key,
        "obsnum": str(obsnum),
        "target": target,
        "ra": ra_text(ra),
        "dec": dec_text(dec),
    }
    if payload.get("note_title"):
        params["noteTitle"] = payload["note_title"]
    if payload.get("note"):
        params["note"] = payload["note"]
    if payload.get("l_exptime"):
        params["exptime"] = str(int(payload["l_exptime"]))
    params["group"] = payload.get("group_name") or target
    if guide_star is not None:
        params |= {"gstarget": guide_star.name, "gsra": ra_text(guide_star.ra), "gsdec": dec_text(guide_star.dec), "gsprobe": guide_star.probe}
    params["ready"] = "true" if payload.get("ready", True) else "false"
    params |= window(start, end)
    params |= {"elevationType": "airmass", "elevationMin": _number(payload["l_elmin"]), "elevationMax": _number(payload["l_elmax"])}
    return params


class UnknownAnswer(RemoteError):
    """The servlet answered 200 without a new observation id: one may have been made."""


def observation_id(response: requests.Response, program_id: str) -> str:
    """The new observation's id from an answer (``GN-2026B-Q-101-23``: the program id, a dash, a
    number). Raises as ``expect`` does for an error status (``Rejected`` with the servlet's reason
    for a 400, ``CredentialsRefused`` for 401/403, ``RemoteError`` for 5xx), and
    ``UnknownAnswer`` for a 200 that names no observation of the program."""
    expect(response, 200, service=SERVICE)
    text = (response.text or "").strip()
    if re.fullmatch(rf"{re.escape(program_id)}-[0-9]+", text):
        return text
    what = "an empty body" if not text else body_line(response)
    raise UnknownAnswer(f"{SERVICE} answered HTTP 200 without a new observation id ({what})", http_status=200)
