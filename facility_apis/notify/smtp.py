"""Sending an e-mail over SMTP with the standard library, safely.

SMTP is not HTTP, so it cannot go through the ``Transport``; this module keeps the transport's
rules for it:

- **Where it may go.** The server is the deployment's (its configuration, never an allocation's),
  so, as for the deployment's other endpoints (``core.egress.INTERNAL``), a private address is
  allowed; a login travels only inside TLS (``starttls`` or ``ssl``) or to a loopback address,
  and the host must be a plain host name or address (no scheme, user name or path).
- **TLS** with the system's certificate authorities (or ``ca_file``), hostname checked, always.
- **Timeouts** on the connection and on every reply (``timeout`` seconds).
- **Records.** Each delivery is recorded in the transport's open recordings as a
  ``Transaction`` (method ``SMTP``, URL ``smtp://host:port`` or ``smtps://``), redacted like an
  HTTP exchange plus the SMTP password; the password never reaches a record, an error or a log.
- **What may have arrived.** A failure before the message was handed over is
  ``FacilityUnavailable(sent=False)`` (safe to try again); a connection lost while handing it
  over is ``sent=True`` (it may have arrived: never re-sent blindly).
- **Per recipient.** The server may refuse some recipients and take the others; the result says
  which (``MailReceipt``), and refusing them all is ``Rejected``.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from ..core.egress import is_loopback
from ..core.errors import ConfigurationError, FacilityUnavailable, Rejected, RemoteError
from ..core.redact import Redactor
from ..core.secret_settings import secret_setting
from ..core.transport import Transport
from .altdata import ADDRESS
from .config import settings_mapping

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_TIMEOUT = 30.0
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[?[0-9A-Fa-f:.]{2,45}\]?")
_SETTINGS = {"host", "port", "security", "username", "password", "password_file", "from_address", "timeout", "ca_file"}


@dataclass(frozen=True)
class MailReceipt:
    """What the server did with one message: the recipients it ``accepted``, and those it
    ``refused`` with its reply (``"550 5.1.1 no such user"``)."""

    accepted: tuple[str, ...]
    refused: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """``to a@x, b@y; refused: c@z (550 ...)``."""
        text = f"to {', '.join(self.accepted)}" if self.accepted else "to no one"
        if self.refused:
            text += "; refused: " + ", ".join(f"{address} ({reply})" for address, reply in self.refused.items())
        return text


@dataclass(frozen=True)
class SMTPSettings:
    """The deployment's SMTP server. Build it with :meth:`from_config`."""

    host: str
    from_address: str
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    ca_file: str | None = None
    #: TLS with certificate and hostname checks (the system's authorities, or ``ca_file``'s).
    tls: ssl.SSLContext = field(default_factory=ssl.create_default_context, repr=False, compare=False)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SMTPSettings:
        """Settings from the ``notify.smtp`` mapping of a facility's configuration::

            {"host": "smtp.example.org", "port": 587, "security": "starttls",
             "username": "skyportal", "password_file": "/etc/facility-apis/smtp.password",
             "from_address": "skyportal@example.org", "timeout": 30, "ca_file": null}

        ``security`` is ``starttls`` (default; port 587), ``ssl`` (port 465) or ``none`` (port
        25); ``password`` may be given directly or read from ``password_file`` (one line).
        ``ConfigurationError`` names the key and the rule (never the password)."""
        config = settings_mapping(config, "notify.smtp", _SETTINGS)
        host = config.get("host")
        if not isinstance(host, str) or not _HOST.fullmatch(host):
            raise ConfigurationError("notify.smtp.host must be a host name or an IP address (no scheme, user or path)")
        security = config.get("security", "starttls")
        if security not in SECURITY:
            raise ConfigurationError(f"notify.smtp.security must be one of {', '.join(SECURITY)}")
        port = config.get("port", DEFAULT_PORTS[security])
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigurationError("notify.smtp.port must be an integer from 1 to 65535")
        sender = config.get("from_address")
        if not isinstance(sender, str) or not ADDRESS.fullmatch(sender):
            raise ConfigurationError("notify.smtp.from_address must be an e-mail address (name@example.org)")
        timeout = config.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
            raise ConfigurationError("notify.smtp.timeout must be a number of seconds in (0, 600]")
        password = _password(config)
        username = config.get("username")
        if username is not None and (not isinstance(username, str) or not username or any(ord(c) < 33 for c in username)):
            raise ConfigurationError("notify.smtp.username must be a non-empty string without spaces or control characters")
        if (username is None) != (password is None):
            raise ConfigurationError("notify.smtp needs both username and password to log in, or neither")
        if password is not None and security == "none" and not is_loopback(host):
            raise ConfigurationError(
                f"notify.smtp: a login may travel only inside TLS (security starttls or ssl), or to a loopback address, not in clear to {host}"
            )
        ca_file = config.get("ca_file")
        try:
            tls = ssl.create_default_context(cafile=ca_file)
        except (OSError, TypeError, ssl.SSLError) as exc:
            raise ConfigurationError(f"notify.smtp.ca_file must name a readable file of PEM certificates ({type(exc).__name__})") from None
        return cls(host.strip("[]"), sender, port, security, username, password, float(timeout), ca_file, tls)

    @property
    def url(self) -> str:
        """``smtp://host:port`` (``smtps://`` for implicit TLS): how records name the server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'smtps' if self.security == 'ssl' else 'smtp'}://{host}:{self.port}"

    @property
    def secrets(self) -> list[str]:
        return [self.password] if self.password else []

    @property
    def domain(self) -> str:
        """The sender's domain: where Message-IDs are made (no DNS lookup of our own name)."""
        return self.from_address.rsplit("@", 1)[1]


