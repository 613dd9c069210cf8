"""A server run by an asyncio event loop of its own, in a daemon thread: the life cycle every
emulator shares (the HTTP ones of ``server.py``, SMTP, SFTP)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Self

STOP_TIMEOUT = 10.0


class BackgroundServer:
    """``start()`` runs :meth:`_listen` on a new event loop in a daemon thread and returns once it
    listens (``RuntimeError`` saying why when it cannot: one of :meth:`_start_errors`, or a
    timeout); ``stop()`` closes it and joins the thread. A subclass implements :meth:`_listen`
    (set ``self.port``, return the listening server: an object with ``close()`` and an awaitable
    ``wait_closed()``, or ``None`` when :meth:`_serve` is overridden). Use as a context manager."""

    def __init__(self) -> None:
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    async def _listen(self) -> Any:
        raise NotImplementedError

    def _start_errors(self) -> tuple[type[BaseException], ...]:
        """What :meth:`_listen` raises when the server cannot start (reported by ``start()``)."""
        return (OSError, RuntimeError)

    async def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        try:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            server = await self._listen()
        except self._start_errors() as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        await self._stopping.wait()
        server.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 1.0)

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready, failure),), name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(STOP_TIMEOUT) or failure:
            raise RuntimeError(f"{type(self).__name__} did not start: {failure[0] if failure else 'timeout'}")
        return self

    def stop(self) -> None:
        """Stop serving and join the server's thread (``RuntimeError`` if it does not end)."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError(f"{type(self).__name__} did not stop within {STOP_TIMEOUT} s")
        self._thread = self._loop = self._stopping = None
        self.port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
