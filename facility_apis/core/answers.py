"""Reading a facility's HTTP answer: the one place that maps a status code to an outcome-bearing
error, and turns any error body into one readable line.

A facility calls :func:`expect` on every answer it needs to succeed, and :func:`json_body` on
every body it must parse::

    response = transport.send(call)
    expect(response, 201, service="ATLAS")          # anything else raises (below)
    task = json_body(response, service="ATLAS", what="the new task")

========================  =====================================================================
answer                    raised (and what ``perform`` makes of it)
========================  =====================================================================
an expected status        nothing: the response is returned
3xx                       ``RemoteError``: redirects are never followed
401, 403                  ``CredentialsRefused``: the allocation's credentials were refused
404                       ``RemoteNotFound`` (a ``RemoteError``; a facility may catch it)
other 4xx                 ``Rejected`` whose message is the facility's reason, in its words
5xx, other 2xx            ``RemoteError`` with the status and the body's line; a 5xx to a call
                          that is not repeatable (a POST) with ``maybe_done``: the facility may
                          have carried it out before failing, so ``perform`` makes a submission
                          ``maybe_sent`` (``failed: ...``), never sent again blindly
========================  =====================================================================

(429 and a lasting 502/503/504 never get here: the transport raises ``Throttled`` and
``FacilityUnavailable``.)
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import requests

from .errors import CredentialsRefused, Rejected, RemoteError, RemoteNotFound
from .transport import answered_repeatable

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HIDDEN = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_MARKUP = re.compile(r"<\s*(!doctype|html|head|body|title|div|p|h\d|br|table|pre)\b", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_DETAIL_KEYS = ("detail", "message", "error", "errors", "error_description", "non_field_errors", "msg", "reason")


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with all white space folded to single spaces, cut to ``limit`` characters if given.

    Nothing here cuts by default: a cut made before the secrets are masked could leave part of a
    secret that masking no longer recognises. ``perform`` masks, then cuts the detail.
    """
    text = _SPACE.sub(" ", text).strip()
    return text if limit is None or len(text) <= limit else text[: limit - 1].rstrip() + "…"


def is_html(text: str) -> bool:
    """Whether ``text`` looks like an HTML page or fragment."""
    return bool(_MARKUP.search(text[:2048]))


def html_line(text: str) -> str:
    """An HTML page reduced to its title, else to its first line of visible text."""
    title = _TITLE.search(text)
    if title and one_line(html.unescape(_TAG.sub(" ", title.group(1)))):
        return one_line(html.unescape(_TAG.sub(" ", title.group(1))))
    visible = html.unescape(_TAG.sub("\n", _HIDDEN.sub(" ", text)))
    return next((one_line(line) for line in visible.splitlines() if line.strip()), "")


def _flatten(value: Any, field: str = "") -> list[str]:
    """JSON error bodies as ``field: message`` parts (DRF's ``{"field": ["msg"]}`` shape, nested
    objects joined with dots, the usual detail keys unprefixed)."""
    if isinstance(value, dict):
        parts: list[str] = []
        for key, item in value.items():
            named = "" if key in _DETAIL_KEYS else (f"{field}.{key}" if field else str(key))
            parts += _flatten(item, named or field)
        return parts
    if isinstance(value, list):
        return [part for item in value for part in _flatten(item, field)]
    if value is None or value == "":
        return []
    text = one_line(str(value))
    return [f"{field}: {text}" if field else text]


def _envelope(body: Any) -> Any:
    """SkyPortal's answer envelope (``{"status": "error", "message": ..., "data": ...,
    "version": ...}``, which the gateway and SkyPortal-like services share) reduced to its
    ``message`` and the field errors in ``data.errors``; any other body as it is."""
    if not (isinstance(body, dict) and body.get("status") in ("error", "success") and isinstance(body.get("message"), str)):
        return body
    if not set(body) <= {"status", "message", "data", "version"}:
        return body
    errors = body.get("data", {}).get("errors") if isinstance(body.get("data"), dict) else None
    message = body["message"]
    return [message, *[e for e in errors if isinstance(e, str) and e not in message]] if isinstance(errors, list) else message


