"""Swift's services on loopback: the Swift ToO API and the UKSSDC's XRT products ("user objects").

:class:`SwiftTOOEmulator` speaks the Swift ToO API as ``swifttools`` 4 (``swift_too`` 2) uses it
(``TOOAPIBaseclass`` and the ``SwiftTOOFormSchema``/``SwiftTOOPostSchema`` rules):

- ``POST /api/v2/login`` JSON ``{"username", "password"}`` (the shared secret): 200 with a
  ``session`` cookie (HttpOnly, Secure off on loopback); 401 ``{"detail": ...}`` otherwise.
- ``POST /api/v2/swift/too`` form-encoded, authenticated by the session cookie (401 ``{"detail":
  "Not authenticated"}`` without one, or when the form's ``username`` is not the session's).
  The form is checked as ``SwiftTOOPostSchema`` checks it: required ``target_name``,
  ``target_type``, ``ra`` in [0, 360], ``dec`` in [-90, 90], ``obs_type`` one of Spectroscopy,
  Light Curve, Position, Timing, ``urgency`` 0-4, ``science_just``, ``immediate_objective``,
  ``exp_time_just``, ``exposure``, ``num_of_visits``; a brightness (``xrt_countrate``,
  ``bat_countrate``, ``other_brightness`` or ``opt_mag`` with ``opt_filt``); ``monitoring_freq``
  "<number> <day|week|month|orbit|minute|second>[s]" (required with ``num_of_visits``);
  ``uvot_just`` with any ``uvot_mode`` but ``0x9999``; ``uvot_mode`` a known mode (the server's
  check of the UVOT mode table). Field errors answer 422 in FastAPI's shape
  (``{"detail": [{"loc": ["body", field], "msg", "type"}]}``). ``validate_only=true`` answers
  ``{"status": "Validated", "warnings": [...]}`` and stores nothing; otherwise the ToO is stored and
  answered ``{"status": "Accepted", "too_id": <n>, "jobnumber": <n>}``.
- ``GET /api/v2/swift/too?too_id=<n>`` (what ``TOORequests`` reads): ``{"entries": [{"too_id",
  "decision", "done", "calendar": {"entries": [{"begin", "end", "duration", "asflown"}]}}]}``.
  With ``decide_after`` seconds, a stored ToO is approved then (or as :meth:`decide` says), gets
  one calendar window per visit, observed one every ``visit_seconds`` (``asflown`` equal to the
  exposure), and is done when all are; without it, the ToO awaits a decision.
- ``GET /api/v2/swift/obsquery?ra&dec&radius&begin&end``: the as-flown timeline entries (one per
  snapshot) of the observations added with :meth:`SwiftTOOEmulator.add_observation` pointed within
  ``radius`` degrees whose snapshots begin in [begin, end]: ``{"entries": [...], "status":
  "Accepted"}``; 422 without a constraint.

Knobs: ``reject_next(errors)`` (the next ToO answered 400 with a status object listing ``errors``,
as the API does for a ToO it refuses after reading it), ``answer_next(status, body)`` (the next ToO
post is stored and answered with that status and raw body), and the :class:`LoopbackServer`
faults. ``toos`` holds the stored ToOs (their forms), ``logins`` the user names that logged in.

:class:`XRTProductsEmulator` speaks the UKSSDC's XRT products API as ``swifttools.ukssdc.xrt_prods``
1.12 uses it (every call a JSON POST carrying ``api_name: "xrt_prods"`` and ``api_version``;
every answer ``{"OK": 1, ...}`` or ``{"OK": 0, "ERROR", "listErr"}``):

- ``/user_objects/run_userobject.php``: the job (``UserID`` registered with :meth:`register`,
  ``name``, ``RA``, ``Dec``, ``poserr`` when centroiding, at least one product flag among ``lc``,
  ``spec``, ``dopsf``, ``doenh``, ``doxastrom``): ``{"OK": 1, "JobID", "URL", "jobPars"}``;
- ``/user_objects/checkProductStatus.php``: per product ``{"statusCode", "statusText",
  "progress"}``, moving with the clock from 1 (requested) to 2 (queued) to 3 (running) to 4
  (done) every ``step_seconds``; a product made to fail with :meth:`fail_product` ends at -3;
- ``/user_objects/canceljob.php``: every unfinished product to -4 (cancelled);
- ``GET /user_objects/tprods/USERPROD_<job>/<stem>.tar.gz``: the built product (404 before).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import tornado.web

from ..core.coordinates import separation_deg
from .server import LoopbackHandler, LoopbackServer

API = "/api/v2"
UVOT_MODES = frozenset({
    "0x9999", "0x30ed", "0x223f", "0x0270", "0x209a", "0x308f", "0x2019", "0x018c", "0x011e", "0x015a", "0x01aa",
    "0x2016", "0x2005", "0x122f", "0x1230", "0x0ff3", "0x01ab",
})  # fmt: skip
OBS_TYPES = frozenset({"Spectroscopy", "Light Curve", "Position", "Timing"})
CADENCE = re.compile(r"\d+(\.\d+)?\s+(day?|week?|month?|orbit?|minute?|second?)(s?)")
REQUIRED = ("target_name", "target_type", "ra", "dec", "obs_type", "science_just", "immediate_objective", "exp_time_just", "exposure", "username")


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _too_errors(form: dict[str, str]) -> list[tuple[str, str]]:
    """The field errors the ToO API answers for ``form``: ``(field, message)``."""
    errors = [(key, "Field required") for key in REQUIRED if not form.get(key)]
    ra, dec = _number(form.get("ra")), _number(form.get("dec"))
    if "ra" in form and (ra is None or not 0 <= ra <= 360):
        errors.append(("ra", "Input should be a number from 0 to 360"))
    if "dec" in form and (dec is None or not -90 <= dec <= 90):
        errors.append(("dec", "Input should be a number from -90 to 90"))
    if form.get("obs_type") and form["obs_type"] not in OBS_TYPES:
        errors.append(("obs_type", "Input should be 'Spectroscopy', 'Light Curve', 'Position' or 'Timing'"))
    if form.get("urgency", "3") not in {"0", "1", "2", "3", "4"}:
        errors.append(("urgency", "Input should be 0, 1, 2, 3 or 4"))
    for key in ("exposure", "num_of_visits", "exp_time_per_visit"):
        if key in form and (_number(form[key]) is None or _number(form[key]) <= 0):  # type: ignore[operator]
            errors.append((key, "Input should be a positive number"))
    if form.get("uvot_mode", "0x9999").lower() not in UVOT_MODES:
        errors.append(("uvot_mode", "Unknown UVOT mode"))
    if errors:
        return errors
    rules = []
    brightness = any(form.get(key) for key in ("xrt_countrate", "bat_countrate", "other_brightness"))
    if not brightness and not (form.get("opt_mag") and form.get("opt_filt")):
        rules.append("Must specify at least one brightness value. If specifying optical brightness, ensure filter is set.")
    if "0x9999" not in form.get("uvot_mode", "0x9999") and not form.get("uvot_just"):
        rules.append("Must specify UVOT justification if UVOT mode is not filter of the day (0x9999).")
    if form.get("num_of_visits") and not form.get("monitoring_freq"):
        rules.append("Must specify monitoring frequency if number of visits is specified.")
    if form.get("monitoring_freq") and not CADENCE.match(form["monitoring_freq"].strip()):
        rules.append("Monitoring frequency in incorrect format. Must be a number followed by a time unit (day, week, month, orbit, minute, second).")
    return [("body", f"Value error, {rule}") for rule in rules]


@dataclass
class Snapshot:
    """One snapshot of an observation in the as-flown timeline (times are naive UTC)."""

    obs_id: str
    ra: float
    dec: float
    begin: datetime
    settle: datetime
    end: datetime
    target_name: str


class SwiftTOOEmulator(LoopbackServer):
    """The Swift ToO API (see the module docstring). ``accounts``: user name -> shared secret."""

    def __init__(self, accounts: dict[str, str] | None = None, *, decide_after: float | None = None, visit_seconds: float = 1.0):
        super().__init__()
        self.accounts = dict(accounts or {"swift_observer": "example-shared-secret-0123"})
        self.decide_after = decide_after
        self.visit_seconds = visit_seconds
        self.toos: list[dict[str, str]] = []
        self._stored: dict[int, tuple[dict[str, str], float]] = {}
        self._decisions: dict[int, str] = {}
        self.logins: list[str] = []
        self.snapshots: list[Snapshot] = []
        self._sessions: dict[str, str] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(20001)
        self._next: list[tuple[str, Any]] = []

    @property
    def api_url(self) -> str:
        return f"{self.url}{API}"

    def routes(self) -> list[Any]:
        return [(f"{API}/login", _LoginHandler), (f"{API}/swift/too", _TOOHandler), (f"{API}/swift/obsquery", _ObsQueryHandler)]

    def reject_next(self, errors: list[str]) -> None:
        with self._lock:
            self._next.append(("reject", list(errors)))

    def answer_next(self, status: int, body: str) -> None:
        with self._lock:
            self._next.append(("answer", (status, body)))

    def add_observation(
        self, obs_id: str, ra: float, dec: float, begin: datetime, *, snapshots: int = 2, exposure: float = 900.0, target_name: str = "target"
    ) -> None:
        """An observation of ``snapshots`` snapshots, one every 96 minutes from ``begin`` (UTC)."""
        begin = begin.astimezone(UTC).replace(tzinfo=None) if begin.tzinfo else begin
        for n in range(snapshots):
            start = begin.timestamp() + n * 5760.0
            self.snapshots.append(
                Snapshot(obs_id, ra, dec, datetime.fromtimestamp(start, UTC).replace(tzinfo=None), datetime.fromtimestamp(start + 60, UTC).replace(tzinfo=None),
                         datetime.fromtimestamp(start + 60 + exposure, UTC).replace(tzinfo=None), target_name)
            )  # fmt: skip

    def open_session(self, username: str) -> str:
        token = secrets.token_hex(16)
        with self._lock:
            self._sessions[token] = username
            self.logins.append(username)
        return token

    def session_user(self, token: str | None) -> str | None:
        with self._lock:
            return self._sessions.get(token or "")

    def take_next(self) -> tuple[str, Any] | None:
        with self._lock:
            return self._next.pop(0) if self._next else None

    def store(self, form: dict[str, str]) -> int:
        with self._lock:
            self.toos.append(form)
            too_id = next(self._ids)
            self._stored[too_id] = (form, time.time())
            return too_id

    def decide(self, too_id: int, decision: str) -> None:
        """The Swift team's decision on ToO ``too_id`` (``Approved``, ``Rejected``), from now."""
        with self._lock:
            self._decisions[too_id] = decision

    def entry(self, too_id: int, now: float | None = None) -> dict[str, Any] | None:
        """ToO ``too_id`` as the ToO list shows it now."""
        with self._lock:
            stored, decision = self._stored.get(too_id), self._decisions.get(too_id)
        if stored is None:
            return None
        form, submitted = stored
        elapsed = (time.time() if now is None else now) - submitted
        if decision is None and self.decide_after is not None and elapsed >= self.decide_after:
            decision = "Approved"
        entry: dict[str, Any] = {"too_id": too_id, "decision": decision, "done": 0, "target_name": form["target_name"]}
        if decision == "Approved":
            visits, exposure = int(form.get("num_of_visits", "1")), float(form.get("exp_time_per_visit", form.get("exposure", "0")))
            since = elapsed - (self.decide_after or 0.0)
            observed = min(visits, max(0, int(since / self.visit_seconds))) if self.visit_seconds > 0 else visits
            windows = [{"begin": None, "end": None, "duration": exposure, "asflown": exposure if n < observed else 0.0} for n in range(visits)]
            entry.update(calendar={"entries": windows}, done=int(observed == visits))
        return entry


