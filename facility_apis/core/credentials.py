"""Rules every allocation's altdata obeys, whatever the facility, checked when it is saved.

- A secret (a ``writeOnly`` field) travels in an HTTP header, so it must be able to: no control
  characters (CR, LF and NUL would split or cut the header), only Latin-1 characters (what an
  HTTP/1.1 header carries, and what ``requests`` encodes Basic credentials in), no surrounding
  whitespace (stripped on the wire), at most ``SECRET_MAX_LENGTH`` characters (servers refuse
  larger headers). It is at least ``SECRET_MIN_LENGTH`` characters long: a shorter value cannot
  be told apart from ordinary text, so masking it would garble every log line and record that
  happens to contain it (whether a longer password is strong enough is the facility's call).
- A secret a facility never sends in a header (``Facility.secrets_in_bodies``: an SSH private
  key, a password posted in a form) keeps only the length floor, no NUL, and at most
  ``BODY_SECRET_MAX_LENGTH`` characters: it may hold line breaks and any character.
- No altdata value is a URL carrying a user name or password (``https://user:pass@host``): it
  would be stored and shown in clear; credentials belong in their own ``writeOnly`` fields.

Messages name the rule, never the value (RFC 9110 §5.5 for what a field value may hold).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import FieldError

SECRET_MIN_LENGTH = 6
SECRET_MAX_LENGTH = 4096
BODY_SECRET_MAX_LENGTH = 65536
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def body_secret_rule(value: str) -> str | None:
    """Why ``value`` cannot serve as a secret that never travels in a header, in words; None when
    it can."""
    if "\x00" in value:
        return "must not contain the NUL character"
    if len(value) < SECRET_MIN_LENGTH:
        return f"must be at least {SECRET_MIN_LENGTH} characters long: a shorter value could not be told apart from ordinary text to be masked"
    if len(value) > BODY_SECRET_MAX_LENGTH:
        return f"must be at most {BODY_SECRET_MAX_LENGTH} characters long"
    return None


def secret_rule(value: str) -> str | None:
    """Why ``value`` cannot serve as a secret sent in a header, in words; None when it can."""
    if _CONTROL.search(value):
        return "must not contain control characters (CR, LF, NUL, tab, ...): it travels in an HTTP header"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "must be made of Latin-1 characters (printable ASCII is safest): it travels in an HTTP header"
    if value != value.strip():
        return "must not begin or end with a space: it travels in an HTTP header, where the space is lost"
    if len(value) < SECRET_MIN_LENGTH:
        return f"must be at least {SECRET_MIN_LENGTH} characters long: a shorter value could not be told apart from ordinary text to be masked"
    if len(value) > SECRET_MAX_LENGTH:
        return f"must be at most {SECRET_MAX_LENGTH} characters long: it travels in an HTTP header"
    return None


def carries_userinfo(value: str) -> bool:
    """Whether ``value`` is a URL with a user name or password in it."""
    if not _URL.match(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.username is not None or parts.password is not None or "@" in parts.netloc


def credential_errors(altdata: Mapping[str, Any], secret_fields: Iterable[str], body_secrets: Iterable[str] = ()) -> list[FieldError]:
    """How ``altdata``'s top-level values break the rules above, one error per field
    (paths ``$.<key>``); ``body_secrets`` are the secrets never sent in a header."""
    secret, in_bodies = set(secret_fields), set(body_secrets)
    errors = []
    for key, value in altdata.items():
        if not isinstance(value, str):
            continue
        reason = (body_secret_rule(value) if key in in_bodies else secret_rule(value)) if key in secret else None
        if reason is None and carries_userinfo(value):
            reason = "must not carry a user name or password (credentials go in their own fields, never in a URL)"
        if reason is not None:
            errors.append(FieldError(f"$.{key}", reason))
    return errors
