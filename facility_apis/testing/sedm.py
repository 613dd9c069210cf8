"""SEDM's request intake on loopback, and its robot reporting back to SkyPortal.

Source: SEDM's own ``sedmpy`` (github.com/scizen9/sedmpy): ``web/sedm_flask.py`` (the
``add_request`` and ``add_fritz`` routes), ``marshals/watcher.py`` (``process_new_request``,
``delete_request_entry``, ``create_request_entry``) and ``marshals/interface.py``
(``update_status_request``, the robot's status post):

- ``POST /add_request`` reads the request document from a raw JSON body or from the multipart
  upload ``jsonfile``; with neither it answers ``Invalid Formatting of Request``; a body that is not
  JSON is an uncaught error (Flask's HTML 500 page). Every other answer is HTTP 200 with the text
  ``Content-type: text/html\\n <title>MESSAGE</title>``;
- ``status`` ``new``: the request is made (``Accepted Request``), or not (``Rejected Request``);
  an error while reading it (a missing key) answers the error's text (a ``KeyError``'s:
  ``'programname'``); an unknown ``programname`` is filed under SEDM's general program;
- ``status`` ``delete``: every request of that ``requestid`` (SEDM's ``marshal_id``) that is not
  ACTIVE is canceled: ``Accepted Deletion`` when one was, else ``Rejected Deletion, ACTIVE``
  (also when SEDM has none of that id);
- ``status`` ``edit``: a deletion as above, then a new request: ``Accepted Edit``,
  ``Rejected Edit`` (canceled, not remade) or ``Rejected Edit Deletion, ACTIVE``;
- ``POST /add_fritz`` only files the document: ``Accepted Fritz CGI``, or ``ERROR`` without one;
- the robot posts ``{"new_status", "followup_request_id": <requestid>}`` to the marshal's status
  URL (SkyPortal's ``/api/facility``) with ``Authorization: token <token>``: ``Completed
  Automatically <YYYYMMDDTHH:MM:SS>`` when a spectrum is reduced, ``Expired`` when the window
  passed unobserved (``fritz/fritz.py``, ``db/SedmDb.py``).

Test knobs: ``observe(requestid)`` marks a request ACTIVE (being observed), ``complete()`` and
``expire()`` end it and have the robot report it, ``refuse_next()`` makes the next creations
fail (``Rejected Request``/``Rejected Edit``), plus ``faults`` and ``down()`` of
:class:`~facility_apis.testing.server.LoopbackServer`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..core.transport import Transport
from ..skyportal.client import SkyPortalClient
from .network import loopback_egress
from .server import LoopbackHandler, LoopbackServer

FLASK_500 = (
    "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"
    "<p>The server encountered an internal error and was unable to complete your request. Either the server is "
    "overloaded or there is an error in the application.</p>\n"
)
#: What ``create_request_entry`` reads from a new request.
READ_ON_CREATE = (
    "username", "sourcename", "ra", "dec", "prior_photometry", "priority", "programname", "startdate", "enddate", "Followup", "Filters",
    "exptime", "requestid",
)  # fmt: skip


def answer(message: str) -> str:
    """SEDM's answer text around ``message``."""
    return f"Content-type: text/html\n <title>{message}</title>"


@dataclass
class Entry:
    """A request in SEDM's database: its ``marshal_id`` (the document's ``requestid``)."""

    id: int
    marshal_id: int
    document: dict[str, Any]
    status: str = "PENDING"


