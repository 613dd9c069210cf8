"""Kowalski's ZTF trigger endpoints (``/api/triggers/ztf`` and ``/api/triggers/ztf.test``) on loopback.

What it speaks (Kowalski, ``kowalski/api/handlers/ztf.py``, ``handlers/base.py`` and
``middlewares.py``; the scheduler behind it as Kowalski's handler reads it):

- answers are ``{"status": "success", "message": ..., "data": ...}`` (HTTP 200) or
  ``{"status": "error", "message": ...}``;
- ``Authorization: Bearer <token>`` (or the bare token): an unknown token is **400** ``token is
  invalid``, an expired one 400 ``token has expired``; no token 401 and a token of a user who is
  not the admin 403 (the error middleware then gives the reason phrase as the message);
- ``PUT``: the body must hold ``queue_name`` (text), ``validity_window_mjd`` (numbers),
  ``targets`` (objects), ``queue_type`` and ``user`` (text), else 400 ``ValidationError: ...``;
  each target needs the keys of Kowalski's OpenAPI text, else the scheduler refuses (400 ``ZTF
  trigger attempt rejected: ...``); a queue name the scheduler holds is **409** ``Submitted queue
  <name> already exists``; otherwise 200 ``submitted`` and the queue is held;
- ``GET`` (a JSON body with optional ``queue_name``/``user``, or none): 200 ``retrieved`` with
  ``data``, the held queues: ``queue_name``, ``queue_type``, ``validity_window_mjd``, ``user`` and
  ``queue``, the JSON text of its rows;
- ``DELETE`` with ``queue_name`` and ``user``: 200 ``deleted``, or 400 ``ZTF queue delete attempt
  rejected: ...`` for a queue the scheduler does not hold;
- the ``.test`` twins check the body the same way and touch nothing (``submitted``,
  ``retrieved`` with ``[{"queue_name": "test"}]``, ``deleted``).

Knobs besides the server's faults: :meth:`reject_next` (the scheduler refuses the next queue),
:meth:`lose_answer_next` (the next queue is held but the connection drops before the answer),
``expired`` tokens.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import tornado.web

from .server import LoopbackHandler, LoopbackServer

TARGET_KEYS = ("request_id", "program_id", "field_id", "ra", "dec", "filter_id", "exposure_time", "program_pi", "subprogram_name")
REASONS = {401: "Unauthorized", 403: "Forbidden"}


class KowalskiEmulator(LoopbackServer):
    """Kowalski at ``url``. ``tokens`` maps a token to its user; ``admin`` is the only user who may
    trigger (Kowalski's ``admin_required``); ``expired`` tokens are refused as expired."""

    def __init__(self, tokens: dict[str, str], *, admin: str = "admin", expired: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.tokens = dict(tokens)
        self.admin = admin
        self.expired = set(expired)
        self._lock = threading.Lock()
        self._queues: dict[str, dict[str, Any]] = {}
        self._reject: list[str] = []
        self._lose_answers = 0

    def routes(self) -> list[Any]:
        return [(r"/api/triggers/ztf", _TriggerHandler, {"test": False}), (r"/api/triggers/ztf\.test", _TriggerHandler, {"test": True})]

    @property
    def queues(self) -> dict[str, dict[str, Any]]:
        """The queues the scheduler holds, by name (copies)."""
        with self._lock:
            return json.loads(json.dumps(self._queues))

    def reject_next(self, reason: str = "queue refused by the scheduler") -> None:
        """The scheduler refuses the next queue put to it (Kowalski: 400 ``ZTF trigger attempt rejected``)."""
        with self._lock:
            self._reject.append(reason)

    def lose_answer_next(self) -> None:
        """The next queue put is held, then the connection drops before any answer."""
        with self._lock:
            self._lose_answers += 1

    def _put(self, body: dict[str, Any]) -> tuple[int, str, bool]:
        """Hold a queue: (status, message, answer lost)."""
        name = body["queue_name"]
        with self._lock:
            if self._reject:
                return 400, f"ZTF trigger attempt rejected: {self._reject.pop(0)}", False
            if name in self._queues:
                return 409, f"Submitted queue {name} already exists", False
            self._queues[name] = {
                "queue_name": name,
                "queue_type": body["queue_type"],
                "validity_window_mjd": body["validity_window_mjd"],
                "user": body["user"],
                "queue": json.dumps(body["targets"]),
            }
            lost = self._lose_answers > 0
            self._lose_answers -= int(lost)
            return 200, "submitted", lost

    def _list(self, name: str | None, user: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(queue) for queue in self._queues.values() if name in (None, queue["queue_name"]) and user in (None, queue["user"])]

    def _delete(self, name: str) -> bool:
        with self._lock:
            return self._queues.pop(name, None) is not None


def _problem(body: Any, fields: dict[str, type | tuple[type, ...]], optional: bool = False) -> str | None:
    """Kowalski's model check (odmantic/pydantic): the first missing or mistyped field, or None."""
    if not isinstance(body, dict):
        return "ValidationError: the body must be a JSON object"
    for key, kind in fields.items():
        if key not in body:
            if optional:
                continue
            return f"ValidationError: {key}: field required"
        if not isinstance(body[key], kind) or isinstance(body[key], bool):
            return f"ValidationError: {key}: value is not a valid {getattr(kind, '__name__', 'value')}"
    return None


class _TriggerHandler(LoopbackHandler):
    def initialize(self, test: bool) -> None:
        self.test = test

    @property
    def kowalski(self) -> KowalskiEmulator:
        return self.server  # type: ignore[return-value]

    def _error(self, status: int, message: str) -> None:
        self.send_json({"status": "error", "message": REASONS.get(status, message)}, status)

    def _authorized(self) -> bool:
        header = self.request.headers.get("Authorization", "")
        token = header.split()[1] if "bearer" in header.lower() and len(header.split()) > 1 else header
        if not token:
            self._error(401, "auth required")
            return False
        if token in self.kowalski.expired:
            self._error(400, "token has expired")
            return False
        user = self.kowalski.tokens.get(token)
        if user is None:
            self._error(400, "token is invalid")
            return False
        if user != self.kowalski.admin:
            self._error(403, "admin rights required")
            return False
        return True

    def _body(self, *, required: bool = True) -> Any:
        try:
            return json.loads(self.request.body or b"")
        except ValueError as exc:
            if not required:
                return None
            self._error(400, f"JSONDecodeError: {exc}")
            raise tornado.web.Finish() from None

    def put(self) -> None:
        if not self._authorized():
            return
        body = self._body()
        problem = _problem(body, {"queue_name": str, "validity_window_mjd": list, "targets": list, "queue_type": str, "user": str})
        if problem is None and not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in body["validity_window_mjd"]):
            problem = "ValidationError: validity_window_mjd: value is not a valid float"
        if problem is None and not all(isinstance(target, dict) for target in body["targets"]):
            problem = "ValidationError: targets: value is not a valid dict"
        if problem is not None:
            self._error(400, problem)
            return
        if self.test:
            self.send_json({"status": "success", "message": "submitted"})
            return
        missing = sorted({key for target in body["targets"] for key in TARGET_KEYS if key not in target})
        if missing:
            self._error(400, f"ZTF trigger attempt rejected: targets lack {', '.join(missing)}")
            return
        status, message, lost = self.kowalski._put(body)
        if lost:
            self.request.connection.close()  # type: ignore[union-attr]
            raise tornado.web.Finish()
        if status != 200:
            self._error(status, message)
            return
        self.send_json({"status": "success", "message": message, "data": {"Content-Type": "application/json", "queue_name": body["queue_name"]}})

    def get(self) -> None:
        if not self._authorized():
            return
        body = self._body(required=False)
        if body is None:  # as Kowalski: without a JSON body, the query string
            body = {key: value for key in ("queue_name", "user") if (value := self.get_query_argument(key, None))}
        problem = _problem(body, {"queue_name": str, "user": str}, optional=True)
        if problem is not None:
            self._error(400, problem)
            return
        if self.test:
            self.send_json({"status": "success", "message": "submitted", "data": [{"queue_name": "test"}]})
            return
        self.send_json({"status": "success", "message": "retrieved", "data": self.kowalski._list(body.get("queue_name"), body.get("user"))})

    def delete(self) -> None:
        if not self._authorized():
            return
        body = self._body()
        problem = _problem(body, {"queue_name": str, "user": str})
        if problem is not None:
            self._error(400, problem)
            return
        if not self.test and not self.kowalski._delete(body["queue_name"]):
            self._error(400, f"ZTF queue delete attempt rejected: no queue named {body['queue_name']}")
            return
        self.send_json({"status": "success", "message": "deleted", "data": {}})
