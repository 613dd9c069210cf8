"""A real SMTP server on 127.0.0.1 (``aiosmtpd``, RFC 5321 with STARTTLS, implicit TLS and AUTH),
capturing every message it accepts::

    with SMTPEmulator(users={"skyportal": "pw"}, tls=files.server_context(), security="starttls") as smtp:
        ... send to smtp.host, smtp.port ...
        smtp.messages[0].message["Subject"], smtp.messages[0].rcpt_tos

Knobs: ``refuse`` (recipients answered ``550 5.1.1``), ``security`` (``starttls``: STARTTLS
offered and required before AUTH or mail; ``ssl``: TLS from the first byte; ``none``: plain),
``users`` (AUTH PLAIN/LOGIN required when given), ``drop_data()`` (the next ``DATA`` loses the
connection before answering: a message that may or may not have arrived), ``down()``/``up()``
(connections are closed at once). ``aiosmtpd`` is a test dependency (the ``test`` extra).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import warnings
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from .background import BackgroundServer


@dataclass(frozen=True)
class CapturedMail:
    """One accepted message: the envelope and the parsed message (``policy.default``)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: EmailMessage = field(repr=False)
    authenticated_as: str | None = None
    tls: bool = False


class _Handler:
    def __init__(self, server: SMTPEmulator):
        self.server = server

    async def handle_RCPT(self, smtp: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.lower() in self.server.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        if self.server._take_drop():
            smtp.transport.close()
            return "421 4.4.2 connection dropped"
        data = envelope.original_content or envelope.content
        parsed = message_from_bytes(data, policy=policy.default)
        user = session.auth_data.login.decode() if session.authenticated and hasattr(session.auth_data, "login") else None
        tls = session.ssl is not None or self.server.security == "ssl"
        captured = CapturedMail(envelope.mail_from, tuple(envelope.rcpt_tos), data, parsed, user, tls)  # type: ignore[arg-type]
        with self.server._lock:
            self.server._messages.append(captured)
        return "250 2.0.0 Ok: queued"


class _Authenticator:
    def __init__(self, users: dict[str, str]):
        self.users = users

    def __call__(self, smtp: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        return AuthResult(success=self.users.get(login) == password, handled=False, auth_data=auth_data)


class SMTPEmulator(BackgroundServer):
    """An SMTP server on ``127.0.0.1`` at a free port, from its own thread and event loop."""

    def __init__(
        self,
        *,
        security: str = "none",
        tls: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
        refuse: set[str] | frozenset[str] = frozenset(),
    ):
        if security not in ("none", "starttls", "ssl"):
            raise ValueError("security must be none, starttls or ssl")
        if security != "none" and tls is None:
            raise ValueError(f"security {security!r} needs a server TLS context")
        self.security, self.tls, self.users = security, tls, dict(users or {})
        self.refuse = {address.lower() for address in refuse}
        super().__init__()
        self.host = "127.0.0.1"
        self._lock = threading.Lock()
        self._messages: list[CapturedMail] = []
        self._drops = 0
        self._down = False

    @property
    def messages(self) -> list[CapturedMail]:
        """Every message accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def drop_data(self, count: int = 1) -> None:
        """Close the connection instead of answering the next ``count`` ``DATA`` commands."""
        with self._lock:
            self._drops += count

    def _take_drop(self) -> bool:
        with self._lock:
            if self._drops:
                self._drops -= 1
                return True
            return False

    def down(self) -> None:
        """Close every new connection at once, before the greeting."""
        self._down = True

    def up(self) -> None:
        self._down = False

    def _protocol(self) -> asyncio.Protocol:
        from aiosmtpd.smtp import SMTP

        if self._down:
            return _Closer()
        with warnings.catch_warnings():
            # aiosmtpd warns that AUTH without STARTTLS is unsafe; with implicit TLS it is not.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            return self._smtp(SMTP)  # aiosmtpd's class, imported lazily

    def _smtp(self, smtp_class: type) -> asyncio.Protocol:
        return smtp_class(
            _Handler(self),
            hostname="localhost",
            tls_context=self.tls if self.security == "starttls" else None,
            require_starttls=self.security == "starttls",
            auth_required=bool(self.users),
            # With implicit TLS the whole connection is TLS, which aiosmtpd's check (it looks for
            # a STARTTLS) cannot see.
            auth_require_tls=self.security == "starttls",
            authenticator=_Authenticator(self.users) if self.users else None,
            timeout=30,
            loop=self._loop,
        )

    # -- life cycle (BackgroundServer) ----------------------------------------------------------

    def _start_errors(self) -> tuple[type[BaseException], ...]:
        return (OSError, ssl.SSLError, RuntimeError)

    async def _listen(self) -> Any:
        assert self._loop is not None
        server = await self._loop.create_server(self._protocol, self.host, 0, ssl=self.tls if self.security == "ssl" else None)
        self.port = server.sockets[0].getsockname()[1]
        return server

    def config(self, **extra: Any) -> dict[str, Any]:
        """The ``notify.smtp`` settings that reach this server (``extra`` added or overriding)."""
        return {"host": self.host, "port": self.port, "security": self.security, "from_address": "skyportal@example.org", "timeout": 5, **extra}


class _Closer(asyncio.Protocol):
    """Closes the connection as soon as it is made (the server is "down")."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()