class _SwiftHandler(LoopbackHandler):
    @property
    def swift(self) -> SwiftTOOEmulator:
        return self.server  # type: ignore[return-value]


class _LoginHandler(_SwiftHandler):
    def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return self.send_json({"detail": "Invalid JSON"}, 422)
        username, password = (body.get("username"), body.get("password")) if isinstance(body, dict) else (None, None)
        if not isinstance(username, str) or self.swift.accounts.get(username) != password:
            return self.send_json({"detail": "Invalid username or password"}, 401)
        self.set_cookie("session", self.swift.open_session(username), httponly=True)
        self.send_json({"status": "Accepted", "username": username})


class _TOOHandler(_SwiftHandler):
    def get(self) -> None:
        try:
            too_id = int(self.get_argument("too_id"))
        except (tornado.web.MissingArgumentError, ValueError):
            return self.send_json({"detail": [{"loc": ["query", "too_id"], "msg": "Input should be a valid integer", "type": "int_parsing"}]}, 422)
        entry = self.swift.entry(too_id)
        self.send_json({"entries": [entry] if entry else [], "status": "Accepted"})

    def post(self) -> None:
        user = self.swift.session_user(self.get_cookie("session"))
        form = {key: values[-1] for key, values in parse_qs(self.request.body.decode(), keep_blank_values=True).items()}
        if user is None or form.get("username") != user:
            return self.send_json({"detail": "Not authenticated"}, 401)
        errors = _too_errors(form)
        if errors:
            return self.send_json({"detail": [{"loc": ["body", f], "msg": m, "type": "value_error"} for f, m in errors]}, 422)
        warnings = [] if form.get("uvot_mode", "0x9999") == "0x9999" else ["UVOT mode will be reviewed by the UVOT team."]
        if form.get("validate_only") == "true":
            return self.send_json({"status": "Validated", "warnings": warnings})
        planned = self.swift.take_next()
        if planned is not None and planned[0] == "reject":
            return self.send_json({"status": {"status": "Rejected", "errors": planned[1], "warnings": []}}, 400)
        too_id = self.swift.store(form)
        if planned is not None:
            status, body = planned[1]
            self.set_status(status)
            return self.finish(body)
        self.send_json({"status": "Accepted", "too_id": too_id, "jobnumber": too_id + 500000, "warnings": warnings})