def body_line(response: requests.Response) -> str:
    """Any answer body as one readable line: SkyPortal's envelope read for its message, JSON
    error fields flattened (``field: message; ...``), an HTML page reduced to its title or first
    text line, plain text to its first line; an empty body reads ``(empty body)``. Never markup;
    not cut (see :func:`one_line`)."""
    text = response.text or ""
    if not text.strip():
        return "(empty body)"
    try:
        parts = _flatten(_envelope(json.loads(text)))
    except ValueError:
        parts = None
    if parts is not None:
        merged: dict[str, list[str]] = {}
        for part in parts:
            field, sep, message = part.partition(": ")
            key = field if sep else ""
            merged.setdefault(key, []).append(message if sep else part)
        joined = "; ".join((f"{key}: " if key else "") + " ".join(messages) for key, messages in merged.items())
        return one_line(joined) or "(empty JSON body)"
    if is_html(text):
        return one_line(f"an HTML page: {html_line(text)}" if html_line(text) else "an HTML page")
    return next(one_line(line) for line in text.splitlines() if line.strip())


def expect(response: requests.Response, *statuses: int, service: str) -> requests.Response:
    """``response`` if its status is one of ``statuses`` (default: 200); else raise the error the
    table in the module docstring names. ``service`` names the facility in the message."""
    expected = statuses or (200,)
    code = response.status_code
    if code in expected:
        return response
    line = body_line(response)
    if 300 <= code < 400:
        raise RemoteError(f"{service} answered with a redirect (HTTP {code}), which is not followed", http_status=code)
    if code in (401, 403):
        raise CredentialsRefused(f"{service} refused the credentials (HTTP {code}: {line})", http_status=code)
    if code == 404:
        raise RemoteNotFound(f"{service} answered HTTP 404 (not found): {line}", http_status=code)
    if 400 <= code < 500:
        raise Rejected(line if line != "(empty body)" else f"{service} refused the request (HTTP {code})", http_status=code)
    if 200 <= code < 300:
        wanted = " or ".join(map(str, expected))
        raise RemoteError(f"{service} answered HTTP {code} where {wanted} was expected: {line}", http_status=code)
    raise RemoteError(f"{service} answered HTTP {code}: {line}", http_status=code, maybe_done=code >= 500 and not answered_repeatable(response))


def not_html(response: requests.Response, *, service: str, what: str) -> requests.Response:
    """``response``, unless its body is an HTML page where the service answers with data (a
    proxy's or a maintenance page, even with a 2xx status): then a ``RemoteError`` naming the
    page by its title. Not permanent: such pages come and go."""
    text = response.text or ""
    if is_html(text):
        title = html_line(text)
        found = f"an HTML page ({title})" if title else "an HTML page"
        raise RemoteError(one_line(f"{service} sent {found} instead of {what} (HTTP {response.status_code})"), http_status=response.status_code)
    return response


def json_body(response: requests.Response, *, service: str, what: str = "its answer") -> Any:
    """The parsed JSON of ``response``; ``RemoteError`` saying what came instead (an HTML page
    with its title, an empty body, malformed JSON)."""
    text = response.text or ""
    try:
        return json.loads(text)
    except ValueError:
        pass
    not_html(response, service=service, what=f"JSON for {what}")
    if not text.strip():
        raise RemoteError(f"{service} sent an empty body instead of JSON for {what} (HTTP {response.status_code})", http_status=response.status_code)
    raise RemoteError(f"{service} sent malformed JSON for {what} (HTTP {response.status_code})", http_status=response.status_code)


def json_object(response: requests.Response, *, service: str, what: str = "its answer") -> dict[str, Any]:
    """:func:`json_body`, which must be a JSON object."""
    body = json_body(response, service=service, what=what)
    if not isinstance(body, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(body), "a number")
        raise RemoteError(f"{service} sent {kind} where a JSON object was expected for {what}", http_status=response.status_code)
    return body