def _password(config: Mapping[str, Any]) -> str | None:
    password = secret_setting(config, "password", where="notify.smtp")
    if password is not None and (not isinstance(password, str) or not password or "\n" in password or "\r" in password):
        raise ConfigurationError("notify.smtp.password must be a non-empty single line")
    return password


def _reply(code: Any, text: Any) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return " ".join(f"{code} {message}".split())


class _Session:
    """One SMTP conversation; every failure raised as the typed error that says whether the
    message may have arrived. Messages are masked with ``redactor``."""

    def __init__(self, settings: SMTPSettings, redactor: Redactor):
        self.settings, self.redactor = settings, redactor
        self.client: smtplib.SMTP | None = None

    def _where(self) -> str:
        return f"the SMTP server {self.settings.host}:{self.settings.port}"

    def open(self) -> None:
        settings = self.settings
        context = settings.tls
        # The EHLO name is the sender's domain: smtplib's default would look our own name up.
        try:
            if settings.security == "ssl":
                self.client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context, local_hostname=settings.domain)
            else:
                self.client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout, local_hostname=settings.domain)
            self.client.ehlo()
            if settings.security == "starttls":
                if not self.client.has_extn("starttls"):
                    raise RemoteError(f"{self._where()} does not offer STARTTLS, which this deployment requires", permanent=True)
                self.client.starttls(context=context)
                self.client.ehlo()
            if settings.username is not None:
                self.client.login(settings.username, settings.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise RemoteError(self.redactor.text(f"{self._where()} refused the login ({_reply(exc.smtp_code, exc.smtp_error)})"), permanent=True) from None
        except ssl.SSLError as exc:
            raise RemoteError(self.redactor.text(f"TLS with {self._where()} failed: {exc.reason or type(exc).__name__}"), permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            raise RemoteError(self.redactor.text(f"{self._where()} answered {_reply(exc.smtp_code, exc.smtp_error)}")) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise FacilityUnavailable(f"could not reach {self._where()}: {type(exc).__name__}", sent=False) from None

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> MailReceipt:
        assert self.client is not None
        try:
            refused = self.client.send_message(message, from_addr=self.settings.from_address, to_addrs=list(recipients))
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
        except smtplib.SMTPSenderRefused as exc:
            raise RemoteError(f"{self._where()} refused the sender address ({_reply(exc.smtp_code, exc.smtp_error)})", permanent=True) from None
        except smtplib.SMTPDataError as exc:
            raise Rejected(f"{self._where()} refused the message ({_reply(exc.smtp_code, exc.smtp_error)})") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise FacilityUnavailable(
                f"the connection to {self._where()} failed while sending ({type(exc).__name__}); the e-mail may have been delivered and was not sent again",
                sent=True,
            ) from None
        refusals = {address: _reply(*reply) for address, reply in refused.items()}
        return MailReceipt(tuple(address for address in recipients if address not in refusals), refusals)

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.client.quit()
            with contextlib.suppress(OSError):
                self.client.close()


def send_mail(settings: SMTPSettings, message: EmailMessage, recipients: Sequence[str], transport: Transport) -> MailReceipt:
    """Send ``message`` to ``recipients`` through the deployment's server and record the
    exchange in ``transport``'s open recordings. Returns the receipt when at least one recipient
    was accepted; raises ``Rejected`` when all were refused, ``FacilityUnavailable`` (with
    ``sent``) when the server could not be reached or the connection broke, ``RemoteError`` for a
    refused login, a TLS failure or a refused sender (``permanent``: only the deployment can fix
    those)."""
    redactor = Redactor(settings.secrets)
    session = _Session(settings, redactor)
    started = time.monotonic()
    receipt: MailReceipt | None = None
    error: str | None = None
    try:
        session.open()
        receipt = session.send(message, recipients)
    except (RemoteError, Rejected, FacilityUnavailable) as exc:
        error = redactor.text(str(exc))
        raise
    finally:
        session.close()
        headers = {name: str(message[name]) for name in ("From", "To", "Subject", "Message-ID", "In-Reply-To") if message[name] is not None}
        body = message.get_body(("plain",))
        transport.record_exchange(
            "SMTP",
            settings.url,
            request_headers=headers,
            request_body=body.get_content() if body is not None else None,
            status=(250 if receipt.accepted else 550) if receipt is not None else None,
            response_body=receipt.summary() if receipt is not None else None,
            elapsed=time.monotonic() - started,
            error=error,
            secrets=settings.secrets,
        )
    if not receipt.accepted:
        raise Rejected("no recipient accepted the e-mail: " + "; ".join(f"{address} ({reply})" for address, reply in receipt.refused.items()))
    return receipt