class _ObsQueryHandler(_SwiftHandler):
    def get(self) -> None:
        args = {key: self.get_argument(key, None) for key in ("ra", "dec", "radius", "begin", "end")}
        if all(value is None for value in args.values()):
            return self.send_json({"detail": "At least one of 'begin', 'end', 'length', 'ra', 'dec', 'target_id', or 'obs_id' must be provided"}, 422)
        try:
            ra, dec, radius = (float(args[k]) if args[k] is not None else None for k in ("ra", "dec", "radius"))
            begin = datetime.fromisoformat(args["begin"]) if args["begin"] else None
            end = datetime.fromisoformat(args["end"]) if args["end"] else None
        except ValueError as exc:
            return self.send_json({"detail": [{"loc": ["query"], "msg": str(exc), "type": "value_error"}]}, 422)
        radius = radius if radius is not None else 12 / 60
        found = [
            s for s in self.swift.snapshots
            if (ra is None or dec is None or separation_deg(ra, dec, s.ra, s.dec) <= radius)
            and (begin is None or s.begin >= begin) and (end is None or s.begin <= end)
        ]  # fmt: skip
        entries = [
            {"obs_id": s.obs_id, "begin": s.begin.isoformat(), "settle": s.settle.isoformat(), "end": s.end.isoformat(),
             "ra": s.ra, "dec": s.dec, "target_name": s.target_name, "obstype": "AT"}
            for s in found
        ]  # fmt: skip
        self.send_json({"entries": entries, "status": "Accepted", "ra": ra, "dec": dec, "radius": radius})


