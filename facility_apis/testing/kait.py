"""KAIT's request script (``/cgi-bin/internal/process_kait_ztf_request.py``) on loopback.

What it speaks (SkyPortal's ``kait.py`` and the exchange its test cassette recorded, an Apache
server running the script; KAIT publishes no document of its own):

- ``POST`` with HTTP Basic authentication; a wrong or missing login is Apache's HTTP 401 HTML page;
- a JSON body ``{"name", "ra", "dec", "filters", "exposure"}`` (RA and Dec as decimal-degree
  text, the filter letters run together, ``long`` or ``short``);
- an accepted request: HTTP 200 ``{"success": "true", "message": "The Command Completed
  Successfully"}`` between blank lines, as recorded;
- a refused one: also HTTP 200, ``{"success": "false", "message": <reason>}``; how the real
  script words its refusals is not published, so :meth:`error_text_next` makes the next answer a
  plain error text (HTTP 200) instead.

``received`` lists the bodies of the requests accepted.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

from .server import LoopbackHandler, LoopbackServer

PATH = "/cgi-bin/internal/process_kait_ztf_request.py"
FILTERS = set("UgrizBVRI")
UNAUTHORIZED = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>401 Unauthorized</title></head><body><h1>Unauthorized</h1>'
    "<p>This server could not verify that you are authorized to access the document requested.</p></body></html>"
)


class KAITEmulator(LoopbackServer):
    """The request script at ``url`` + :data:`PATH`, for the logins ``users`` (name → password)."""

    def __init__(self, users: dict[str, str]) -> None:
        super().__init__()
        self.users = dict(users)
        self._lock = threading.Lock()
        self._error_texts: list[str] = []
        self.received: list[dict[str, Any]] = []

    def routes(self) -> list[Any]:
        return [(PATH, _ScriptHandler)]

    def error_text_next(self, text: str = "Error: could not add the target to the queue") -> None:
        """Answer the next request with ``text`` as a plain error text (HTTP 200), queuing nothing."""
        with self._lock:
            self._error_texts.append(text)

    def _take_error_text(self) -> str | None:
        with self._lock:
            return self._error_texts.pop(0) if self._error_texts else None


def _refusal(body: Any) -> str | None:
    """Why the script would refuse ``body``, or None."""
    if not isinstance(body, dict) or set(body) != {"name", "ra", "dec", "filters", "exposure"}:
        return "the request must hold name, ra, dec, filters and exposure"
    try:
        ra, dec = float(body["ra"]), float(body["dec"])
    except (TypeError, ValueError):
        return "ra and dec must be decimal degrees"
    if not (0 <= ra < 360 and -90 <= dec <= 90):
        return "ra or dec out of range"
    if not isinstance(body["filters"], str) or not body["filters"] or not set(body["filters"]) <= FILTERS:
        return "filters must be letters of UgrizBVRI"
    if body["exposure"] not in ("long", "short"):
        return "exposure must be long or short"
    return None


class _ScriptHandler(LoopbackHandler):
    @property
    def kait(self) -> KAITEmulator:
        return self.server  # type: ignore[return-value]

    def _login_ok(self) -> bool:
        header = self.request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return self.kait.users.get(user) == password

    def post(self) -> None:
        if not self._login_ok():
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Basic realm="KAIT"')
            self.set_header("Content-Type", "text/html; charset=iso-8859-1")
            self.finish(UNAUTHORIZED)
            return
        text = self.kait._take_error_text()
        self.set_header("Content-Type", "application/json")
        if text is not None:
            self.set_header("Content-Type", "text/plain")
            self.finish(text + "\n")
            return
        try:
            body = json.loads(self.request.body or b"")
        except ValueError:
            body = None
        reason = _refusal(body)
        if reason is not None:
            self.finish("\n" + json.dumps({"success": "false", "message": reason}) + "\n")
            return
        with self.kait._lock:
            self.kait.received.append(body)
        self.finish("\n" + json.dumps({"success": "true", "message": "The Command Completed Successfully"}) + "\n")
