"""The WINTER observatory's ToO API (``/too/winter``, ``/too/spring``, ``/too/summary``,
``/too/details``, ``/too/delete``) on loopback.

What it speaks (the observatory's client ``winterapi``: ``endpoints.py``, ``base_api.py``,
``messenger.py`` and its example notebooks, which show the answers; the request model of
``wintertoo``, ``models/too.py``):

- HTTP Basic authentication on every call, and ``program_name`` / ``program_api_key`` query
  parameters on the ToO calls; the answers are JSON ``{"msg": ..., "body": ...}``;
- ``POST /too/<camera>?program_name=&program_api_key=&submit_trigger=True|False`` with a JSON list
  of ToO requests checked as wintertoo's ``RaDecToO`` (no other keys; ``filters`` of the camera;
  ``target_name`` 1-30 characters; ``total_exposure_time`` / ``n_dither`` from 0.28 to 300 s;
  start not after end, end not in the past; ``max_airmass`` 1-5; SPRING never on the field grid):
  HTTP 200 with the schedule's rows in ``body`` and, when triggered, ``msg`` ``Request passed
  validation! Triggering was set to True. Schedule name is 'request_<program>_<UTC time>' .``;
  else ``... Triggering was set to False. Schedule was not saved to disk and has no assigned name.``
  A request the observatory refuses: HTTP 400 with the reason in ``msg`` (the client only checks
  for a status other than 200; the server's own refusal texts are not published);
- ``GET /too/summary``: the program's schedules; ``GET /too/details?schedule_name=``: one
  schedule's rows; ``DELETE /too/delete?schedule_name=``: ``Deleted <name>``, 404 for a schedule
  the program does not have;
- a wrong login or program key: HTTP 401 with a ``msg``.

``schedules`` holds the triggered schedules by name; :meth:`reject_next` refuses the next ToO with
a reason, :meth:`only_validate_next` answers the next trigger as a validation.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

from .server import LoopbackHandler, LoopbackServer

CAMERA_FILTERS = {"winter": {"dark", "Y", "J", "Hs"}, "spring": {"dark", "Y", "J", "Hs"}}
TOO_KEYS = {
    "ra_deg", "dec_deg", "use_field_grid", "filters", "target_priority", "target_name", "total_exposure_time", "n_repetitions",
    "n_dither", "dither_distance", "start_time_mjd", "end_time_mjd", "max_airmass", "use_best_detector", "camera",
}  # fmt: skip
REQUIRED = ("ra_deg", "dec_deg", "filters", "target_name")
MJD_UNIX_EPOCH = 40587.0
VALIDATED = "Request passed validation! Triggering was set to False. Schedule was not saved to disk and has no assigned name."


def _now_mjd() -> float:
    return time.time() / 86400.0 + MJD_UNIX_EPOCH


def too_problem(too: Any, camera: str) -> str | None:
    """Why wintertoo's model would refuse ``too`` for ``camera``, or None."""
    if not isinstance(too, dict):
        return "each ToO must be a JSON object"
    extra = sorted(set(too) - TOO_KEYS)
    if extra:
        return f"{extra[0]}: extra inputs are not permitted"
    missing = [key for key in REQUIRED if key not in too]
    if missing:
        return f"{missing[0]}: field required"
    number = (int, float)
    checks = [
        (isinstance(too["ra_deg"], number) and 0 <= too["ra_deg"] <= 360, "ra_deg must be between 0 and 360"),
        (isinstance(too["dec_deg"], number) and -90 <= too["dec_deg"] <= 90, "dec_deg must be between -90 and 90"),
        (
            isinstance(too["filters"], list) and too["filters"] and set(too["filters"]) <= CAMERA_FILTERS[camera],
            f"filters must be among {sorted(CAMERA_FILTERS[camera])}",
        ),
        (isinstance(too["target_name"], str) and 1 <= len(too["target_name"]) <= 30, "target_name must have 1 to 30 characters"),
        (not (camera == "spring" and too.get("use_field_grid")), "Spring ToO requests cannot use the field grid option."),
    ]
    for ok, reason in checks:
        if not ok:
            return reason
    dithers = too.get("n_dither", 1)
    total = too.get("total_exposure_time", 960.0)
    if not (isinstance(dithers, int) and dithers >= 1 and isinstance(total, number) and total >= 1):
        return "n_dither must be at least 1 and total_exposure_time at least 1"
    if not 0.28 <= total / dithers <= 300.0:
        return f"t_exp ({total}) is not between 0.28 and 300 s per dither for {dithers} dithers"
    start, end = too.get("start_time_mjd"), too.get("end_time_mjd")
    if isinstance(start, number) and isinstance(end, number):
        if start > end:
            return f"Start time ({start}) is after end time ({end})"
        if end < _now_mjd():
            return f"End date ({end}) is in the past"
    airmass = too.get("max_airmass", 2.0)
    if not (isinstance(airmass, number) and 1 <= airmass <= 5):
        return "max_airmass must be between 1 and 5"
    return None


