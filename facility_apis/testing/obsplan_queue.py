"""A telescope queue's observation-plan API on loopback: ``PUT``/``GET``/``DELETE /api/obsplans``.

Protocol. SkyPortal's MMA (``facility_apis/observation_plan.py``, ``send``, API mode) sends
``PUT <protocol>://<host>:<port>/api/obsplans`` with ``Authorization: token <access_token>`` and
the JSON body ``{"targets": [{"request_id", "field_id", "ra", "dec", "filter", "exposure_time",
"program_pi"}, ...], "queue_name", "validity_window_mjd": [start, end], "queue_type", "user"}``,
and reads ``200`` as queued. The receiving side follows Kowalski's queue API for that body
(``kowalski/api/handlers/ztf.py``, ``kowalski/api/api.py``): every answer is the envelope
``{"status": "success" | "error", "message", "data"}``; ``PUT`` checks the body's fields and types
(Kowalski's ``ZTFTriggerPut`` model) and answers ``200`` ``submitted``, or ``409`` when a queue of
that name is held already; ``GET`` (``?queue_name=&user=``, both optional) lists the held queues
in ``data``; ``DELETE`` with the JSON body ``{"queue_name", "user"}`` removes one; a body larger
than the server's ``client_max_size`` (aiohttp's default, 1 MiB, which Kowalski keeps) is refused
with ``413``; an unknown or missing token gets ``401``. Kowalski answers a ``DELETE`` of a queue it
does not hold with whatever the mountain says; this emulator answers ``404``.

Knobs: ``tokens`` (the accepted tokens), ``max_body``, ``lose_answer_next()`` (accept the next
``PUT``, then close the connection without answering: a plan that arrived unannounced), and the
``LoopbackServer`` faults. ``queues`` shows what is held.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import tornado.web

from .server import LoopbackHandler, LoopbackServer

PATH = "/api/obsplans"
#: aiohttp's default ``client_max_size``, which Kowalski's queue API keeps unless configured.
DEFAULT_MAX_BODY = 1024**2
_TARGET_FIELDS = {"request_id": int, "field_id": int, "ra": (int, float), "dec": (int, float), "filter": str, "exposure_time": (int, float), "program_pi": str}


def body_problems(body: Any) -> list[str]:
    """What is wrong with a ``PUT`` body (Kowalski's ``ZTFTriggerPut`` fields, SkyPortal MMA's
    target fields); empty when nothing."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    problems = []
    for key, kind in (("queue_name", str), ("queue_type", str), ("user", str), ("targets", list), ("validity_window_mjd", list)):
        if not isinstance(body.get(key), kind):
            problems.append(f"{key}: missing or not a {kind.__name__}")
    window = body.get("validity_window_mjd")
    if isinstance(window, list) and (len(window) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in window)):
        problems.append("validity_window_mjd: must be two numbers")
    for number, target in enumerate(body.get("targets") or []):
        if not isinstance(target, dict):
            problems.append(f"targets[{number}]: not an object")
            continue
        for key, kind in _TARGET_FIELDS.items():
            if not isinstance(target.get(key), kind) or isinstance(target.get(key), bool):
                problems.append(f"targets[{number}].{key}: missing or of the wrong type")
        if len(problems) > 20:
            break
    return problems


class _Handler(LoopbackHandler):
    def _token(self) -> bool:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "token" or token not in self.server.tokens:
            self.send_json({"status": "error", "message": "Unauthorized: missing or unknown token"}, 401)
            return False
        return True

    def _body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            return None

    def put(self) -> None:
        if not self._token():
            return
        if len(self.request.body) > self.server.max_body:
            self.send_json({"status": "error", "message": f"Request Entity Too Large: the maximum is {self.server.max_body} bytes"}, 413)
            return
        body = self._body()
        problems = body_problems(body)
        if problems:
            self.send_json({"status": "error", "message": "; ".join(problems)}, 400)
            return
        with self.server._lock:
            if body["queue_name"] in self.server._queues:
                self.send_json({"status": "error", "message": f"Submitted queue {body['queue_name']} already exists"}, 409)
                return
            self.server._queues[body["queue_name"]] = body
            lose = self.server._lose_next
            self.server._lose_next = False
        if lose:
            self.request.connection.close()  # type: ignore[union-attr]
            raise tornado.web.Finish()
        self.send_json({"status": "success", "message": "submitted"})

    def get(self) -> None:
        if not self._token():
            return
        name, user = self.get_query_argument("queue_name", None), self.get_query_argument("user", None)
        with self.server._lock:
            held = [q for q in self.server._queues.values() if (name is None or q["queue_name"] == name) and (user is None or q["user"] == user)]
        self.send_json({"status": "success", "message": "retrieved", "data": held})

    def delete(self) -> None:
        if not self._token():
            return
        body = self._body()
        if not isinstance(body, dict) or not isinstance(body.get("queue_name"), str) or not isinstance(body.get("user"), str):
            self.send_json({"status": "error", "message": "queue_name and user are required"}, 400)
            return
        with self.server._lock:
            removed = self.server._queues.pop(body["queue_name"], None)
        if removed is None:
            self.send_json({"status": "error", "message": f"queue {body['queue_name']} not found"}, 404)
            return
        self.send_json({"status": "success", "message": "deleted"})


class ObsPlanQueueEmulator(LoopbackServer):
    """The queue API of the module docstring on ``127.0.0.1``."""

    def __init__(self, *, tokens: set[str] | frozenset[str] = frozenset({"qu3ue-t0ken"}), max_body: int = DEFAULT_MAX_BODY):
        super().__init__()
        self.tokens = frozenset(tokens)
        self.max_body = max_body
        self._lock = threading.Lock()
        self._queues: dict[str, dict[str, Any]] = {}
        self._lose_next = False

    def routes(self) -> list[Any]:
        return [(PATH, _Handler)]

    @property
    def queues(self) -> dict[str, dict[str, Any]]:
        """The queues held, by name (copies)."""
        with self._lock:
            return json.loads(json.dumps(self._queues))

    def lose_answer_next(self) -> None:
        """Accept the next ``PUT`` and close the connection instead of answering."""
        with self._lock:
            self._lose_next = True
