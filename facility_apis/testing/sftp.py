"""A real SSH server with SFTP on 127.0.0.1 (``asyncssh``), with its own host key, for the scp
delivery of observation plans::

    with SFTPEmulator(users={"obsplans": "pw"}) as server:
        server.host_key        # "ssh-ed25519 AAAA..." (the allocation's host_key)
        server.fingerprint     # "SHA256:..."
        ... write to server.host, server.port ...
        server.read("/data/incoming/ToO_x.json"), server.listing("/data/incoming")

Files live under a temporary directory the server is rooted in (``root``); a client's
``/data/incoming`` is ``<root>/data/incoming`` (created with :meth:`makedirs`). Logins are
password (``users``) or public key (``keys``: user → public key lines); every attempt is recorded
in ``logins``, so a test sees that a refused host key ended the connection before any login.

Knobs: ``cut_next_write(after)`` (the next file write stores ``after`` bytes, then the connection
is closed: a transfer that died half way), ``posix_rename`` (``False``: the server refuses the
``posix-rename@openssh.com`` request, as servers without the extension do), ``down()``/``up()``
(connections are closed at once). ``asyncssh`` is the test extra's (and the ``scp`` extra's).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Self

from .background import BackgroundServer


class SFTPEmulator(BackgroundServer):
    """The server of the module docstring (``start``/``stop`` or a context manager)."""

    def __init__(self, *, users: dict[str, str] | None = None, keys: dict[str, list[str]] | None = None, posix_rename: bool = True):
        import asyncssh

        self.users = dict(users or {"obsplans": "s3cret pass"})
        self.keys = {name: list(lines) for name, lines in (keys or {}).items()}
        self.posix_rename = posix_rename
        super().__init__()
        self.host = "127.0.0.1"
        self._private = asyncssh.generate_private_key("ssh-ed25519")
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()
        self._logins: list[tuple[str, str, bool]] = []
        self._cut_after: int | None = None
        self._down = False

    # -- what tests read ----------------------------------------------------------------------

    @property
    def host_key(self) -> str:
        """The server's public host key as a known_hosts line: ``ssh-ed25519 AAAA...``."""
        return self._private.export_public_key().decode().strip()

    @property
    def fingerprint(self) -> str:
        """The host key's OpenSSH SHA256 fingerprint (``SHA256:...``)."""
        return self._private.get_fingerprint("sha256")

    @property
    def url(self) -> str:
        """``ssh://127.0.0.1:<port>``: what an egress allowance names (``loopback_egress(server)``)."""
        if self.port is None:
            raise RuntimeError("SFTPEmulator is not started")
        return f"ssh://{self.host}:{self.port}"

    @property
    def root(self) -> Path:
        if self._directory is None:
            raise RuntimeError("SFTPEmulator is not started")
        return Path(self._directory.name)

    def local(self, path: str) -> Path:
        """Where the client's ``path`` (absolute, as the client names it) is on this machine."""
        return self.root / path.lstrip("/")

    def makedirs(self, path: str) -> None:
        self.local(path).mkdir(parents=True, exist_ok=True)

    def read(self, path: str) -> bytes:
        return self.local(path).read_bytes()

    def listing(self, path: str) -> list[str]:
        """The names in directory ``path``, hidden ones included, sorted."""
        return sorted(os.listdir(self.local(path)))

    @property
    def logins(self) -> list[tuple[str, str, bool]]:
        """Every login attempt: ``(user, "password" | "publickey", accepted)``."""
        with self._lock:
            return list(self._logins)

    # -- knobs --------------------------------------------------------------------------------

    def cut_next_write(self, after: int) -> None:
        """Store only ``after`` bytes of the next file written, then close the connection."""
        with self._lock:
            self._cut_after = after

    def down(self) -> None:
        self._down = True

    def up(self) -> None:
        self._down = False

    def _take_cut(self) -> int | None:
        with self._lock:
            cut, self._cut_after = self._cut_after, None
            return cut

    def _login(self, user: str, method: str, accepted: bool) -> bool:
        with self._lock:
            self._logins.append((user, method, accepted))
        return accepted

    # -- the server ---------------------------------------------------------------------------

    def _classes(self) -> tuple[type, Any]:
        import asyncssh

        emulator = self

        class Server(asyncssh.SSHServer):  # type: ignore[misc]
            def connection_made(self, connection: Any) -> None:
                if emulator._down:
                    connection.abort()

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return emulator._login(username, "password", emulator.users.get(username) == password)

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: Any) -> bool:
                known = [asyncssh.import_public_key(line) for line in emulator.keys.get(username, [])]
                return emulator._login(username, "publickey", key in known)

        class Files(asyncssh.SFTPServer):  # type: ignore[misc]
            def __init__(self, chan: Any):
                super().__init__(chan, chroot=str(emulator.root).encode())
                self._cut: int | None = None

            def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
                self._cut = emulator._take_cut() if pflags & asyncssh.FXF_WRITE else None
                return super().open(path, pflags, attrs)

            def write(self, file_obj: Any, offset: int, data: bytes) -> Any:
                if self._cut is not None and offset + len(data) > self._cut:
                    keep = max(self._cut - offset, 0)
                    if keep:
                        super().write(file_obj, offset, data[:keep])
                    file_obj.flush()
                    self.connection.abort()
                    raise asyncssh.SFTPConnectionLost("the server closed the connection")
                return super().write(file_obj, offset, data)

            def posix_rename(self, oldpath: bytes, newpath: bytes) -> Any:
                if not emulator.posix_rename:
                    raise asyncssh.SFTPOpUnsupported("POSIX rename not supported")
                return super().posix_rename(oldpath, newpath)

        return Server, Files

    def _start_errors(self) -> tuple[type[BaseException], ...]:
        import asyncssh

        return (OSError, asyncssh.Error)

    async def _listen(self) -> Any:
        import asyncssh

        server_class, files_class = self._classes()
        acceptor = await asyncssh.listen(self.host, 0, server_host_keys=[self._private], server_factory=server_class, sftp_factory=files_class, allow_scp=False)
        self.port = acceptor.get_port()
        return acceptor

    def start(self) -> Self:
        """Serve from a fresh temporary directory (removed again by :meth:`stop`)."""
        if self._thread is None:
            self._directory = tempfile.TemporaryDirectory(prefix="sftp-emulator-")
        return super().start()

    def stop(self) -> None:
        super().stop()
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None
