"""ATLAS forced photometry: queue a task, follow it, fetch and convert its result file.

Protocol (the service's API guide): ``POST <base>/queue/`` (form-encoded, ``Authorization: Token``)
answers 201 with the task, whose ``url`` we keep as the remote id; ``GET <task url>`` shows it
queued (no ``starttimestamp``), running, or finished (``finishtimestamp``) with ``result_url`` or,
terminally, with ``error_msg`` only. ``DELETE <task url>`` cancels a queued or running task and
deletes the result files of a finished one, so results are fetched before any delete.
``GET <base>/queue/`` lists the account's unarchived tasks (cursor pages of at most 100,
``ordering`` by ``id`` or ``timestamp``): ``find`` looks there for a task whose submission was
interrupted before its answer was recorded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import requests

from ...core.answers import expect, json_body, json_object, not_html
from ...core.egress import Origin
from ...core.errors import PayloadError, RemoteError, RemoteNotFound
from ...core.interface import Facility, FollowupRequest, Kind, common_config_keys
from ...core.outcome import Outcome, State
from ...core.timeutil import iso_date, parse_utc, to_mjd, utcnow
from ...core.transport import HTTPCall, Transport
from .results import ORIGIN_DIFFERENCE, ORIGIN_REDUCED, parse_results

DEFAULT_BASE_URL = "https://fallingstar-data.com/forcedphot"
DEFAULT_POLL_INTERVAL = 30.0
SERVICE = "ATLAS"
#: ATLAS takes a callback_url only over https and of at most 500 characters (its serializer).
CALLBACK_LIMIT = 500
#: ``find`` reads the task list in pages of this size (ATLAS's maximum), at most this many pages.
LIST_PAGE_SIZE = 100
LIST_PAGES = 10
#: A listed task counts as the interrupted submission's if ATLAS stamped it no earlier than this
#: many seconds before the attempt left (allowance for the two clocks).
CLOCK_ALLOWANCE = 120.0


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _queue_place(position: Any) -> str:
    """ATLAS counts ``queuepos`` from 0 (next to run); say it in words."""
    if not isinstance(position, int) or position < 0:
        return "waiting in the ATLAS queue"
    if position == 0:
        return "next in the ATLAS queue"
    return f"{position} task{'s' if position > 1 else ''} ahead in the ATLAS queue"


class ATLASFacility(Facility):
    """ATLAS forced photometry.

    Configuration (deployment-wide, per allocation ``base_url`` wins): ``base_url`` (default the
    public service) and ``poll_interval`` (seconds between polls of a queued or running task).
    """

    name: ClassVar[str] = "atlas"
    title: ClassVar[str] = "ATLAS forced photometry"
    kind: ClassVar[Kind] = Kind.FORCED_PHOTOMETRY
    skyportal_class: ClassVar[str] = "ATLASAPI"
    setup_url: ClassVar[str] = "https://fallingstar-data.com/forcedphot/apiguide/"
    example_remote_id: ClassVar[str] = f"{DEFAULT_BASE_URL}/queue/123/"
    config_keys: ClassVar[Mapping[str, str]] = common_config_keys("base_url", "poll_interval")
    base_url_key: ClassVar[str | None] = "base_url"
    date_fields: ClassVar[tuple[str, ...]] = ("start_date", "end_date")
    #: atlasserver's ``ForcedPhotRateThrottle`` (DRF, per user): 600 reads and 60 writes a minute.
    rate_limits: ClassVar[Mapping[str, tuple[int, float]]] = {"read": (600, 60.0), "write": (60, 60.0)}

    # -- validation ----------------------------------------------------------------------------

    def request_defaults(self) -> dict[str, Any]:
        today = utcnow()
        return {"start_date": iso_date(today - timedelta(days=30)), "end_date": iso_date(today)}

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        configured = self.config.get("base_url")
        if configured:
            self.refuse_unusable_url("ATLAS base_url", configured)

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        self.check_url(altdata, "base_url")

    def check_payload(self, payload: dict[str, Any]) -> None:
        mjd_min, mjd_max = self._mjd_range(payload)
        if mjd_max <= mjd_min:
            raise PayloadError.single("$.end_date", "must not be before start_date")

    @staticmethod
    def _mjd_range(payload: dict[str, Any]) -> tuple[float, float]:
        """MJD bounds: from 00:00 UTC of the start date to 24:00 UTC of the (inclusive) end date."""
        return to_mjd(payload["start_date"]), to_mjd(payload["end_date"]) + 1.0

    # -- the remote calls ----------------------------------------------------------------------

    def base_url(self, altdata: Mapping[str, Any]) -> str:
        return (altdata.get("base_url") or self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    @property
    def poll_interval(self) -> float:
        return float(self.config.get("poll_interval", DEFAULT_POLL_INTERVAL))

    def _headers(self, altdata: Mapping[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Token {altdata['api_token']}", "Accept": "application/json"}

    def _on_origin(self, url: Any, altdata: Mapping[str, Any], what: str) -> str:
        """A URL the service handed back (task, result file), if it lies on the allocation's own
        service origin; else a permanent ``RemoteError`` (it is never called: a facility must not
        be able to send our token, or us, elsewhere)."""
        if not isinstance(url, str) or not url:
            raise RemoteError(f"ATLAS named no {what}", permanent=True)
        if Origin.of(url) != Origin.of(self.base_url(altdata)):
            raise RemoteError(f"ATLAS named a {what} on {Origin.of(url).host or 'another host'}, off its own service: not followed", permanent=True)
        return url

    def _send(self, transport: Transport, method: str, url: str, request: FollowupRequest, what: str) -> requests.Response:
        """A call to a URL the service gave us (task, result), only on the service's own origin."""
        altdata = request.allocation.altdata
        return transport.request(method, self._on_origin(url, altdata, what), headers=self._headers(altdata))

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        payload, altdata = request.payload, request.allocation.altdata
        mjd_min, mjd_max = self._mjd_range(dict(payload))
        form: dict[str, Any] = {
            "ra": request.target.ra,
            "dec": request.target.dec,
            "mjd_min": round(mjd_min, 6),
            "mjd_max": round(mjd_max, 6),
            "use_reduced": bool(payload.get("use_reduced", False)),
            "send_email": False,
        }
        for key in ("radec_epoch_year", "propermotion_ra", "propermotion_dec"):
            if payload.get(key) is not None:
                form[key] = payload[key]
        if _callback_acceptable(request.callback_url):
            form["callback_url"] = request.callback_url  # a hint only: polling stays the source of truth
        return HTTPCall(
            "POST",
            f"{self.base_url(altdata)}/queue/",
            headers=self._headers(altdata),
            data={key: _form_value(value) for key, value in form.items()},
        )

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        call = self.prepare(request)
        response = transport.send(call)
        if "callback_url" in (call.data or {}) and _refuses_only_the_callback(response):
            # A 400 created no task, so sending again cannot queue it twice; the callback is a hint
            # and must never cost the request (ATLAS refuses one it cannot reach, e.g. private).
            response = transport.send(self.prepare(dataclasses.replace(request, callback_url=None)))
        response = expect(response, 201, service=SERVICE)
        try:
            task_url = self._on_origin(self._task_url(response), request.allocation.altdata, "task URL")
        except RemoteError as exc:
            detail = f"ATLAS accepted the task (HTTP 201), but it cannot be followed ({exc}); check the ATLAS queue before submitting again"
            return Outcome(State.FAILED, detail, maybe_sent=True)
        return Outcome(State.SUBMITTED, f"ATLAS task {task_url.rstrip('/').rsplit('/', 1)[-1]}", remote_id=task_url, poll_after=self.poll_interval)

    @staticmethod
    def _task_url(response: requests.Response) -> str | None:
        try:
            body = response.json()
        except ValueError:
            body = None
        url = body.get("url") if isinstance(body, dict) else None
        return url or response.headers.get("Location") or None

    def _fetch_task(self, request: FollowupRequest, transport: Transport) -> dict[str, Any] | None:
        """The task's JSON, or ``None`` when ATLAS no longer has it."""
        try:
            response = expect(self._send(transport, "GET", request.remote_id, request, "task URL"), 200, service=SERVICE)
        except RemoteNotFound:
            return None
        return json_object(response, service=SERVICE, what="the task")

    def _fetch_results(self, request: FollowupRequest, task: dict[str, Any], transport: Transport):
        """The task's photometry. A result file ATLAS no longer has (404) or one that cannot be
        read is a permanent ``RemoteError``; an HTML page in its place, a transient one."""
        try:
            response = expect(self._send(transport, "GET", task["result_url"], request, "result URL"), 200, service=SERVICE)
        except RemoteNotFound:
            detail = "ATLAS no longer has the task's result file (HTTP 404); it deletes the results of API tasks 31 days after they finish"
            raise RemoteError(detail, http_status=404, permanent=True) from None
        not_html(response, service=SERVICE, what="the result file")
        reduced = task.get("use_reduced") if isinstance(task.get("use_reduced"), bool) else bool(request.payload.get("use_reduced"))
        origin = ORIGIN_REDUCED if reduced else ORIGIN_DIFFERENCE
        return parse_results(response.text, snr_threshold=float(request.payload.get("snr_threshold", 3.0)), origin=origin)

    def get(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.PENDING, "not submitted to ATLAS yet")
        task = self._fetch_task(request, transport)
        remote_id = request.remote_id
        if task is None:
            return Outcome(State.CANCELED, "the task no longer exists at ATLAS (deleted, or purged after it finished)", remote_id=remote_id)
        if task.get("finishtimestamp"):
            if task.get("result_url"):
                photometry = self._fetch_results(request, task, transport)
                if not len(photometry):
                    return Outcome(State.NO_DATA, "; ".join(photometry.notes), remote_id=remote_id, photometry=photometry)
                detail = "; ".join((photometry.summary(), *photometry.notes))
                return Outcome(State.COMPLETED, detail, remote_id=remote_id, photometry=photometry)
            return Outcome(State.NO_DATA, task.get("error_msg") or "ATLAS finished the task without a result", remote_id=remote_id)
        if task.get("starttimestamp"):
            return Outcome(State.RUNNING, f"started at {task['starttimestamp']}", remote_id=remote_id, poll_after=self.poll_interval)
        where = _queue_place(task.get("queuepos"))
        return Outcome(State.QUEUED, where, remote_id=remote_id, poll_after=self.poll_interval)

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.DELETED, "nothing had been sent to ATLAS")
        task = self._fetch_task(request, transport)
        if task is None:
            return Outcome(State.DELETED, "the task was already gone at ATLAS", remote_id=request.remote_id)
        photometry, unreadable = None, None
        if task.get("finishtimestamp") and task.get("result_url"):
            try:
                photometry = self._fetch_results(request, task, transport)
            except RemoteError as exc:
                if not exc.permanent:
                    raise  # the results may still be fetched: no delete yet
                unreadable = str(exc)  # expired or unreadable for good: it must not block the delete
        with contextlib.suppress(RemoteNotFound):  # gone between the two calls: what was asked for
            response = expect(self._send(transport, "DELETE", request.remote_id, request, "task URL"), 200, 202, 204, service=SERVICE)
            not_html(response, service=SERVICE, what="its answer to the delete")
        if photometry is not None:
            detail = f"task deleted at ATLAS after its results were fetched: {photometry.summary()}"
        elif unreadable is not None:
            detail = f"finished task deleted at ATLAS; its results could not be fetched first: {unreadable}"
        elif task.get("finishtimestamp"):
            detail = "finished task deleted at ATLAS"
        else:
            detail = "task canceled at ATLAS"
        return Outcome(State.DELETED, detail, remote_id=request.remote_id, photometry=photometry)

    def find(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Look for the task of a submission interrupted before its answer was recorded: in the
        account's task list, a task at the same position, MJD window and image kind, stamped no
        earlier than ``CLOCK_ALLOWANCE`` before ``request.attempted_at``. Found: followed as
        submitted. Certainly absent (the whole list since then read): ``pending``, to be
        submitted again. A list too long to read to that point: ``failed``, saying so."""
        sent = self.prepare(dataclasses.replace(request, callback_url=None)).data or {}
        earliest = None if request.attempted_at is None else request.attempted_at - CLOCK_ALLOWANCE
        altdata = request.allocation.altdata
        url = f"{self.base_url(altdata)}/queue/?ordering=-id&pagesize={LIST_PAGE_SIZE}"
        found: list[dict[str, Any]] = []
        ids: list[Any] = []  # every listed id, in the order listed
        for _ in range(LIST_PAGES):
            response = expect(transport.request("GET", url, headers=self._headers(altdata)), 200, service=SERVICE)
            page = json_object(response, service=SERVICE, what="the task list")
            tasks = page.get("results")
            if not isinstance(tasks, list):
                raise RemoteError("ATLAS sent a task list without its results")
            found += [task for task in tasks if isinstance(task, dict) and _same_task(task, sent) and _stamped_since(task, earliest)]
            ids += [task.get("id") if isinstance(task, dict) else None for task in tasks]
            if not page.get("next") or _newest_first_and_past(ids, tasks, earliest):
                break
            url = self._on_origin(page.get("next"), altdata, "next page of the task list")
        else:
            if not found:
                detail = (
                    f"could not tell whether the interrupted submission reached ATLAS (more than {LIST_PAGES * LIST_PAGE_SIZE} tasks "
                    "listed since); check the ATLAS queue before submitting again"
                )
                return Outcome(State.FAILED, detail, maybe_sent=True)
        if not found:
            return Outcome(State.PENDING, "the interrupted submission never reached ATLAS (no such task in its list): submitting it again")
        task = min(found, key=lambda task: _distance(task, request.attempted_at))
        task_url = self._on_origin(task.get("url"), altdata, "task URL")
        detail = f"ATLAS task {task_url.rstrip('/').rsplit('/', 1)[-1]} (found in ATLAS's list after an interrupted submission)"
        return Outcome(State.SUBMITTED, detail, remote_id=task_url, poll_after=self.poll_interval)


def _callback_acceptable(url: str | None) -> bool:
    """Whether ATLAS's rules let ``url`` through: https, at most ``CALLBACK_LIMIT`` characters."""
    return bool(url) and url.lower().startswith("https://") and len(url) <= CALLBACK_LIMIT


def _refuses_only_the_callback(response: requests.Response) -> bool:
    """ATLAS answered 400 naming ``callback_url`` and nothing else (DRF's field errors)."""
    if response.status_code != 400:
        return False
    try:
        body = json_body(response, service=SERVICE)
    except RemoteError:
        return False
    return isinstance(body, dict) and set(body) == {"callback_url"}


def _close(value: Any, sent: Any, tolerance: float) -> bool:
    try:
        return abs(float(value) - float(sent)) <= tolerance
    except (TypeError, ValueError):
        return False


def _same_task(task: dict[str, Any], sent: Mapping[str, str]) -> bool:
    """``task`` asks what the form ``sent`` asked: position (to 1e-7 degree), MJD window (to
    1e-5 day, about a second) and reduced or difference images."""
    return (
        _close(task.get("ra"), sent.get("ra"), 1e-7)
        and _close(task.get("dec"), sent.get("dec"), 1e-7)
        and _close(task.get("mjd_min"), sent.get("mjd_min"), 1e-5)
        and _close(task.get("mjd_max"), sent.get("mjd_max"), 1e-5)
        and bool(task.get("use_reduced")) == (sent.get("use_reduced") == "true")
    )


def _stamp(task: dict[str, Any]) -> float | None:
    try:
        return parse_utc(task["timestamp"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _stamped_since(task: dict[str, Any], earliest: float | None) -> bool:
    stamp = _stamp(task)
    return earliest is None or (stamp is not None and stamp >= earliest)


def _distance(task: dict[str, Any], attempted_at: float | None) -> tuple[bool, float]:
    """How well ``task`` fits as the one the attempt made: stamped at or after the attempt first,
    the earliest of those; then the latest of those stamped (just) before it."""
    stamp = _stamp(task)
    if stamp is None or attempted_at is None:
        return (True, math.inf)
    return (stamp < attempted_at, abs(stamp - attempted_at))


def _newest_first_and_past(ids: list[Any], page: list[Any], earliest: float | None) -> bool:
    """Whether the list read so far proves no later page can hold the task: every ``id`` listed
    so far (two at least) came in strictly descending order, so the ``ordering`` asked for was
    honoured, and this page's last task is older than ``earliest``."""
    if earliest is None or len(ids) < 2 or not page or not isinstance(page[-1], dict):
        return False
    if not all(isinstance(i, int) for i in ids) or any(a <= b for a, b in itertools.pairwise(ids)):
        return False
    stamp = _stamp(page[-1])
    return stamp is not None and stamp < earliest
