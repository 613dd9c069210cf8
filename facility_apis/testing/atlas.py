"""An ATLAS forced photometry server on loopback, speaking the service's REST protocol.

Under ``/forcedphot``: ``api-token-auth/``, ``queue/`` (list in cursor pages, create),
``queue/<id>/`` (detail, delete) and the result files ``static/results/job<id>.txt``. Tasks move with the clock: queued
for ``queue_time`` seconds after they are submitted, running for ``run_time`` seconds, then
finished with a result file, or with an ``error_msg`` only (see :meth:`ATLASEmulator.fail_next`;
a result without data rows also gives "No data returned", like the real server).

Throttling is DRF's: a sliding one-minute window per user (per client address when anonymous),
``write_rate`` for writes and ``read_rate`` for GET/HEAD/OPTIONS; result files are not throttled.
``reads_allowed``/``reads_throttled`` count the reads the throttle let through or refused (429).

Two scheduling knobs for benchmarks (the protocol is unchanged): ``finish_after_reads=N`` makes a
task finish at its Nth status read (``GET queue/<id>/``) instead of ``run_time`` after it started,
so a client that polls without pausing meets the same task lives as one that paces itself; and
``throttle_period`` shortens the throttle window (``read_rate`` reads per ``throttle_period``
seconds; ``Retry-After`` stays in whole seconds, as DRF sends it).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, NoReturn
from urllib.parse import urlencode

import tornado.httpclient
import tornado.ioloop
import tornado.web
from tornado.httputil import responses

from .atlas_fields import Invalid, is_loopback_url, task_fields
from .atlas_results import result_text
from .server import LoopbackHandler, LoopbackServer
from .throttle import RateThrottle, throttled_detail

MJD_UNIX_EPOCH = 40587.0
FIRST_ATLAS_MJD = 57230.0  # the start of ATLAS survey data (2015)
NOT_PROVIDED = "Authentication credentials were not provided."
INVALID_TOKEN = "Invalid token."
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PAGE_SIZE = 6
MAX_PAGE_SIZE = 100
CALLBACK_TIMEOUT = 5.0


def mjd_of(unix_time: float) -> float:
    return unix_time / 86400.0 + MJD_UNIX_EPOCH


def iso(unix_time: float) -> str:
    """A UTC time as DRF renders it, e.g. ``2026-11-21T19:00:00.123456Z``."""
    return datetime.fromtimestamp(unix_time, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _has_rows(text: str) -> bool:
    return any(line.strip() and not line.startswith("#") for line in text.splitlines())


class AuthenticationFailed(Exception):
    """The ``Authorization`` header names credentials the server does not know."""


@dataclass
class _Task:
    id: int
    username: str
    user_id: int
    submitted: float
    queue_time: float
    run_time: float
    fields: dict[str, Any]
    queued_on_submit: int
    error_msg: str | None
    result: str | None
    archived: bool = False
    #: Status reads so far, and when the ``finish_after_reads``-th of them finished the task.
    reads: int = 0
    finished_by_reads: float | None = None

    @property
    def started_at(self) -> float:
        started = self.submitted + self.queue_time
        return started if self.finished_by_reads is None else min(started, self.finished_by_reads)

    @property
    def finished_at(self) -> float:
        return self.started_at + self.run_time if self.finished_by_reads is None else self.finished_by_reads

    @property
    def waittime(self) -> float:
        return self.queue_time if self.finished_by_reads is None else self.started_at - self.submitted

    @property
    def runtime(self) -> float:
        return self.run_time if self.finished_by_reads is None else self.finished_at - self.started_at


class ATLASEmulator(LoopbackServer):
    """The ATLAS forced photometry service at ``base_url`` (``url + "/forcedphot"``).

    ``tokens`` maps API tokens to user names and ``users`` user names to passwords (for
    ``api-token-auth/`` and Basic auth). ``rows`` and ``pa_deg`` shape the generated result files;
    ``results_for(task) -> str | None`` may supply a task's result text instead (``task`` is a
    dict of its ``id``, ``username`` and request fields; it is called on the server thread).

    Scheduling knobs (benchmarks): ``finish_after_reads=N`` finishes a task at its Nth
    ``GET queue/<id>/`` (it still starts ``queue_time`` after submission, or at that read if
    later; ``run_time`` is then unused); ``throttle_period`` is the throttle window in seconds.
    """

    def __init__(
        self,
        *,
        tokens: dict[str, str] | None = None,
        users: dict[str, str] | None = None,
        queue_time: float = 0.0,
        run_time: float = 0.0,
        rows: int = 20,
        pa_deg: bool = True,
        max_queued: int = 500,
        write_rate: int = 60,
        read_rate: int = 600,
        results_for: Callable[[dict[str, Any]], str | None] | None = None,
        finish_after_reads: int | None = None,
        throttle_period: float = 60.0,
    ) -> None:
        super().__init__()
        self.tokens = dict(tokens if tokens is not None else {"test-token": "tester"})
        self.users = dict(users if users is not None else {"tester": "tester-password"})
        self.queue_time, self.run_time = queue_time, run_time
        self.rows, self.pa_deg, self.max_queued = rows, pa_deg, max_queued
        self.results_for = results_for
        if finish_after_reads is not None and finish_after_reads < 1:
            raise ValueError("finish_after_reads must be at least 1")
        self.finish_after_reads = finish_after_reads
        self._write_throttle = RateThrottle(write_rate, throttle_period)
        self._read_throttle = RateThrottle(read_rate, throttle_period)
        #: Reads (GET/HEAD/OPTIONS on the API) the throttle let through, and refused with 429.
        self.reads_allowed = 0
        self.reads_throttled = 0
        self._lock = threading.Lock()
        self._tasks: dict[int, _Task] = {}
        self._task_ids = itertools.count(1)
        self._user_ids: dict[str, int] = {}
        self._forced_waits: list[int] = []
        self._failures: list[str] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/forcedphot"

    def throttle_next(self, count: int = 1, wait: int = 1) -> None:
        """Answer the next ``count`` queue requests (after authentication) with 429 and
        ``Retry-After: wait``, whatever the rates."""
        with self._lock:
            self._forced_waits.extend([wait] * count)

    def fail_next(self, count: int = 1, error_msg: str = "No data returned") -> None:
        """Make the next ``count`` submitted tasks finish with ``error_msg`` and no result."""
        with self._lock:
            self._failures.extend([error_msg] * count)

    def routes(self) -> list[Any]:
        return [
            (r"/forcedphot/api-token-auth/", TokenAuthHandler),
            (r"/forcedphot/queue/", QueueHandler),
            (r"/forcedphot/queue/(\d+)/", TaskHandler),
            (r"/forcedphot/static/results/job(\d+)\.txt", ResultHandler),
        ]

    # -- authentication and throttling ------------------------------------------------------

    def token_for(self, username: str, password: str) -> str | None:
        """The API token of a user (created on first use), or ``None`` for wrong credentials."""
        if username not in self.users or self.users[username] != password:
            return None
        with self._lock:
            token = next((t for t, name in self.tokens.items() if name == username), None)
            if token is None:
                token = secrets.token_hex(20)
                self.tokens[token] = username
            return token

    def authenticate(self, header: str | None) -> str | None:
        """The user named by an ``Authorization`` header, ``None`` when it names nobody."""
        scheme, _, credentials = (header or "").strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "token":
            if not credentials:
                raise AuthenticationFailed("Invalid token header. No credentials provided.")
            if " " in credentials:
                raise AuthenticationFailed("Invalid token header. Token string should not contain spaces.")
            if credentials not in self.tokens:
                raise AuthenticationFailed(INVALID_TOKEN)
            return self.tokens[credentials]
        if scheme.lower() == "basic":
            try:
                username, _, password = base64.b64decode(credentials).decode().partition(":")
            except ValueError:
                raise AuthenticationFailed("Invalid basic header. Credentials not correctly base64 encoded.") from None
            if self.users.get(username) != password:
                raise AuthenticationFailed("Invalid username/password.")
            return username
        return None

    def throttle_wait(self, key: str, method: str) -> int | None:
        """Seconds a throttled request must wait, or ``None`` when it may proceed."""
        reading = method in READ_METHODS
        with self._lock:
            wait = self._forced_waits.pop(0) if self._forced_waits else None
        if wait is None:
            wait = (self._read_throttle if reading else self._write_throttle).hit(key)
        if reading:
            with self._lock:
                if wait is None:
                    self.reads_allowed += 1
                else:
                    self.reads_throttled += 1
        return wait

    # -- tasks ------------------------------------------------------------------------------

    def create_task(self, username: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Queue a task; ``Invalid`` when the user already has ``max_queued`` unstarted tasks."""
        now = time.time()
        with self._lock:
            queued = sum(1 for task in self._tasks.values() if task.username == username and now < task.started_at)
            if queued + 1 > self.max_queued:
                message = f"ERROR: You have too many queued tasks ({queued} queued + 1 requested > {self.max_queued})."
                raise Invalid({"non_field_errors": [message]})
            task_id = next(self._task_ids)
            user_id = self._user_ids.setdefault(username, len(self._user_ids) + 1)
            error_msg = self._failures.pop(0) if self._failures else None
            result = None if error_msg else self._result_for(task_id, username, fields, now)
            if result is not None and not _has_rows(result):
                error_msg, result = "No data returned", None
            run_time = math.inf if self.finish_after_reads is not None else self.run_time
            task = _Task(task_id, username, user_id, now, self.queue_time, run_time, fields, queued, error_msg, result)
            self._tasks[task_id] = task
            return self._describe(task, now)

    def _result_for(self, task_id: int, username: str, fields: dict[str, Any], now: float) -> str:
        custom = self.results_for({"id": task_id, "username": username, **fields}) if self.results_for else None
        if custom is not None:
            return custom
        low = fields["mjd_min"] if fields["mjd_min"] is not None else FIRST_ATLAS_MJD
        high = fields["mjd_max"] if fields["mjd_max"] is not None else mjd_of(now)
        rows = self.rows if high > low else 0
        return result_text(task_id, fields["ra"], fields["dec"], low, high, rows=rows, pa_deg=self.pa_deg)

    def task(self, task_id: int) -> dict[str, Any] | None:
        """A task's JSON as ``GET queue/<id>/`` shows it; ``None`` if deleted or archived."""
        now = time.time()
        with self._lock:
            task = self._tasks.get(task_id)
            return None if task is None or task.archived else self._describe(task, now)

    def read_task(self, task_id: int) -> tuple[dict[str, Any] | None, bool]:
        """``GET queue/<id>/``: :meth:`task`, counting the read towards ``finish_after_reads``;
        also says whether this very read finished the task."""
        now = time.time()
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.archived:
                return None, False
            task.reads += 1
            finishing = self.finish_after_reads is not None and task.reads >= self.finish_after_reads and now < task.finished_at
            if finishing:
                task.finished_by_reads = now
            return self._describe(task, now), finishing

    def tasks_of(self, username: str) -> list[dict[str, Any]]:
        """A user's unarchived tasks, oldest first."""
        now = time.time()
        with self._lock:
            return [self._describe(t, now) for t in self._tasks.values() if t.username == username and not t.archived]

    def delete_task(self, task_id: int, username: str) -> int:
        """Cancel (queued or running) or archive (finished) a task; the HTTP status to answer."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.archived:
                return 404
            if task.username != username:
                return 403
            if time.time() >= task.finished_at:
                task.archived, task.result = True, None
            else:
                del self._tasks[task_id]
            return 204

    def result_file(self, task_id: int) -> str | None:
        """The result text of a finished, unarchived task."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.archived or time.time() < task.finished_at:
                return None
            return task.result

    def _queue_position(self, task: _Task, now: float) -> int:
        ahead = (t for t in self._tasks.values() if now < t.started_at and (t.started_at, t.id) < (task.started_at, task.id))
        return sum(1 for _ in ahead)

    def _describe(self, task: _Task, now: float) -> dict[str, Any]:
        started, finished = now >= task.started_at, now >= task.finished_at
        succeeded = finished and task.error_msg is None
        return {
            "url": f"{self.base_url}/queue/{task.id}/",
            "id": task.id,
            "user_id": task.user_id,
            "username": task.username,
            "parent_task_id": None,
            "parent_task_url": None,
            "request_type": "FP",
            "timestamp": iso(task.submitted),
            **task.fields,
            "starttimestamp": iso(task.started_at) if started else None,
            "finishtimestamp": iso(task.finished_at) if finished else None,
            "finished": finished,
            "queuepos": None if started else self._queue_position(task, now),
            "userqueuedtasks_on_submit": task.queued_on_submit,
            "waittime": task.waittime if started else None,
            "runtime": task.runtime if finished else None,
            "attempt_count": 1 if started else 0,
            "result_url": f"{self.base_url}/static/results/job{task.id:05d}.txt" if succeeded else None,
            "error_msg": task.error_msg if finished else None,
            "previewimage_url": None,
            "pdfplot_url": None,
            "imagerequest_task_id": None,
            "imagerequest_url": None,
            "imagerequest_finished": False,
            "result_imagezip_url": None,
            "result_imagestack_url": None,
        }

    async def send_callback(self, task_id: int) -> None:
        """POST the finished task once to its (loopback) ``callback_url``; errors are ignored."""
        task = self.task(task_id)
        if task is None or not task["finished"]:
            return
        with contextlib.suppress(Exception):  # one attempt, like the real server: any failure is ignored
            await tornado.httpclient.AsyncHTTPClient().fetch(
                task["callback_url"],
                method="POST",
                body=json.dumps(task),
                headers={"Content-Type": "application/json"},
                request_timeout=CALLBACK_TIMEOUT,
                follow_redirects=False,
                raise_error=False,
            )