# -- the UKSSDC's XRT products ----------------------------------------------------------------------

PRODUCT_FLAGS = {"lc": "lc", "spec": "spec", "psf": "dopsf", "enh": "doenh", "xastrom": "doxastrom"}
STATUS_TEXT = {1: "Requested", 2: "Queued", 3: "Running", 4: "Complete", -3: "Failed: the product could not be built", -4: "Cancelled"}
USER_OBJECTS = "/user_objects"


@dataclass
class XRTJob:
    """A job: its owner, parameters, products (short names) and when it was submitted."""

    job_id: int
    user: str
    pars: dict[str, Any]
    products: tuple[str, ...]
    submitted: float
    failing: frozenset[str] = frozenset()  # products that end at -3 instead of 4
    ended: dict[str, int] = field(default_factory=dict)  # product -> -4, set by a cancel


class XRTProductsEmulator(LoopbackServer):
    """The UKSSDC XRT products API (see the module docstring)."""

    def __init__(self, users: set[str] | None = None, *, step_seconds: float = 1.0):
        super().__init__()
        self.users = set(users or {"observer@example.org"})
        self.step_seconds = step_seconds
        self.jobs: dict[int, XRTJob] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(4201)
        self._fail: set[str] = set()

    @property
    def base_url(self) -> str:
        return f"{self.url}{USER_OBJECTS}"

    def routes(self) -> list[Any]:
        return [
            (f"{USER_OBJECTS}/run_userobject.php", _RunHandler),
            (f"{USER_OBJECTS}/checkProductStatus.php", _StatusHandler),
            (f"{USER_OBJECTS}/canceljob.php", _CancelHandler),
            (rf"{USER_OBJECTS}/tprods/USERPROD_(\d+)/(\w+)\.tar\.gz", _ProductHandler),
        ]

    def register(self, email: str) -> None:
        self.users.add(email)

    def fail_product(self, short: str) -> None:
        """Jobs submitted from now on cannot build product ``short`` (it ends at -3)."""
        self._fail.add(short)

    def code(self, job: XRTJob, short: str, now: float | None = None) -> int:
        if short in job.ended:
            return job.ended[short]
        step = int(((time.time() if now is None else now) - job.submitted) / self.step_seconds) if self.step_seconds > 0 else 3
        if step >= 3 and short in job.failing:
            return -3
        return min(1 + step, 4)

    def create(self, user: str, pars: dict[str, Any], products: tuple[str, ...]) -> XRTJob:
        with self._lock:
            job = XRTJob(next(self._ids), user, pars, products, time.time(), frozenset(self._fail))
            self.jobs[job.job_id] = job
            return job


