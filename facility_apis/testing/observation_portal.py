"""LCO's Observation Portal and science archive on loopback.

Speaks the portal's REST protocol (``observatorycontrolsystem/observation-portal``:
``requestgroups/viewsets.py``, ``serializers.py``, ``filters.py``, ``common/state_changes.py``)
under ``<url>/api/`` and the archive's frame listing (``observatorycontrolsystem/science-archive``:
``frames/filters.py``, ``pagination.py``) under ``<url>/archive/``:

- ``POST api/requestgroups/`` (201, the stored group; 400 with the serializers' nested errors,
  see ``observation_portal_rules.py``), ``GET api/requestgroups/`` (``proposal``, ``name``
  contains, ``state``, ``created_after``; ``limit``/``offset`` pages), ``GET
  api/requestgroups/<id>/``, ``POST api/requestgroups/<id>/cancel/`` (PENDING only, else 400
  ``{"errors": [...]}``), ``POST api/requestgroups/validate/`` (200
  ``{"request_durations", "errors"}``), ``GET api/requests/<id>/observations/``;
- ``GET archive/frames/`` (``request_id``, ``reduction_level``, ``exclude_calibrations``,
  ``limit``/``offset``) and the download links it lists (``archive/download/...``).

Authentication is Django REST framework's token scheme (``Authorization: Token <key>``): an
unknown key is refused (401), no key reads only public data and may not write. A user sees the
request groups and frames of its proposals.

Request groups move with the clock: ``schedule_time`` seconds after submission an observation is
scheduled (PENDING), ``wait_time`` later it starts (IN_PROGRESS), ``run_time`` later it completes
(the request and group COMPLETED); the reduced (and raw) frames show in the archive
``reduce_time`` after that. ``next_fate`` makes the next group's first observation NOT_ATTEMPTED
(it is then scheduled again and completes), FAILED with the group FAILURE_LIMIT_REACHED, or lets
its window expire (WINDOW_EXPIRED) when it would have been scheduled. ``lose_answer_next`` stores
the next group and answers 504, as a proxy does when the portal is slow; ``throttle_next``
answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlencode

import tornado.web

from ..core.timeutil import parse_utc
from .observation_portal_rules import INSTRUMENTS, Instrument, RequestGroupCheck, request_duration
from .server import LoopbackHandler, LoopbackServer
from .throttle import throttled_detail

FATES = frozenset({"COMPLETED", "NOT_ATTEMPTED", "FAILURE_LIMIT_REACHED", "WINDOW_EXPIRED"})
SCIENCE_TYPES = frozenset({"EXPOSE", "SPECTRUM", "STANDARD"})
GATEWAY_TIMEOUT_PAGE = "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>"
#: Short instrument codes used in frame names.
_CAMERA_CODES = {
    "1M0-SCICAM-SINISTRO": "fa16", "2M0-SCICAM-SPECTRAL": "fs01", "2M0-SCICAM-MUSCAT": "ep05", "2M0-FLOYDS-SCICAM": "en06",
    "SOAR_GHTS_REDCAM_IMAGER": "ghtr", "SOAR_GHTS_BLUECAM_IMAGER": "ghtb", "SOAR_GHTS_REDCAM": "ghtr", "SOAR_GHTS_BLUECAM": "ghtb",
    "SOAR_TRIPLESPEC": "tspc",
}  # fmt: skip


def iso(unix_time: float) -> str:
    """A UTC time as the portal renders it, e.g. ``2026-11-21T19:00:00.123456Z``."""
    return datetime.fromtimestamp(unix_time, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Attempt:
    """One scheduled observation of a request: scheduled at ``scheduled``, starting at ``start``,
    ending at ``end`` with ``result`` (COMPLETED, NOT_ATTEMPTED or FAILED)."""

    id: int
    scheduled: float
    start: float
    end: float
    result: str


@dataclass
class _Request:
    id: int
    body: dict[str, Any]
    site: str
    attempts: list[_Attempt] = field(default_factory=list)
    #: When the request ended with each terminal state it can reach on its own.
    completed_at: float | None = None
    failed_at: float | None = None
    expires_at: float | None = None


@dataclass
class _Group:
    id: int
    body: dict[str, Any]
    submitter: str
    created: float
    requests: list[_Request]
    canceled_at: float | None = None


@dataclass
class _Frame:
    id: int
    request_id: int
    proposal: str
    filename: str
    level: int
    configuration_type: str
    filter: str | None
    instrument: str
    site: str
    observed: float
    exposure_time: float
    target: str


class ObservationPortalEmulator(LoopbackServer):
    """The Observation Portal at ``base_url`` and the science archive at ``archive_url``.

    ``tokens`` and ``archive_tokens`` map API tokens to user names, ``proposals`` user names to
    the proposals they belong to; ``instruments`` is the instrument list (default
    ``observation_portal_rules.INSTRUMENTS``); ``semesters`` (``(start, end)`` UTC datetimes), when
    given, are the only periods a window may fall in. Times are in seconds (see the module
    docstring).
    """

    def __init__(
        self,
        *,
        tokens: Mapping[str, str] | None = None,
        archive_tokens: Mapping[str, str] | None = None,
        proposals: Mapping[str, set[str] | list[str]] | None = None,
        instruments: Mapping[str, Instrument] | None = None,
        schedule_time: float = 0.0,
        wait_time: float = 0.0,
        run_time: float = 0.0,
        reduce_time: float = 0.0,
        semesters: tuple[tuple[datetime, datetime], ...] = (),
    ) -> None:
        super().__init__()
        self.tokens = dict(tokens if tokens is not None else {"portal-token": "observer"})
        self.archive_tokens = dict(archive_tokens if archive_tokens is not None else {"archive-token": "observer"})
        self.proposals = {user: set(ids) for user, ids in (proposals if proposals is not None else {"observer": {"LCO2026B-001"}}).items()}
        self.instruments = dict(instruments if instruments is not None else INSTRUMENTS)
        self.schedule_time, self.wait_time, self.run_time, self.reduce_time = schedule_time, wait_time, run_time, reduce_time
        self.semesters = tuple(semesters)
        self._lock = threading.Lock()
        self._groups: dict[int, _Group] = {}
        self._group_ids = itertools.count(1001)
        self._request_ids = itertools.count(2001)
        self._observation_ids = itertools.count(3001)
        self._fates: list[str] = []
        self._lost_answers = 0
        self._throttles: list[int] = []

    @property
    def base_url(self) -> str:
        return self.url

    @property
    def archive_url(self) -> str:
        return f"{self.url}/archive"

    def routes(self) -> list[Any]:
        return [
            (r"/api/requestgroups/", RequestGroupsHandler),
            (r"/api/requestgroups/validate/", ValidateHandler),
            (r"/api/requestgroups/(\d+)/", RequestGroupHandler),
            (r"/api/requestgroups/(\d+)/cancel/", CancelHandler),
            (r"/api/requests/(\d+)/observations/", ObservationsHandler),
            (r"/archive/frames/", FramesHandler),
            (r"/archive/download/(\d+)/([^/]+)", DownloadHandler),
        ]

    # -- knobs -----------------------------------------------------------------------------

    def next_fate(self, fate: str, count: int = 1) -> None:
        """How the next ``count`` request groups end (see the module docstring)."""
        if fate not in FATES:
            raise ValueError(f"fate must be one of {sorted(FATES)}")
        with self._lock:
            self._fates.extend([fate] * count)

    def lose_answer_next(self, count: int = 1) -> None:
        """Store the next ``count`` request groups but answer 504 Gateway Time-out."""
        with self._lock:
            self._lost_answers += count

    def throttle_next(self, count: int = 1, wait: int = 1) -> None:
        """Answer the next ``count`` authenticated API calls with 429 and ``Retry-After: wait``."""
        with self._lock:
            self._throttles.extend([wait] * count)

    # -- what tests inspect ----------------------------------------------------------------

    def request_groups(self) -> list[dict[str, Any]]:
        """Every stored request group as the portal shows it now, oldest first."""
        now = time.time()
        with self._lock:
            return [self._show(group, now) for group in self._groups.values()]

    # -- the model -------------------------------------------------------------------------

    def user_of(self, header: str | None, archive: bool = False) -> str | None:
        """The user an ``Authorization`` header names (``None``: anonymous); ``PermissionError``
        with DRF's message when it names none."""
        scheme, _, key = (header or "").strip().partition(" ")
        if scheme.lower() != "token":
            return None
        key = key.strip()
        if not key:
            raise PermissionError("Invalid token header. No credentials provided.")
        user = (self.archive_tokens if archive else self.tokens).get(key)
        if user is None:
            raise PermissionError("Invalid token.")
        return user

    def take_throttle(self) -> int | None:
        with self._lock:
            return self._throttles.pop(0) if self._throttles else None

    def check(self, body: Any, user: str) -> RequestGroupCheck:
        proposals = self.proposals.get(user, set())
        return RequestGroupCheck(body, proposals=proposals, instruments=self.instruments, now=datetime.now(UTC), semesters=self.semesters).run()

    def create(self, body: dict[str, Any], check: RequestGroupCheck, user: str) -> tuple[dict[str, Any], bool]:
        """Store a checked group; returns it as shown, and whether its answer is to be lost."""
        now = time.time()
        with self._lock:
            fate = self._fates.pop(0) if self._fates else "COMPLETED"
            lost = self._lost_answers > 0
            self._lost_answers -= int(lost)
            requests = [self._plan(request, sites[0], now, fate) for request, sites in zip(body["requests"], check.sites, strict=True)]
            group = _Group(next(self._group_ids), json.loads(json.dumps(body)), user, now, requests)
            self._groups[group.id] = group
            return self._show(group, now), lost

    def _plan(self, body: dict[str, Any], site: str, now: float, fate: str) -> _Request:
        request = _Request(next(self._request_ids), body, site)
        window_end = max(parse_utc(w["end"]).timestamp() for w in body["windows"])
        scheduled = now + self.schedule_time
        if fate == "WINDOW_EXPIRED":
            request.expires_at = scheduled
            return request
        request.expires_at = window_end
        results = {"COMPLETED": ["COMPLETED"], "NOT_ATTEMPTED": ["NOT_ATTEMPTED", "COMPLETED"], "FAILURE_LIMIT_REACHED": ["FAILED"]}[fate]
        for result in results:
            start = scheduled + self.wait_time
            attempt = _Attempt(next(self._observation_ids), scheduled, start, start + self.run_time, result)
            request.attempts.append(attempt)
            scheduled = attempt.end + self.schedule_time  # the scheduler's next run places it again
        last = request.attempts[-1]
        if last.result == "COMPLETED":
            request.completed_at = last.end
        else:
            request.failed_at = last.end
        return request

    @staticmethod
    def _request_state(request: _Request, group: _Group, now: float) -> tuple[str, float | None]:
        """The request's state at ``now`` and when it took it (``None`` while PENDING)."""
        events = [
            (request.completed_at, "COMPLETED"),
            (request.failed_at, "FAILURE_LIMIT_REACHED"),
            (request.expires_at, "WINDOW_EXPIRED"),
            (group.canceled_at, "CANCELED"),
        ]
        reached = sorted((at, state) for at, state in events if at is not None and at <= now)
        return (reached[0][1], reached[0][0]) if reached else ("PENDING", None)

    def _group_state(self, group: _Group, now: float) -> tuple[str, float]:
        states = [self._request_state(request, group, now) for request in group.requests]
        for state in ("WINDOW_EXPIRED", "PENDING", "COMPLETED", "FAILURE_LIMIT_REACHED", "CANCELED"):  # SINGLE's priority
            if any(s == state for s, _ in states):
                return state, max([group.created, *(at for _, at in states if at is not None)])
        return "PENDING", group.created

    def observations(self, request: _Request, group: _Group, now: float) -> list[dict[str, Any]]:
        """The request's observations at ``now``, as ``GET requests/<id>/observations/`` lists them."""
        shown = []
        stopped = group.canceled_at if group.canceled_at is not None and group.canceled_at <= now else None
        for attempt in request.attempts:
            if attempt.scheduled > now or (stopped is not None and attempt.scheduled > stopped):
                continue
            moment = min(now, stopped) if stopped is not None else now
            if moment < attempt.start:
                state = "PENDING" if stopped is None else "CANCELED"
            elif moment < attempt.end:
                state = "PENDING" if attempt.result == "NOT_ATTEMPTED" else "IN_PROGRESS"
            else:
                state = attempt.result
            telescope = f"{request.body['location']['telescope_class']}a"
            shown.append(
                {
                    "id": attempt.id, "request": request.id, "site": request.site, "enclosure": "doma", "telescope": telescope,
                    "start": iso(attempt.start), "end": iso(attempt.end), "priority": 10, "state": state,
                }
            )  # fmt: skip
        return shown

    def _show(self, group: _Group, now: float) -> dict[str, Any]:
        state, modified = self._group_state(group, now)
        body = group.body
        requests = []
        for request in group.requests:
            request_state, at = self._request_state(request, group, now)
            configurations = [{"id": i + 1, "priority": i + 1, **c} for i, c in enumerate(request.body["configurations"])]
            requests.append(
                {
                    "id": request.id, "state": request_state, "location": request.body["location"], "windows": request.body["windows"],
                    "configurations": configurations, "duration": request_duration(request.body),
                    "acceptability_threshold": 90.0, "configuration_repeats": 1, "optimization_type": "TIME",
                    "observation_note": "", "extra_params": {}, "modified": iso(at or group.created), "created": iso(group.created),
                }
            )  # fmt: skip
        return {
            "id": group.id, "submitter": group.submitter, "proposal": body["proposal"], "name": body["name"],
            "observation_type": body["observation_type"], "operator": body["operator"], "ipp_value": body["ipp_value"],
            "created": iso(group.created), "modified": iso(modified), "state": state, "requests": requests,
        }  # fmt: skip

    def visible(self, user: str | None) -> list[_Group]:
        """The groups a user sees (none for anonymous: no public proposals here)."""
        allowed = self.proposals.get(user or "", set())
        return [group for group in self._groups.values() if group.body["proposal"] in allowed]

    def group_of(self, group_id: int, user: str | None) -> _Group | None:
        group = self._groups.get(group_id)
        return group if group is not None and group in self.visible(user) else None

    def cancel(self, group: _Group) -> tuple[int, dict[str, Any]]:
        """The portal's cancel: PENDING → CANCELED; CANCELED again is no change; else 400."""
        now = time.time()
        with self._lock:
            state, _ = self._group_state(group, now)
            if state not in ("PENDING", "CANCELED"):
                return 400, {"errors": [f"Cannot transition from request state {state} to CANCELED for {group.id}"]}
            if state == "PENDING":
                group.canceled_at = now
            return 200, self._show(group, now)

    # -- the archive -------------------------------------------------------------------------

    def frames(self, user: str | None, now: float) -> list[_Frame]:
        """The frames a user of the archive sees now, newest first (the archive's order)."""
        allowed = self.proposals.get(user or "", set())
        found: list[_Frame] = []
        with self._lock:
            for group in self._groups.values():
                for request in group.requests:
                    done = request.completed_at
                    if done is None or done + self.reduce_time > now or self._request_state(request, group, now)[0] != "COMPLETED":
                        continue
                    found += self._frames_of(group, request)
        return sorted((f for f in found if f.proposal in allowed), key=lambda f: (-f.observed, f.id))

    def _frames_of(self, group: _Group, request: _Request) -> list[_Frame]:
        """A raw (level 0) and a reduced (level 91) frame per exposure and channel, named as LCO
        names them (``<site><telescope>-<camera>-<day>-<number>-e<level>.fits.fz``)."""
        frames: list[_Frame] = []
        moment = request.attempts[-1].start
        day = datetime.fromtimestamp(moment, UTC).strftime("%Y%m%d")
        prefix = f"{request.site}{request.body['location']['telescope_class']}01"
        number = 0
        for configuration in request.body["configurations"]:
            code = configuration["instrument_type"]
            instrument = self.instruments[code]
            elements_of = [config.get("optical_elements") or {} for config in configuration["instrument_configs"]]
            for config, elements in zip(configuration["instrument_configs"], elements_of, strict=True):
                channels = instrument.channels or (elements.get("filter") or elements.get("slit"),)
                for _ in range(int(config["exposure_count"])):
                    number += 1
                    for channel in channels:
                        suffix = f"-{channel}" if instrument.channels else ""
                        for level in (0, 91):
                            name = f"{prefix}-{_CAMERA_CODES.get(code, 'xx01')}-{day}-{number:04d}-e{level:02d}{suffix}.fits.fz"
                            frames.append(
                                _Frame(
                                    group.id * 10**6 + len(frames), request.id, group.body["proposal"], name, level, configuration["type"],
                                    channel, code, request.site, moment, float(config["exposure_time"]), configuration["target"]["name"],
                                )
                            )  # fmt: skip
                    moment += float(config["exposure_time"])
        return frames

    def signature(self, frame_id: int, filename: str) -> str:
        return hashlib.sha256(f"{frame_id}/{filename}/{self.port}".encode()).hexdigest()[:32]

    def frame_json(self, frame: _Frame) -> dict[str, Any]:
        url = f"{self.archive_url}/download/{frame.id}/{frame.filename}?" + urlencode(
            {"X-Amz-Expires": 172800, "X-Amz-Signature": self.signature(frame.id, frame.filename)}
        )
        return {
            "id": frame.id, "basename": frame.filename.removesuffix(".fits.fz"), "filename": frame.filename, "url": url,
            "reduction_level": frame.level, "observation_date": iso(frame.observed), "observation_day": iso(frame.observed)[:10],
            "proposal_id": frame.proposal, "instrument_id": _CAMERA_CODES.get(frame.instrument, "xx01"), "target_name": frame.target,
            "site_id": frame.site, "telescope_id": "", "exposure_time": frame.exposure_time, "primary_optical_element": frame.filter or "",
            "configuration_type": frame.configuration_type, "request_id": frame.request_id, "observation_id": None,
            "public_date": iso(frame.observed + 365 * 86400),
        }  # fmt: skip


