"""A Gemini ToO servlet on loopback: one site's ``POST /too``, as Gemini documents it.

Source: "Gemini URL-based Submission of ToO Triggers" (``urltoo_readme.txt``, B. Miller and
S. Walker, 2021-08-23, in Gemini's ``gsselect`` repository) and its example client
``urltrigger.py``:

- the parameters come in the query string (the client's ``requests.post(url, params=cmd)``);
- the request is authenticated by ``email`` and ``password`` (a user key of an address in the
  program), then the template observation ``obsnum`` of ``prog``, which must be On Hold, is
  cloned and updated; the answer is the new observation's id as text (``GN-2026B-Q-101-7``);
- ``target``, ``ra`` or ``dec`` missing: HTTP 400 naming the missing parameter; an ``ra``,
  ``dec`` or guide probe that cannot be parsed: 400; any ``gs*`` parameter without all of
  ``gsra``, ``gsdec`` and ``gsprobe``: 400 ``guide star not completely specified``; ``gstarget``
  missing or empty then defaults to ``GS``;
- ``exptime`` must be an integer from 1 to 1200 s; ``ready`` ``true`` (the default) makes the copy
  Prepared/Ready (the trigger), anything else leaves it On Hold; ``windowDate`` (UTC
  ``YYYY-MM-DD``), ``windowTime`` (``HH:MM``), ``windowDuration`` (integer hours);
  ``elevationType`` ``none``, ``hourAngle`` or ``airmass`` with ``elevationMin``/``elevationMax``;
  a ``group`` that does not exist is made (case-sensitive match).

The document does not say how a refused user key, an unknown program or template, a template that
is not On Hold or a malformed window or elevation is answered. This emulator answers them with
HTTP 400 and a one-line reason of its own wording, except a refused key: HTTP 401. Those texts
are the emulator's, not Gemini's.

Fault knobs (``faults``, ``down()``) come from :class:`~facility_apis.testing.server.LoopbackServer`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .server import LoopbackHandler, LoopbackServer

PROBES = ("PWFS1", "PWFS2", "OIWFS", "AOWFS")
ELEVATION_TYPES = ("none", "hourAngle", "airmass")
_RA = re.compile(r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2}(?:\.[0-9]+)?)")
_DEC = re.compile(r"([+-]?)([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2}(?:\.[0-9]+)?)")


@dataclass
class Observation:
    """An observation of a program: a template (On Hold, no target) or a triggered copy."""

    number: int
    status: str = "On Hold"
    target: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    template: int | None = None


@dataclass
class Program:
    email: str
    key: str
    observations: dict[int, Observation] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)


def _parse_ra(text: str) -> float | None:
    match = _RA.fullmatch(text)
    if not match:
        return None
    hours, minutes, seconds = int(match[1]), int(match[2]), float(match[3])
    return (hours + minutes / 60 + seconds / 3600) * 15 if hours < 24 and minutes < 60 and seconds < 60 else None


def _parse_dec(text: str) -> float | None:
    match = _DEC.fullmatch(text)
    if not match:
        return None
    degrees, minutes, seconds = int(match[2]), int(match[3]), float(match[4])
    value = degrees + minutes / 60 + seconds / 3600
    return (-value if match[1] == "-" else value) if value <= 90 and minutes < 60 and seconds < 60 else None


class GeminiToOEmulator(LoopbackServer):
    """One site's ToO servlet. ``programs`` maps a program id to ``{"email", "key", "templates"}``
    (the On Hold template numbers). ``observations(program_id)`` shows what the triggers made."""

    def __init__(self, programs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._programs: dict[str, Program] = {}
        for program_id, spec in (programs or {}).items():
            self.add_program(program_id, spec["email"], spec["key"], spec.get("templates", ()))

    def routes(self) -> list[Any]:
        return [(r"/too", ToOHandler)]

    def add_program(self, program_id: str, email: str, key: str, templates: Iterable[int]) -> None:
        with self._lock:
            self._programs[program_id] = Program(email, key, {n: Observation(n) for n in templates})

    def observations(self, program_id: str) -> list[Observation]:
        """The program's observations, templates and copies, by number."""
        with self._lock:
            return [self._programs[program_id].observations[n] for n in sorted(self._programs[program_id].observations)]

    def triggered(self, program_id: str) -> list[Observation]:
        """The copies the triggers made, oldest first."""
        return [o for o in self.observations(program_id) if o.template is not None]

    def set_status(self, program_id: str, number: int, status: str) -> None:
        with self._lock:
            self._programs[program_id].observations[number].status = status

    def trigger(self, params: Mapping[str, str]) -> tuple[int, str]:
        """Apply one trigger: ``(HTTP status, text)``."""
        for name in ("target", "ra", "dec"):
            if not params.get(name):
                return 400, name
        if _parse_ra(params["ra"]) is None:
            return 400, f"could not parse ra {params['ra']}"
        if _parse_dec(params["dec"]) is None:
            return 400, f"could not parse dec {params['dec']}"
        guide = {name: params[name] for name in ("gstarget", "gsra", "gsdec", "gsmags", "gsprobe") if name in params}
        if guide and not all(params.get(name) for name in ("gsra", "gsdec", "gsprobe")):
            return 400, "guide star not completely specified"
        if guide and (params["gsprobe"] not in PROBES or _parse_ra(params["gsra"]) is None or _parse_dec(params["gsdec"]) is None):
            return 400, "could not parse the guide star"
        problem = self._timing_problem(params)
        if problem:
            return 400, problem
        with self._lock:
            program = self._programs.get(params.get("prog", ""))
            if program is None or params.get("email") != program.email or params.get("password") != program.key:
                return 401, "user key not valid for this program"
            try:
                template = program.observations.get(int(params.get("obsnum", "")))
            except ValueError:
                template = None
            if template is None or template.template is not None:
                return 400, f"no template observation {params.get('obsnum')} in {params['prog']}"
            if template.status != "On Hold":
                return 400, f"template observation {template.number} is not On Hold"
            number = max(program.observations) + 1
            stored = dict(params)
            stored.pop("password", None)
            if guide and not stored.get("gstarget"):
                stored["gstarget"] = "GS"  # as documented
            status = "Prepared/Ready" if params.get("ready", "true") == "true" else "On Hold"
            program.observations[number] = Observation(number, status, params["target"], stored, template.number)
            if params.get("group"):
                program.groups.add(params["group"])
        return 200, f"{params['prog']}-{number}"

    @staticmethod
    def _timing_problem(params: Mapping[str, str]) -> str | None:
        if "exptime" in params and not (params["exptime"].isdigit() and 1 <= int(params["exptime"]) <= 1200):
            return "exptime must be an integer from 1 to 1200"
        if "windowDate" in params:
            try:
                datetime.strptime(f"{params['windowDate']} {params.get('windowTime', '')}", "%Y-%m-%d %H:%M")
            except ValueError:
                return "could not parse the timing window"
            if not params.get("windowDuration", "").isdigit():
                return "windowDuration must be integer hours"
        kind = params.get("elevationType", "none")
        if kind not in ELEVATION_TYPES:
            return f"unknown elevationType {kind}"
        if kind != "none":
            try:
                low, high = float(params["elevationMin"]), float(params["elevationMax"])
            except (KeyError, ValueError):
                return "elevationMin and elevationMax must be numbers"
            if low >= high:
                return "elevationMin must be below elevationMax"
        return None


class ToOHandler(LoopbackHandler):
    def post(self) -> None:
        params = {name: self.get_query_argument(name) for name in self.request.query_arguments}
        status, text = self.server.trigger(params)  # type: ignore[attr-defined]
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(text)
