"""Writing a plan into a directory of an SSH server ("scp"), with the server's host key pinned.

SkyPortal's MMA (scp mode) and GROWTH-India copy the plan with paramiko's ``scp`` after accepting
whatever host key the server shows (``AutoAddPolicy``), so anyone between SkyPortal and the
telescope can take the password and the plan. Here, with ``asyncssh`` (the optional extra
``scp``, imported when a plan is written), over SFTP:

- **Which server.** The allocation pins the server's host key (``host_key``: the key itself, or
  its SHA256 fingerprint). The key the server shows is compared with it during the key exchange,
  before any login: an unknown or changed key ends the connection, and nothing is added anywhere.
  Nothing of the process's own SSH setup is used: no ``~/.ssh/config``, ``known_hosts``, agent or
  default keys.
- **Where it may go.** The host is held to rule 3 of the egress rule (``core/egress.py``): when
  the allocation is saved (:meth:`EgressPolicy.host_refusal`) and when connecting (the addresses
  the name resolves to are vetted and the connection goes to a vetted address).
- **What the receiver sees.** The file is written under a temporary name in the same directory
  (``.<name>.<random>.part``: a dot-file, which receivers listing ``*.json`` skip), then renamed
  to its name (``posix-rename@openssh.com`` where the server offers it, replacing a file of that
  name atomically; else the old file is removed first). A connection lost while writing leaves
  at most the dot-file, never a truncated plan under the plan's name.
- **Timeouts** on the connection, the login and the whole transfer (``timeout`` seconds).
- **Records.** Each delivery is recorded in the transport's open recordings as a ``Transaction``
  (method ``SFTP``, URL ``sftp://host:port/<path>``, the document written as the request body,
  status ``0`` (``SSH_FX_OK``) or the server's SFTP error code), redacted like an HTTP exchange
  plus the password and private key.
- **What may have arrived.** A failure before the rename was asked for is
  ``FacilityUnavailable(sent=False)``: the plan's name never appeared. A connection lost while the
  rename was asked is ``sent=True``: the plan may be there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import posixpath
import secrets
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...core.egress import EgressPolicy
from ...core.errors import ConfigurationError, CredentialsRefused, FacilityUnavailable, RemoteError
from ...core.transport import Transport

T = TypeVar("T")
SSH_FX_OK = 0
DEFAULT_TIMEOUT = 30.0


def _asyncssh() -> Any:
    try:
        import asyncssh
    except ImportError:
        raise ConfigurationError("scp delivery needs asyncssh: install facility_apis with the 'scp' extra (pip install 'facility-apis[scp]')") from None
    return asyncssh


def fingerprint(public_key_line: str) -> str:
    """The OpenSSH SHA256 fingerprint (``SHA256:<43 base64 characters>``) of a public key line
    (``ssh-ed25519 AAAA... [comment]``)."""
    blob = base64.b64decode(public_key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def pinned_fingerprint(host_key: str) -> str:
    """The fingerprint an allocation's ``host_key`` pins (a fingerprint, or a key's)."""
    return host_key.rstrip("=") if host_key.startswith("SHA256:") else fingerprint(host_key)


@dataclass(frozen=True)
class SSHDestination:
    """Where and as whom the plans of an scp allocation are written."""

    host: str
    port: int
    username: str
    directory: str
    host_key: str
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_altdata(cls, altdata: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> SSHDestination:
        return cls(
            altdata["host"].strip("[]"),
            int(altdata.get("port", 22)),
            altdata["username"],
            altdata["directory"],
            altdata["host_key"],
            altdata.get("password"),
            altdata.get("private_key"),
            timeout,
        )

    @property
    def secrets(self) -> list[str]:
        return [value for value in (self.password, self.private_key) if value]

    def path(self, name: str) -> str:
        return posixpath.join(self.directory, name)

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sftp://{host}:{self.port}{path if path.startswith('/') else '/' + path}"


def run(coroutine_factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to its end from synchronous code (facilities are synchronous and called in
    worker threads); in a thread whose event loop is running, in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine_factory())  # type: ignore[arg-type]
    with ThreadPoolExecutor(1, thread_name_prefix="sftp") as pool:
        return pool.submit(asyncio.run, coroutine_factory()).result()  # type: ignore[arg-type]


class _Failure(Exception):
    """A typed error (``error``) and the SFTP status code to record."""

    def __init__(self, error: Exception, code: int | None = None):
        super().__init__(str(error))
        self.error, self.code = error, code


async def _connect(destination: SSHDestination, egress: EgressPolicy) -> Any:
    """A connection to a vetted address of the host, its host key checked against the pin."""
    asyncssh = _asyncssh()
    pinned = pinned_fingerprint(destination.host_key)
    where = f"{destination.host}:{destination.port}"

    class PinnedHostKey(asyncssh.SSHClient):  # type: ignore[misc, name-defined]
        def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
            return key.get_fingerprint("sha256") == pinned

    try:
        addresses = await asyncio.to_thread(egress.vet, "ssh", destination.host, destination.port)
    except OSError as exc:
        raise _Failure(FacilityUnavailable(f"could not resolve {destination.host}: {type(exc).__name__}", sent=False)) from None
    options: dict[str, Any] = {
        "port": destination.port,
        "username": destination.username,
        "client_factory": PinnedHostKey,
        "known_hosts": ([], [], []),  # trust nothing but the pin (the callback above)
        "server_host_key_algs": "default",
        "config": [],
        "agent_path": None,
        "client_keys": [asyncssh.import_private_key(destination.private_key)] if destination.private_key else None,
        "password": destination.password,
        "kbdint_auth": False,
        "gss_auth": False,
        "gss_kex": False,
        "host_based_auth": False,
        "connect_timeout": destination.timeout,
        "login_timeout": destination.timeout,
    }
    failure: Exception | None = None
    for address in addresses:
        try:
            return await asyncssh.connect(address, **options)
        except asyncssh.HostKeyNotVerifiable:
            raise _Failure(
                RemoteError(
                    f"refused to write to {where}: the server's host key is not the one the allocation pins ({pinned}); "
                    "if the server's key was changed on purpose, put its new key or fingerprint in the allocation's host_key",
                    permanent=True,
                )
            ) from None
        except asyncssh.PermissionDenied:
            raise _Failure(CredentialsRefused(f"the SSH server {where} refused the login of {destination.username}")) from None
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            failure = exc
    raise _Failure(FacilityUnavailable(f"could not connect to the SSH server {where}: {type(failure).__name__}", sent=False))


def _sftp_failure(asyncssh: Any, exc: Exception, what: str, where: str, *, sent: bool) -> _Failure:
    if isinstance(exc, asyncssh.SFTPError):
        reason = " ".join(str(exc.reason or type(exc).__name__).split())
        return _Failure(RemoteError(f"the SSH server {where} refused to {what}: {reason}", permanent=True), exc.code)
    note = "; the plan may be there (not sent again)" if sent else "; the plan's file was not created"
    return _Failure(FacilityUnavailable(f"the connection to the SSH server {where} failed while asked to {what} ({type(exc).__name__}){note}", sent=sent))


async def _write(destination: SSHDestination, name: str, data: bytes, egress: EgressPolicy) -> str:
    asyncssh = _asyncssh()
    where = f"{destination.host}:{destination.port}"
    final = destination.path(name)
    temporary = destination.path(f".{name}.{secrets.token_hex(6)}.part")
    async with await _connect(destination, egress) as connection:
        try:
            sftp = await connection.start_sftp_client()
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            raise _sftp_failure(asyncssh, exc, "start SFTP", where, sent=False) from None
        async with sftp:
            try:
                async with sftp.open(temporary, "wb") as handle:
                    await handle.write(data)
            except (TimeoutError, OSError, asyncssh.Error) as exc:
                await _discard(sftp, temporary)
                raise _sftp_failure(asyncssh, exc, f"write {temporary}", where, sent=False) from None
            try:
                await _rename(asyncssh, sftp, temporary, final)
            except (TimeoutError, OSError, asyncssh.Error) as exc:
                if isinstance(exc, asyncssh.SFTPError):
                    await _discard(sftp, temporary)
                raise _sftp_failure(asyncssh, exc, f"rename {temporary} to {final}", where, sent=not isinstance(exc, asyncssh.SFTPError)) from None
    return final


async def _rename(asyncssh: Any, sftp: Any, temporary: str, final: str) -> None:
    """``temporary`` renamed ``final``, replacing a file of that name: atomically where the server
    offers POSIX rename, else by removing the old file first (never a truncated file either way)."""
    try:
        await sftp.posix_rename(temporary, final)
        return
    except asyncssh.SFTPOpUnsupported:
        pass
    if await sftp.exists(final):
        await sftp.remove(final)
    await sftp.rename(temporary, final)


async def _discard(sftp: Any, path: str) -> None:
    """Remove a temporary file, if the connection still allows it (best effort)."""
    with contextlib.suppress(Exception):  # the failure being reported matters, not this cleanup
        await sftp.remove(path)


async def _remove(destination: SSHDestination, path: str, egress: EgressPolicy) -> bool:
    asyncssh = _asyncssh()
    where = f"{destination.host}:{destination.port}"
    async with await _connect(destination, egress) as connection, connection.start_sftp_client() as sftp:
        try:
            await sftp.remove(path)
        except asyncssh.SFTPNoSuchFile:
            return False
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            raise _sftp_failure(asyncssh, exc, f"remove {path}", where, sent=True) from None
    return True


def _timed(destination: SSHDestination, work: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    async def bounded() -> T:
        try:
            return await asyncio.wait_for(work(), 3 * destination.timeout)
        except TimeoutError:
            late = f"the SSH server {destination.host}:{destination.port} did not finish within {3 * destination.timeout:g} s"
            raise _Failure(FacilityUnavailable(f"{late}; the plan may be there (not sent again)", sent=True)) from None

    return bounded


def write_file(destination: SSHDestination, name: str, data: bytes, transport: Transport, egress: EgressPolicy) -> str:
    """Write ``data`` as ``<directory>/<name>`` (temporary name, then rename) and record it;
    returns the path written. Raises the typed errors of the module docstring."""
    started = time.monotonic()
    url = destination.url(destination.path(name))
    try:
        path = run(_timed(destination, lambda: _write(destination, name, data, egress)))
    except _Failure as failure:
        _record(transport, destination, "PUT", url, data, started, code=failure.code, error=str(failure.error))
        raise failure.error from None
    _record(transport, destination, "PUT", url, data, started, code=SSH_FX_OK, answer=f"wrote {len(data)} bytes under a temporary name, renamed {path}")
    return path


def remove_file(destination: SSHDestination, path: str, transport: Transport, egress: EgressPolicy) -> bool:
    """Remove ``path``; True when removed, False when it was not there. Records the exchange."""
    started = time.monotonic()
    url = destination.url(path)
    try:
        removed = run(_timed(destination, lambda: _remove(destination, path, egress)))
    except _Failure as failure:
        _record(transport, destination, "REMOVE", url, None, started, code=failure.code, error=str(failure.error))
        raise failure.error from None
    _record(transport, destination, "REMOVE", url, None, started, code=SSH_FX_OK, answer="removed" if removed else "no such file")
    return removed


def _record(
    transport: Transport,
    destination: SSHDestination,
    verb: str,
    url: str,
    data: bytes | None,
    started: float,
    *,
    code: int | None,
    answer: str | None = None,
    error: str | None = None,
) -> None:
    transport.record_exchange(
        f"SFTP {verb}",
        url,
        request_headers={"User": destination.username, "Host-Key": pinned_fingerprint(destination.host_key)},
        request_body=data.decode("utf-8", "replace") if data is not None else None,
        status=code,
        response_body=answer,
        elapsed=time.monotonic() - started,
        error=error,
        secrets=destination.secrets,
    )