class _XRTHandler(LoopbackHandler):
    @property
    def xrt(self) -> XRTProductsEmulator:
        return self.server  # type: ignore[return-value]

    def body(self) -> dict[str, Any] | None:
        try:
            body = json.loads(self.request.body or b"")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def refuse(self, error: str, errors: list[dict[str, Any]] | None = None) -> None:
        self.send_json({"OK": 0, "ERROR": error, **({"listErr": errors} if errors else {}), "APIVersion": 1.12})

    def job(self, body: dict[str, Any]) -> XRTJob | None:
        try:
            job = self.xrt.jobs.get(int(body.get("JobID")))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return job if job is not None and job.user == body.get("UserID") else None


class _RunHandler(_XRTHandler):
    def post(self) -> None:
        body = self.body()
        if body is None or body.get("api_name") != "xrt_prods":
            return self.refuse("The request was not a valid xrt_prods API call.")
        if body.get("UserID") not in self.xrt.users:
            return self.refuse("Your UserID is not registered. Please register at https://www.swift.ac.uk/user_objects/register.php")
        missing = [key for key in ("name", "RA", "Dec") if body.get(key) in (None, "")]
        if body.get("cent") in (1, "1") and body.get("poserr") in (None, ""):
            missing.append("poserr")
        products = tuple(short for short, flag in PRODUCT_FLAGS.items() if body.get(flag) in (1, "1"))
        if not products:
            missing.append("a product (lc, spec, dopsf, doenh or doxastrom)")
        if missing:
            return self.refuse("Your request could not be processed.", [{"label": "Missing parameters:", "list": missing}])
        job = self.xrt.create(body["UserID"], body, products)
        url = f"{self.xrt.base_url}/tprods/USERPROD_{job.job_id}"
        self.send_json({"OK": 1, "JobID": job.job_id, "URL": url, "jobPars": {k: v for k, v in body.items() if k != "api_version"}, "APIVersion": 1.12})


class _StatusHandler(_XRTHandler):
    def post(self) -> None:
        body = self.body()
        job = self.job(body) if body is not None else None
        if job is None:
            return self.refuse("No job found with that JobID for your UserID.")
        answer: dict[str, Any] = {"OK": 1, "APIVersion": 1.12}
        for short in str(body.get("what", "")).split(","):  # type: ignore[union-attr]
            if short in job.products:
                code = self.xrt.code(job, short)
                answer[short] = {"statusCode": code, "statusText": STATUS_TEXT[code], "progress": {"GotProgress": 0}}
        self.send_json(answer)


class _CancelHandler(_XRTHandler):
    def post(self) -> None:
        body = self.body()
        job = self.job(body) if body is not None else None
        if job is None:
            return self.refuse("No job found with that JobID for your UserID.")
        status, codes = {}, {}
        for short in str(body.get("what", "")).split(","):  # type: ignore[union-attr]
            if short in job.products:
                if 0 < self.xrt.code(job, short) < 4:
                    job.ended[short] = -4
                codes[short] = self.xrt.code(job, short)
                status[short] = STATUS_TEXT[codes[short]]
        self.send_json({"OK": 1, "status": status, "statusCodes": codes, "APIVersion": 1.12})


class _ProductHandler(_XRTHandler):
    def get(self, job_id: str, short: str) -> None:
        job = self.xrt.jobs.get(int(job_id))
        if job is None or short not in job.products or self.xrt.code(job, short) != 4:
            self.set_status(404)
            return self.finish("Not Found")
        self.set_header("Content-Type", "application/gzip")
        self.finish(f"{short} of job {job_id}".encode())
