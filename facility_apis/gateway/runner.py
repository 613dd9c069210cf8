"""Serving the gateway's tornado application: in the foreground (``serve``) or from a thread
(the demo and the tests)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable

import tornado.httpserver
import tornado.netutil
import tornado.web

STOP_TIMEOUT = 10.0


async def _set_when(flag: threading.Event, stopping: asyncio.Event) -> None:
    while not flag.is_set() and not stopping.is_set():
        await asyncio.sleep(0.25)
    stopping.set()


async def _serve(app: tornado.web.Application, sockets: list, stopping: asyncio.Event, ready: Callable[[], None]) -> None:
    from .api import MAX_BODY_BYTES

    # The handlers stream bodies in and answer 413 past MAX_BODY_BYTES; the server itself drops
    # the connection only far beyond it.
    server = tornado.httpserver.HTTPServer(app, xheaders=False, max_body_size=64 * MAX_BODY_BYTES)
    server.add_sockets(sockets)
    ready()
    await stopping.wait()
    server.stop()
    await asyncio.wait_for(server.close_all_connections(), STOP_TIMEOUT)


def serve_forever(
    app: tornado.web.Application,
    address: str,
    port: int,
    on_ready: Callable[[int], None] = lambda port: None,
    stop: threading.Event | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, or until ``stop`` is set (e.g. a loop of the process died)."""
    sockets = tornado.netutil.bind_sockets(port, address)

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        watcher = loop.create_task(_set_when(stop, stopping)) if stop is not None else None
        await _serve(app, sockets, stopping, lambda: on_ready(sockets[0].getsockname()[1]))
        if watcher is not None:
            await watcher

    asyncio.run(main())


class AppThread:
    """Serves an application on 127.0.0.1 at a free port from a daemon thread."""

    def __init__(self, app: tornado.web.Application, address: str = "127.0.0.1", port: int = 0):
        self._sockets = tornado.netutil.bind_sockets(port, address)
        self.port: int = self._sockets[0].getsockname()[1]
        self.url = f"http://{address}:{self.port}"
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> AppThread:
        ready = threading.Event()

        async def main() -> None:
            self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
            await _serve(self._app, self._sockets, self._stopping, ready.set)

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name=f"gateway-http:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(STOP_TIMEOUT):
            raise RuntimeError("the gateway's HTTP server did not start")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(STOP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> AppThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
