"""What SEDM's intake answers, and what each answer means.

SEDM's intake (``add_request`` in ``web/sedm_flask.py`` of SEDM's ``sedmpy``) answers every
request with HTTP 200 and the text ``Content-type: text/html\\n <title>MESSAGE</title>``, where
MESSAGE is the verdict of ``marshals/watcher.process_new_request``:

- ``Accepted Request`` / ``Rejected Request`` for a new request;
- ``Accepted Edit``; ``Rejected Edit`` (the old request was canceled, the new one not made);
  ``Rejected Edit Deletion, ACTIVE`` (nothing changed: no request of that id could be canceled,
  because it is being observed, ACTIVE, or because SEDM has none);
- ``Accepted Deletion``; ``Rejected Deletion, ACTIVE`` (as for an edit: ACTIVE, or none);
- ``Invalid Formatting of Request`` for a body it cannot read; the text of an exception raised
  while processing (e.g. a missing key).

SkyPortal's class tests ``"accepted" in body.lower()`` and compares the ACTIVE texts, written in
mixed case, with the lower-cased body, so they never match; here every message is read
regardless of case.
"""

from __future__ import annotations

import html
import re
from enum import Enum

import requests

from ...core.answers import body_line, expect, one_line
from ...core.errors import RemoteError

SERVICE = "SEDM"
_ANSWER = re.compile(r"\s*content-type:\s*text/html\s*<title>(.*?)</title>\s*", re.IGNORECASE | re.DOTALL)


class Verdict(Enum):
    ACCEPTED = "accepted"
    #: An edit or a deletion found nothing it could cancel: ACTIVE, or unknown at SEDM.
    ACTIVE = "active"
    #: An edit canceled the old request but did not make the new one.
    EDIT_LOST = "edit lost"
    INVALID = "invalid"
    REJECTED = "rejected"


class UnreadableAnswer(RemoteError):
    """SEDM answered without its message (another page, an empty body)."""


def message(response: requests.Response) -> str:
    """SEDM's message from an answer; ``expect``'s errors for a status other than 200, and
    ``UnreadableAnswer`` for a 200 that does not carry SEDM's message."""
    expect(response, 200, service=SERVICE)
    match = _ANSWER.fullmatch(response.text or "")
    if match is None:
        raise UnreadableAnswer(f"{SERVICE} answered HTTP 200 without its verdict ({body_line(response)})", http_status=200)
    return one_line(html.unescape(match.group(1)))


def verdict(text: str) -> Verdict:
    """What SEDM's message means, whatever its case."""
    lowered = text.lower()
    if lowered.startswith("accepted"):
        return Verdict.ACCEPTED
    if lowered in ("rejected deletion, active", "rejected edit deletion, active"):
        return Verdict.ACTIVE
    if lowered == "rejected edit":
        return Verdict.EDIT_LOST
    if lowered == "invalid formatting of request":
        return Verdict.INVALID
    return Verdict.REJECTED
