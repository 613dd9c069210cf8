"""A socket guard for tests: proves that code made no connection (or none off loopback).

::

    with socket_guard() as attempts:          # every connect refused and recorded
        ...
    assert attempts == []

    with socket_guard(allow_loopback=True):   # 127.0.0.0/8 and ::1 allowed, the rest refused
        ...

    with socket_guard(allow=[emulator.url]) as attempts:   # exactly these origins' host and port
        ...

A refused attempt raises ``ConnectionRefusedError`` before any packet leaves, so a test that
checks a refusal of a private address can show that no connection to it was even tried.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from ..core.egress import EgressPolicy

_lock = threading.Lock()


def _host_of(address: Any) -> str:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(address)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _endpoint(entry: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(entry, tuple):
        return entry[0], int(entry[1])
    parts = urlsplit(entry)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


@contextlib.contextmanager
def socket_guard(*, allow_loopback: bool = False, allow: Iterable[str | tuple[str, int]] = ()) -> Iterator[list[tuple[str, Any]]]:
    """Refuse (and record as ``(host, address)``) every outgoing socket connection made inside
    the block, except to loopback addresses when ``allow_loopback``, and to the exact
    ``(host, port)`` endpoints (or URLs) in ``allow``: another port on loopback is refused then.
    Applies to all threads."""
    attempts: list[tuple[str, Any]] = []
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex
    endpoints = {_endpoint(entry) for entry in allow}

    def permitted(sock: socket.socket, address: Any) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True  # Unix sockets (e.g. a local database) are not network traffic
        host = _host_of(address)
        if allow_loopback and _is_loopback(host):
            return True
        if isinstance(address, tuple) and len(address) >= 2 and (host, int(address[1])) in endpoints:
            return True
        with _lock:
            attempts.append((host, address))
        return False

    def connect(sock: socket.socket, address: Any) -> None:
        if not permitted(sock, address):
            raise ConnectionRefusedError(f"socket_guard: connection to {_host_of(address)} refused in this test")
        original_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if not permitted(sock, address):
            return 111  # ECONNREFUSED
        return original_connect_ex(sock, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex = original_connect, original_connect_ex  # type: ignore[method-assign]


def loopback_egress(*servers: Any) -> EgressPolicy:
    """An egress policy for tests: calls may reach exactly these servers (objects with a ``url``,
    or URLs), or, with none given, any loopback address. Everything else stays refused."""
    if not servers:
        return EgressPolicy(("127.0.0.0/8", "::1/128"))
    return EgressPolicy(tuple(getattr(server, "url", server) for server in servers))
