"""A tornado application served on 127.0.0.1 from a background thread, with injectable faults.

Every emulator in :mod:`facility_apis.testing` is a :class:`LoopbackServer`. Besides serving its
routes, the server records each request it receives and can misbehave on demand::

    with SkyPortalStub() as stub:
        stub.faults.add("status", count=2, status=503, retry_after=1)
        stub.faults.add("drop", path_prefix="/api/facility")
        stub.down()   # every request fails until stub.up()
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple, Self

import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

from .background import STOP_TIMEOUT, BackgroundServer

FAULT_KINDS = frozenset({"latency", "status", "malformed", "drop"})
MALFORMED_BODY = '{"status": "success", "data": {"id": 1, "url": "http://127.0.0.1/trunc'


class RecordedRequest(NamedTuple):
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: ``time.time()`` when the request arrived (before any fault's latency).
    at: float = 0.0


@dataclass
class Fault:
    """A misbehaviour applied to the next ``remaining`` matching requests.

    ``latency`` waits ``seconds`` then answers normally; ``status`` answers ``status`` with
    ``body`` (and ``Retry-After: retry_after`` when given); ``malformed`` answers 200 with a
    truncated JSON body; ``drop`` closes the connection without any HTTP response.
    """

    kind: str
    remaining: int = 1
    path_prefix: str | None = None
    method: str | None = None
    seconds: float = 1.0
    status: int = 503
    body: str = ""
    retry_after: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


class Faults:
    """Thread-safe list of pending faults; the first one matching a request fires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []

    def add(
        self,
        kind: str,
        count: int = 1,
        path_prefix: str | None = None,
        *,
        method: str | None = None,
        seconds: float = 1.0,
        status: int = 503,
        body: str | dict[str, Any] | list[Any] = "",
        retry_after: int | None = None,
    ) -> None:
        """Apply fault ``kind`` to the next ``count`` requests matching ``path_prefix``/``method``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        text = body if isinstance(body, str) else json.dumps(body)
        fault = Fault(kind, count, path_prefix, method, seconds, status, text, retry_after)
        with self._lock:
            self._pending.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def __len__(self) -> int:
        """How many more requests will be faulted."""
        with self._lock:
            return sum(fault.remaining for fault in self._pending)

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if any (consuming one use of it)."""
        with self._lock:
            for fault in self._pending:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._pending.remove(fault)
                    return fault
        return None


class LoopbackHandler(tornado.web.RequestHandler):
    """Base handler: records the request, then applies the server's fault, if any."""

    @property
    def server(self) -> LoopbackServer:
        return self.settings["loopback_server"]

    async def prepare(self) -> None:
        request = self.request
        self.server._record(request)
        self._counted = self.server._enter()
        fault = self.server._fault_for(request.method or "GET", request.path)
        if fault is None:
            return
        if fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
            return
        if fault.kind == "drop":
            request.connection.close()  # type: ignore[union-attr]
            raise tornado.web.Finish()
        if fault.kind == "malformed":
            self.set_header("Content-Type", "application/json")
            raise tornado.web.Finish(fault.body or MALFORMED_BODY)
        self.set_status(fault.status)
        if fault.retry_after is not None:
            self.set_header("Retry-After", str(fault.retry_after))
        raise tornado.web.Finish(fault.body)

    def on_finish(self) -> None:
        if getattr(self, "_counted", False):
            self._counted = False
            self.server._leave()

    def send_json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Finish with ``payload`` as JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        self.finish(json.dumps(payload))


class NotFoundHandler(LoopbackHandler):
    """Any path no route serves: 404 (after recording and faults)."""

    def _not_found(self, *args: str) -> None:
        self.set_status(404)
        self.finish("Not Found")

    get = head = post = put = patch = delete = options = _not_found


class LoopbackServer(BackgroundServer):
    """Serves :meth:`routes` on ``127.0.0.1`` at a free port, from its own thread and event loop.

    Use as a context manager or call :meth:`start`/:meth:`stop`. Subclasses return tornado
    routes (handlers derived from :class:`LoopbackHandler`) from :meth:`routes`; the base class
    alone answers 404 to everything, which still makes a handy request recorder.
    """

    def __init__(self) -> None:
        super().__init__()
        self.faults = Faults()
        self._log_lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._down: str | None = None
        self._in_flight = 0
        #: The most requests this server was answering at once (from arrival to the answer sent).
        self.max_in_flight = 0

    # -- what subclasses provide ------------------------------------------------------------

    def routes(self) -> list[Any]:
        """tornado URL specs; handlers find this server as ``handler.server``."""
        return []

    # -- life cycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """e.g. ``http://127.0.0.1:41234`` (only while started)."""
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve_http(sockets, ready),), name=f"{type(self).__name__}:{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(STOP_TIMEOUT):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    async def _serve_http(self, sockets: list[Any], ready: threading.Event) -> None:
        application = tornado.web.Application(
            self.routes(),
            default_handler_class=NotFoundHandler,
            loopback_server=self,
            log_function=lambda handler: None,
        )
        server = tornado.httpserver.HTTPServer(application)
        server.add_sockets(sockets)
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        ready.set()
        await self._stopping.wait()
        server.stop()
        await asyncio.wait_for(server.close_all_connections(), STOP_TIMEOUT)

    # -- recording and faults ---------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._log_lock:
            return list(self._requests)

    def _record(self, request: tornado.httputil.HTTPServerRequest) -> None:
        entry = RecordedRequest(request.method or "", request.path, dict(request.headers), request.body or b"", time.time())
        with self._log_lock:
            self._requests.append(entry)

    def _enter(self) -> bool:
        with self._log_lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        return True

    def _leave(self) -> None:
        with self._log_lock:
            self._in_flight -= 1

    def down(self, mode: str = "drop") -> None:
        """Fail every request until :meth:`up`: ``"drop"`` the connection or answer ``"503"``."""
        if mode not in ("drop", "503"):
            raise ValueError("mode must be 'drop' or '503'")
        self._down = mode

    def up(self) -> None:
        self._down = None

    def _fault_for(self, method: str, path: str) -> Fault | None:
        down = self._down
        if down == "drop":
            return Fault("drop")
        if down == "503":
            return Fault("status", status=503, body="Service Unavailable")
        return self.faults.take(method, path)