def _request_data(handler: tornado.web.RequestHandler) -> dict[str, Any]:
    """A form-encoded or JSON request body as a dict."""
    request = handler.request
    if request.headers.get("Content-Type", "").startswith("application/json"):
        try:
            data = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise Invalid({"detail": f"JSON parse error - {exc}"}) from None
        if not isinstance(data, dict):
            raise Invalid({"non_field_errors": [f"Invalid data. Expected a dictionary, but got {type(data).__name__}."]})
        return data
    return {name: values[-1].decode("utf-8", "replace") for name, values in request.body_arguments.items()}


class _ATLASHandler(LoopbackHandler):
    """A DRF view: authentication (401), then permission (401 for anonymous), then throttling."""

    public_methods: ClassVar[frozenset[str]] = frozenset()
    username: str | None

    @property
    def atlas(self) -> ATLASEmulator:
        return self.server  # type: ignore[return-value]

    async def prepare(self) -> None:
        await super().prepare()
        method = self.request.method or "GET"
        try:
            self.username = self.atlas.authenticate(self.request.headers.get("Authorization"))
        except AuthenticationFailed as exc:
            self.refuse(401, {"detail": str(exc)}, {"WWW-Authenticate": 'Token realm="api"'})
        if self.username is None and method not in self.public_methods:
            self.refuse(401, {"detail": NOT_PROVIDED}, {"WWW-Authenticate": 'Token realm="api"'})
        wait = self.atlas.throttle_wait(self.username or f"address {self.request.remote_ip}", method)
        if wait is not None:
            self.refuse(429, {"detail": throttled_detail(wait)}, {"Retry-After": str(wait)})

    def refuse(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> NoReturn:
        self.send_json(payload, status, headers)
        raise tornado.web.Finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        detail = f'Method "{self.request.method}" not allowed.' if status_code == 405 else responses.get(status_code, "Error")
        self.finish(json.dumps({"detail": detail}))


class TokenAuthHandler(LoopbackHandler):
    """``POST api-token-auth/`` with ``username`` and ``password``: ``{"token": ...}``."""

    def post(self) -> None:
        try:
            data = _request_data(self)
        except Invalid as exc:
            return self.send_json(exc.errors, 400)
        missing = {name: ["This field is required."] for name in ("username", "password") if not data.get(name)}
        if missing:
            return self.send_json(missing, 400)
        token = self.server.token_for(str(data["username"]), str(data["password"]))  # type: ignore[attr-defined]
        if token is None:
            return self.send_json({"non_field_errors": ["Unable to log in with provided credentials."]}, 400)
        self.send_json({"token": token})


class QueueHandler(_ATLASHandler):
    """``GET queue/``: the caller's tasks, in cursor pages (``pagesize``, default 6, at most 100;
    ``ordering`` by ``id``, ``-id``, ``timestamp`` or ``-timestamp``, default ``id``; ``next`` and
    ``previous`` are absolute URLs carrying an opaque ``cursor``); ``POST queue/``: submit a task
    (201)."""

    def get(self) -> None:
        assert self.username is not None
        ordering = self.get_query_argument("ordering", "id")
        key = ordering.lstrip("-")
        if key not in ("id", "timestamp"):
            key, ordering = "id", "id"
        tasks = sorted(self.atlas.tasks_of(self.username), key=lambda task: (task[key], task["id"]), reverse=ordering.startswith("-"))
        try:
            size = min(max(int(self.get_query_argument("pagesize", str(DEFAULT_PAGE_SIZE))), 1), MAX_PAGE_SIZE)
        except ValueError:
            size = DEFAULT_PAGE_SIZE
        start = _cursor_offset(self.get_query_argument("cursor", ""))
        page = tasks[start : start + size]

        def link(offset: int) -> str:
            query = {"cursor": base64.urlsafe_b64encode(f"o={offset}".encode()).decode(), "ordering": ordering, "pagesize": str(size)}
            return f"{self.atlas.base_url}/queue/?{urlencode(query)}"

        self.send_json(
            {
                "next": link(start + size) if start + size < len(tasks) else None,
                "previous": link(max(start - size, 0)) if start > 0 else None,
                "pagefirsttaskposition": start,
                "taskcount": len(tasks),
                "results": page,
            }
        )

    def post(self) -> None:
        assert self.username is not None
        try:
            fields = task_fields(_request_data(self), mjd_of(time.time()))
            task = self.atlas.create_task(self.username, fields)
        except Invalid as exc:
            return self.send_json(exc.errors, 400)
        if task["callback_url"] and is_loopback_url(task["callback_url"]) and self.atlas.finish_after_reads is None:
            delay = max(0.0, self.atlas.queue_time + self.atlas.run_time)
            tornado.ioloop.IOLoop.current().call_later(delay, self.atlas.send_callback, task["id"])
        self.send_json(task, 201, {"Location": task["url"]})


def _cursor_offset(cursor: str) -> int:
    """The position an opaque cursor of this emulator stands for (0 for none or a bad one)."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        return max(int(text.removeprefix("o=")), 0) if text.startswith("o=") else 0
    except ValueError:
        return 0


class TaskHandler(_ATLASHandler):
    """``GET queue/<id>/`` (public) and ``DELETE queue/<id>/`` (owner: cancel or archive)."""

    public_methods = READ_METHODS

    def get(self, task_id: str) -> None:
        task, finished_now = self.atlas.read_task(int(task_id))
        if task is None:
            return self.send_json({"detail": "Not found."}, 404)
        if finished_now and task["callback_url"] and is_loopback_url(task["callback_url"]):
            tornado.ioloop.IOLoop.current().spawn_callback(self.atlas.send_callback, task["id"])
        self.send_json(task)

    def delete(self, task_id: str) -> None:
        assert self.username is not None
        status = self.atlas.delete_task(int(task_id), self.username)
        if status == 204:
            self.set_status(204)
            return self.finish()
        detail = "Not found." if status == 404 else "You do not have permission to perform this action."
        self.send_json({"detail": detail}, status)


class ResultHandler(LoopbackHandler):
    """``GET static/results/job<id>.txt``: a finished task's result file (static, no auth)."""

    def get(self, task_id: str) -> None:
        text = self.server.result_file(int(task_id))  # type: ignore[attr-defined]
        if text is None:
            self.set_status(404)
            return self.finish("Not Found")
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(text)
