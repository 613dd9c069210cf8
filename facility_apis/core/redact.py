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


class RedactingFilter(logging.Filter):
    """A logging filter that masks every live secret in a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_everywhere(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_everywhere(record.exc_text)
            record.exc_info = None
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


# Filters apply only to records logged on the logger itself (not to those propagated from
# children), so the filter goes on every logger that can see a URL, header or body.
THIRD_PARTY_LOGGERS = ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry", "urllib3.response")


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


install_log_filter(*THIRD_PARTY_LOGGERS)