class WinterToOEmulator(LoopbackServer):
    """The ToO API at ``url`` for ``users`` (name → password) and ``programs`` (name → API key)."""

    def __init__(self, users: dict[str, str], programs: dict[str, str]) -> None:
        super().__init__()
        self.users = dict(users)
        self.programs = dict(programs)
        self._lock = threading.Lock()
        self.schedules: dict[str, dict[str, Any]] = {}
        self.validations: list[list[dict[str, Any]]] = []
        self._rejections: list[str] = []
        self._validate_only = 0
        self._serial = 0

    def routes(self) -> list[Any]:
        return [
            (r"/too/(winter|spring)", _ToOHandler),
            (r"/too/summary", _SummaryHandler),
            (r"/too/details", _DetailsHandler),
            (r"/too/delete", _DeleteHandler),
        ]

    def reject_next(self, reason: str = "Target is not visible from Palomar in the requested window") -> None:
        with self._lock:
            self._rejections.append(reason)

    def only_validate_next(self) -> None:
        """Answer the next trigger as if ``submit_trigger`` were false (nothing is queued)."""
        with self._lock:
            self._validate_only += 1

    def _schedule(self, program: str, name: str, *, remove: bool = False) -> dict[str, Any] | None:
        """The program's schedule ``name`` (removed when ``remove``), or None."""
        with self._lock:
            schedule = self.schedules.get(name)
            if schedule is None or schedule["program"] != program:
                return None
            if remove:
                del self.schedules[name]
            return schedule

    def _accept(self, program: str, camera: str, toos: list[dict[str, Any]], trigger: bool) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._rejections:
                return 400, {"msg": self._rejections.pop(0), "body": None}
            rows = [
                {"targName": too["target_name"], "raDeg": too["ra_deg"], "decDeg": too["dec_deg"], "filter": band, "camera": camera,
                 "visitExpTime": too.get("total_exposure_time", 960.0), "ditherNumber": too.get("n_dither", 8), "progName": program,
                 "validStart": too.get("start_time_mjd"), "validStop": too.get("end_time_mjd"), "observed": False}
                for too in toos for band in too["filters"]
            ]  # fmt: skip
            if trigger and self._validate_only:
                self._validate_only -= 1
                trigger = False
            if not trigger:
                self.validations.append(toos)
                return 200, {"msg": VALIDATED, "body": rows}
            self._serial += 1
            stamp = datetime.now(UTC).strftime("%Y_%m_%d_%H_%M_%S")
            name = f"request_{program}_{stamp}" + (f"_{self._serial}" if self._serial > 1 else "")
            self.schedules[name] = {"program": program, "camera": camera, "rows": rows}
            return 200, {"msg": f"Request passed validation! Triggering was set to True. Schedule name is '{name}' .", "body": rows}


class _Handler(LoopbackHandler):
    @property
    def winter(self) -> WinterToOEmulator:
        return self.server  # type: ignore[return-value]

    def _refused(self) -> str | None:
        """The program of an authenticated call, or None after answering 401."""
        header = self.request.headers.get("Authorization", "")
        user, password = "", ""
        if header.startswith("Basic "):
            with contextlib.suppress(ValueError):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if not user or self.winter.users.get(user) != password:
            self.send_json({"msg": "Incorrect username or password", "body": None}, 401)
            return None
        program = self.get_query_argument("program_name", "")
        if not program or self.winter.programs.get(program) != self.get_query_argument("program_api_key", ""):
            self.send_json({"msg": "Invalid program name or program API key", "body": None}, 401)
            return None
        return program


class _ToOHandler(_Handler):
    def post(self, camera: str) -> None:
        program = self._refused()
        if program is None:
            return
        try:
            toos = json.loads(self.request.body or b"")
        except ValueError:
            self.send_json({"msg": "The body is not JSON", "body": None}, 400)
            return
        problem = "the body must be a non-empty list of ToO requests" if not (isinstance(toos, list) and toos) else None
        problem = problem or next((p for too in toos if (p := too_problem(too, camera))), None)
        if problem is not None:
            self.send_json({"msg": problem, "body": None}, 400)
            return
        trigger = self.get_query_argument("submit_trigger", "False") in ("True", "true", "1")
        status, answer = self.winter._accept(program, camera, toos, trigger)
        self.send_json(answer, status)


class _SummaryHandler(_Handler):
    def get(self) -> None:
        program = self._refused()
        if program is None:
            return
        with self.winter._lock:
            rows = [
                {"prog_name": program, "too_schedule_name": name, "target_names": sorted({r["targName"] for r in s["rows"]}), "n_entries": len(s["rows"])}
                for name, s in self.winter.schedules.items() if s["program"] == program
            ]  # fmt: skip
        self.send_json({"msg": f"Returning schedule summary for {program}", "body": rows})


class _DetailsHandler(_Handler):
    def get(self) -> None:
        program = self._refused()
        if program is None:
            return
        name = self.get_query_argument("schedule_name", "")
        schedule = self.winter._schedule(program, name)
        if schedule is None:
            self.send_json({"msg": f"No schedule named {name}", "body": None}, 404)
            return
        self.send_json({"msg": f"Returning details of schedule {name}", "body": schedule["rows"]})


class _DeleteHandler(_Handler):
    def delete(self) -> None:
        program = self._refused()
        if program is None:
            return
        name = self.get_query_argument("schedule_name", "")
        if self.winter._schedule(program, name, remove=True) is None:
            self.send_json({"msg": f"No schedule named {name}", "body": None}, 404)
            return
        self.send_json({"msg": f"Deleted {name}", "body": None})
