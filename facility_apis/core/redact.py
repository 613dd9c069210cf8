"""Secret redaction: every secret value, in every spelling it can take on the wire, becomes ``***``.

A ``Redactor`` knows the secret values of one allocation. Live redactors are also consulted by
``RedactingFilter``, a logging filter installed on the loggers that can see URLs and bodies
(``facility_apis``, ``urllib3``), so a secret cannot reach a log line either.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import sys
import threading
import weakref
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})

_live: weakref.WeakSet[Redactor] = weakref.WeakSet()
_live_lock = threading.Lock()


def _spellings(secret: str) -> set[str]:
    """The forms a secret takes in URLs, form bodies, JSON, XML and Basic auth."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        html.escape(secret, quote=True),
        base64.b64encode(secret.encode()).decode(),
    }
    return {form for form in forms if form}


class Redactor:
    """Replaces known secret values with ``***`` in text, headers and nested data."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets: list[str] = []
        self._forms: list[str] = []
        self.add(secrets)
        with _live_lock:
            _live.add(self)

    def add(self, secrets: Iterable[str]) -> None:
        """Learn more secret values (non-strings and empty strings are ignored)."""
        forms = set(self._forms)
        for secret in secrets:
            if isinstance(secret, str) and secret and secret not in self._secrets:
                self._secrets.append(secret)
                forms |= _spellings(secret)
        # Longest first, so that a secret containing another is masked whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def secrets(self) -> list[str]:
        """The secret values this redactor masks."""
        return list(self._secrets)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def text(self, value: str) -> str:
        """``value`` with every secret spelling masked."""
        for form in self._forms:
            if form in value:
                value = value.replace(form, MASK)
        return value

    def headers(self, headers: Any) -> dict[str, str]:
        """A plain dict of headers; credential-bearing headers masked whole."""
        return {
            str(name): MASK if str(name).lower() in SENSITIVE_HEADERS else self.text(str(value))
            for name, value in dict(headers or {}).items()
        }

    def data(self, value: Any) -> Any:
        """A copy of nested JSON-like data with secrets masked in keys' values and strings."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace"))
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(item) for item in value]
        return value


def redact_everywhere(text: str) -> str:
    """Mask the secrets of every live redactor in ``text``."""
    with _live_lock:
        redactors = list(_live)
    for redactor in redactors:
        text = redactor.text(text)
    return text


# Credentials no redactor knows (an API client's token, say) in the shapes they take in a log
# line: a header quoted by an HTTP parser's complaint (tornado's "Invalid header value '...'"),
# an Authorization header written out, a token after its scheme word.
_QUOTED_HEADER = re.compile(r"(Invalid header (?:value|name)) ('[^\n]*'|\"[^\n]*\"|\S+)")
_AUTHORIZATION = re.compile(r"(?im)((?:proxy-)?authorization['\"]?\s*[:=]\s*)[^\n,}]+")
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(token|bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{16,}")


def scrub_credentials(text: str) -> str:
    """``text`` with credentials in the shapes above masked (their values are not known here)."""
    text = _QUOTED_HEADER.sub(rf"\1 {MASK}", text)
    text = _AUTHORIZATION.sub(rf"\1{MASK}", text)
    return _SCHEME_CREDENTIAL.sub(rf"\1\2{MASK}", text)


def clean(text: str) -> str:
    """What a log line may show: every live secret and every recognisable credential masked."""
    return scrub_credentials(redact_everywhere(text))


class RedactingFilter(logging.Filter):
    """A logging filter that masks every live secret, and credentials in the shapes
    ``scrub_credentials`` knows, in a record's final message and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_facility_apis_clean", False):
            return True  # already cleaned by a filter on its way here
        message = record.getMessage()
        cleaned = clean(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = clean(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = clean(record.stack_info)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        record._facility_apis_clean = True
        return True


_FILTER = RedactingFilter()


# Filters apply only to records logged on the logger itself (not to those propagated from
# children), so the filter goes on every logger that can see a URL, header or body: urllib3's,
# tornado's (its HTTP parser quotes a malformed header, token included), asyncio's (callbacks'
# tracebacks) and SQLAlchemy's (statements and their parameters when echoing). A process that
# writes logs also puts the filter on its handler (``log_to_stderr``), which every record passes.
THIRD_PARTY_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.response",
    "tornado.access",
    "tornado.application",
    "tornado.general",
    "asyncio",
    "sqlalchemy.engine.Engine",
    "sqlalchemy.pool.impl.QueuePool",
)


def install_log_filter(*names: str) -> None:
    """Attach the redacting filter to the named loggers (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def get_logger(name: str) -> logging.Logger:
    """A logger of ours, with the redacting filter attached."""
    install_log_filter(name)
    return logging.getLogger(name)


def log_to_stderr(level: int = logging.INFO) -> logging.Handler:
    """Write every logger's records at ``level`` and above to stderr, one line each, through
    the redacting filter (on the handler, so records of any logger of the process pass it)."""
    global _stderr
    root = logging.getLogger()
    if _stderr is None or _stderr not in root.handlers:
        _stderr = _StderrHandler()
        _stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        _stderr.addFilter(_FILTER)
        root.addHandler(_stderr)
    root.setLevel(level)
    return _stderr


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (a test may have swapped it)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


_stderr: logging.Handler | None = None


install_log_filter(*THIRD_PARTY_LOGGERS)