# -- handlers ---------------------------------------------------------------------------------


class _APIHandler(LoopbackHandler):
    """Token authentication (DRF's), then the throttle knob."""

    archive = False

    @property
    def portal(self) -> ObservationPortalEmulator:
        return self.server  # type: ignore[return-value]

    async def prepare(self) -> None:
        await super().prepare()
        try:
            self.user = self.portal.user_of(self.request.headers.get("Authorization"), archive=self.archive)
        except PermissionError as exc:
            self.refuse(401, {"detail": str(exc)}, {"WWW-Authenticate": "Token"})
        if self.user is None and self.request.method not in ("GET", "HEAD", "OPTIONS"):
            self.refuse(401, {"detail": "Authentication credentials were not provided."}, {"WWW-Authenticate": "Token"})
        wait = self.portal.take_throttle() if self.user is not None else None
        if wait is not None:
            self.refuse(429, {"detail": throttled_detail(wait)}, {"Retry-After": str(wait)})

    def refuse(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> NoReturn:
        self.send_json(payload, status, headers)
        raise tornado.web.Finish()

    def body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError as exc:
            self.refuse(400, {"detail": f"JSON parse error - {exc}"})

    def page(self, items: list[Any], default_limit: int, max_limit: int | None = None) -> dict[str, Any]:
        """DRF's limit/offset page of ``items``, with absolute ``next``/``previous`` links."""
        limit = max(1, int(self.get_argument("limit", str(default_limit)) or default_limit))
        limit = min(limit, max_limit) if max_limit else limit
        offset = max(0, int(self.get_argument("offset", "0") or 0))
        base = f"{self.portal.url}{self.request.path}"
        arguments = {key: self.get_argument(key) for key in self.request.arguments if key not in ("limit", "offset")}

        def link(at: int) -> str:
            return f"{base}?{urlencode({**arguments, 'limit': limit, 'offset': at})}"

        return {
            "count": len(items),
            "next": link(offset + limit) if offset + limit < len(items) else None,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
            "results": items[offset : offset + limit],
        }

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.send_json({"detail": "Server Error (500)"}, status_code)


class RequestGroupsHandler(_APIHandler):
    def get(self) -> None:
        now = time.time()
        with self.portal._lock:
            groups = [self.portal._show(group, now) for group in sorted(self.portal.visible(self.user), key=lambda g: -g.id)]
        name, proposal = self.get_argument("name", None), self.get_argument("proposal", None)
        states, after = self.get_arguments("state"), self.get_argument("created_after", None)
        if name:
            groups = [g for g in groups if name.lower() in g["name"].lower()]
        if proposal:
            groups = [g for g in groups if g["proposal"] == proposal]
        if states:
            groups = [g for g in groups if g["state"] in states]
        if after:
            groups = [g for g in groups if parse_utc(g["created"]) >= parse_utc(after)]
        self.send_json(self.page(groups, 10))

    def post(self) -> None:
        body = self.body()
        check = self.portal.check(body, self.user)
        if check.errors:
            self.refuse(400, check.errors)
        group, lost = self.portal.create(body, check, self.user)
        if lost:
            self.set_status(504)
            self.set_header("Content-Type", "text/html")
            return self.finish(GATEWAY_TIMEOUT_PAGE)
        self.send_json(group, 201)


class ValidateHandler(_APIHandler):
    def post(self) -> None:
        check = self.portal.check(self.body(), self.user)
        self.send_json({"request_durations": check.durations, "errors": check.errors})


class RequestGroupHandler(_APIHandler):
    def get(self, group_id: str) -> None:
        group = self.portal.group_of(int(group_id), self.user)
        if group is None:
            self.refuse(404, {"detail": "Not found."})
        with self.portal._lock:
            self.send_json(self.portal._show(group, time.time()))


class CancelHandler(_APIHandler):
    def post(self, group_id: str) -> None:
        group = self.portal.group_of(int(group_id), self.user)
        if group is None:
            self.refuse(404, {"detail": "Not found."})
        status, payload = self.portal.cancel(group)
        self.send_json(payload, status)


class ObservationsHandler(_APIHandler):
    def get(self, request_id: str) -> None:
        number = int(request_id)
        now = time.time()
        for group in self.portal.visible(self.user):
            for request in group.requests:
                if request.id == number:
                    with self.portal._lock:
                        shown = self.portal.observations(request, group, now)
                    if self.get_argument("exclude_canceled", ""):
                        shown = [o for o in shown if o["state"] != "CANCELED"]
                    return self.send_json(shown)
        self.refuse(404, {"detail": "Not found."})


class FramesHandler(_APIHandler):
    archive = True

    def get(self) -> None:
        frames = self.portal.frames(self.user, time.time())
        request_id, level = self.get_argument("request_id", None), self.get_argument("reduction_level", None)
        if request_id is not None:
            frames = [f for f in frames if str(f.request_id) == request_id]
        if level is not None:
            frames = [f for f in frames if str(f.level) == level]
        if self.get_argument("exclude_calibrations", "").lower() == "true":
            frames = [f for f in frames if f.configuration_type in SCIENCE_TYPES]
        page = self.page([self.portal.frame_json(f) for f in frames], 100, 1000)
        self.send_json({**page, "count_estimated": False})


class DownloadHandler(LoopbackHandler):
    """A frame's download link, as the archive's signed storage URLs work: the signature is the key."""

    def get(self, frame_id: str, filename: str) -> None:
        portal: ObservationPortalEmulator = self.server  # type: ignore[assignment]
        if self.get_argument("X-Amz-Signature", "") != portal.signature(int(frame_id), filename):
            self.set_status(403)
            return self.finish("<Error><Code>SignatureDoesNotMatch</Code></Error>")
        self.set_header("Content-Type", "application/fits")
        self.finish(b"SIMPLE  =                    T" + b" " * 50)