class SEDMIntakeEmulator(LoopbackServer):
    """SEDM's intake. ``skyportal_url``/``skyportal_token``: where and as whom the robot reports
    (SkyPortal's ``/api/facility``); ``robot_reports`` lists ``(requestid, status, error)``."""

    def __init__(self, *, skyportal_url: str | None = None, skyportal_token: str | None = None) -> None:
        super().__init__()
        self.skyportal_url, self.skyportal_token = skyportal_url, skyportal_token
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._refusals = 0
        self.documents: list[dict[str, Any]] = []
        self.filed: list[dict[str, Any]] = []
        self.robot_reports: list[tuple[int, str, str | None]] = []

    def routes(self) -> list[Any]:
        return [(r"/add_request", AddRequestHandler), (r"/add_fritz", AddFritzHandler)]

    # -- what SEDM holds ------------------------------------------------------------------------

    def entries(self, marshal_id: int | None = None) -> list[Entry]:
        with self._lock:
            return [entry for entry in self._entries if marshal_id is None or entry.marshal_id == marshal_id]

    def refuse_next(self, count: int = 1) -> None:
        """The next ``count`` creations fail (``Rejected Request``, or ``Rejected Edit``)."""
        with self._lock:
            self._refusals += count

    def observe(self, marshal_id: int) -> None:
        """The robot starts observing the request: it is ACTIVE, so it cannot be edited or deleted."""
        self._set(marshal_id, "ACTIVE")

    def complete(self, marshal_id: int, status: str | None = None) -> str | None:
        """The request is done; the robot reports ``status`` (default ``Completed Automatically
        <now>``). Returns the report's error, or ``None`` when SkyPortal took it."""
        self._set(marshal_id, "COMPLETED")
        return self.report(marshal_id, status or "Completed Automatically " + time.strftime("%Y%m%dT%H:%M:%S", time.gmtime()))

    def expire(self, marshal_id: int) -> str | None:
        self._set(marshal_id, "EXPIRED")
        return self.report(marshal_id, "Expired")

    def report(self, marshal_id: int, status: str) -> str | None:
        """The robot's status post to SkyPortal (``update_status_request``)."""
        if not (self.skyportal_url and self.skyportal_token):
            raise RuntimeError("the robot needs skyportal_url and skyportal_token")
        with Transport(retries=0, egress=loopback_egress(self.skyportal_url)) as transport:
            try:
                SkyPortalClient(self.skyportal_url, self.skyportal_token, transport).post_status(marshal_id, status)
                error = None
            except Exception as exc:  # noqa: BLE001 - the robot logs and carries on, as SEDM's does
                error = str(exc)
        with self._lock:
            self.robot_reports.append((marshal_id, status, error))
        return error

    def _set(self, marshal_id: int, status: str) -> None:
        with self._lock:
            for entry in self._entries:
                if entry.marshal_id == marshal_id and entry.status not in ("CANCELED", "COMPLETED", "EXPIRED"):
                    entry.status = status

    # -- process_new_request -------------------------------------------------------------------

    def process(self, content: dict[str, Any]) -> str:
        """The message SEDM answers for one document."""
        with self._lock:
            self.documents.append(content)
            try:
                action = str(content["status"]).lower()
                if action == "delete":
                    return "Accepted Deletion" if self._cancel(content) else "Rejected Deletion, ACTIVE"
                if action == "edit":
                    if not self._cancel(content):
                        return "Rejected Edit Deletion, ACTIVE"
                    return "Accepted Edit" if self._create(content) else "Rejected Edit"
                return "Accepted Request" if self._create(content) else "Rejected Request"
            except Exception as exc:  # noqa: BLE001 - SEDM answers the error's text
                return str(exc)

    def _cancel(self, content: dict[str, Any]) -> bool:
        marshal_id, canceled = int(content["requestid"]), False
        for entry in self._entries:
            if entry.marshal_id == marshal_id and entry.status != "ACTIVE":  # SEDM cancels even a canceled one again
                entry.status, canceled = "CANCELED", True
        return canceled

    def _create(self, content: dict[str, Any]) -> bool:
        for key in READ_ON_CREATE:
            content[key]
        int(float(content["exptime"]))
        marshal_id = int(content["requestid"])
        if self._refusals:
            self._refusals -= 1
            return False
        self._entries.append(Entry(len(self._entries) + 1, marshal_id, dict(content)))
        return True


class _IntakeHandler(LoopbackHandler):
    def document(self) -> dict[str, Any] | None:
        """The request document, as Flask finds it: a raw non-form body, else the upload."""
        content_type = self.request.headers.get("Content-Type", "")
        if self.request.body and not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            return json.loads(self.request.body)
        upload = self.request.files.get("jsonfile")
        if upload:
            return json.loads(upload[0]["body"])
        return None

    def reply(self, text: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(text)


class AddRequestHandler(_IntakeHandler):
    def post(self) -> None:
        try:
            content = self.document()
        except ValueError:
            return self.reply(FLASK_500, 500)
        if content is None:
            return self.reply(answer("Invalid Formatting of Request"))
        self.reply(answer(self.server.process(content)))  # type: ignore[attr-defined]

    get = post


class AddFritzHandler(_IntakeHandler):
    def post(self) -> None:
        try:
            content = self.document()
        except ValueError:
            return self.reply(FLASK_500, 500)
        if not content:
            return self.reply("ERROR")
        self.server.filed.append(content)  # type: ignore[attr-defined]
        self.reply(answer("Accepted Fritz CGI"))

    get = post
