"""A plan sent to (and removed from) a telescope queue's HTTP API.

Protocol. The sending side is SkyPortal's MMA (``facility_apis/observation_plan.py``, ``send``,
API mode): ``PUT <endpoint>/api/obsplans`` with the plan document as JSON and
``Authorization: token <api_token>``; SkyPortal reads ``200`` as "submitted to telescope queue"
and anything else as a rejection. SkyPortal's MMA removes nothing; the receiving side of this
body is modelled on Kowalski's queue API, which takes the same body (its ``/api/triggers/ztf``
handler): answers in SkyPortal's envelope ``{"status": "success" | "error", "message", "data"}``;
a ``PUT`` of a queue name it already holds is refused with ``409``; ``DELETE`` with the JSON body
``{"queue_name", "user"}`` removes a queue; ``GET`` (``?queue_name=&user=``) lists the queues held,
``data`` a list of queue documents.

A ``PUT`` that may have arrived is never repeated blindly (``repeatable=False``). When the queue
answers ``409``, the queue it holds under that name is read back: the same plan (an earlier
attempt whose answer was lost) counts as delivered; a different one is refused with the reason.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from ...core.answers import expect, json_object
from ...core.errors import Rejected, RemoteError, RemoteNotFound
from ...core.outcome import Outcome, State
from ...core.plan import ObservationPlan
from ...core.transport import HTTPCall, Transport

PATH = "/api/obsplans"
SERVICE = "the plan queue"
REMOTE = "api"


def queue_url(endpoint: str) -> str:
    """``<endpoint>/api/obsplans``, or ``endpoint`` itself when it already ends so."""
    base = endpoint.rstrip("/")
    return base if base.endswith(PATH) else base + PATH


def _headers(altdata: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"token {altdata['api_token']}", "Accept": "application/json"}


def submission(plan: ObservationPlan, altdata: dict[str, Any]) -> HTTPCall:
    """The ``PUT`` of the plan document (not sent)."""
    headers = {**_headers(altdata), "Content-Type": "application/json"}
    return HTTPCall("PUT", queue_url(altdata["endpoint"]), headers=headers, data=plan.to_json(), repeatable=False)


def _host(altdata: dict[str, Any]) -> str:
    return urlsplit(altdata["endpoint"]).netloc


def _success(response: requests.Response, what: str) -> dict[str, Any]:
    """The envelope of a successful answer; ``RemoteError`` for anything else (an empty body, an
    HTML page, ``status`` other than ``success``)."""
    envelope = json_object(response, service=SERVICE, what=what)
    if envelope.get("status") != "success":
        raise RemoteError(f"{SERVICE} answered HTTP {response.status_code} without its success envelope", http_status=response.status_code)
    return envelope


def submit(plan: ObservationPlan, altdata: dict[str, Any], transport: Transport) -> Outcome:
    """Send the plan; ``submitted`` with ``remote_id`` ``api:<queue name>``."""
    response = transport.send(submission(plan, altdata))
    if response.status_code == 409:
        return _already_held(plan, altdata, transport)
    expect(response, 200, 201, service=SERVICE)
    try:
        _success(response, "the answer to the plan")
    except RemoteError as exc:
        raise RemoteError(f"{exc}; the plan may have been queued and was not sent again (check the queue before sending it again)") from None
    detail = f"queued as {plan.queue_name} at {_host(altdata)} ({len(plan.targets)} planned observations)"
    return Outcome(State.SUBMITTED, detail, remote_id=f"{REMOTE}:{plan.queue_name}")


def held(queue_name: str, user: str, altdata: dict[str, Any], transport: Transport) -> dict[str, Any] | None:
    """The queue document the receiver holds under ``queue_name``, or None."""
    response = transport.request("GET", queue_url(altdata["endpoint"]), headers=_headers(altdata), params={"queue_name": queue_name, "user": user})
    expect(response, 200, service=SERVICE)
    queues = _success(response, "the list of queues").get("data")
    if not isinstance(queues, list):
        raise RemoteError(f"{SERVICE} listed its queues without a list in data", http_status=response.status_code)
    return next((queue for queue in queues if isinstance(queue, dict) and queue.get("queue_name") == queue_name), None)


def _same(held_document: dict[str, Any], plan: ObservationPlan) -> bool:
    document = plan.document()
    return all(held_document.get(key) == value for key, value in document.items())


def _already_held(plan: ObservationPlan, altdata: dict[str, Any], transport: Transport) -> Outcome:
    """The queue refused the name as taken: ours (an earlier attempt arrived) or another plan's."""
    existing = held(plan.queue_name, plan.user, altdata, transport)
    if existing is not None and _same(existing, plan):
        detail = f"already queued as {plan.queue_name} at {_host(altdata)} by an earlier attempt ({len(plan.targets)} planned observations)"
        return Outcome(State.SUBMITTED, detail, remote_id=f"{REMOTE}:{plan.queue_name}")
    raise Rejected(f"{_host(altdata)} already holds a different plan named {plan.queue_name}: remove it there, or make the plan under another queue name")


def remove(queue_name: str, user: str, altdata: dict[str, Any], transport: Transport) -> Outcome:
    """Remove the queue; ``deleted`` whether it was removed now or was gone already."""
    response = transport.request("DELETE", queue_url(altdata["endpoint"]), headers=_headers(altdata), json={"queue_name": queue_name, "user": user})
    try:
        expect(response, 200, service=SERVICE)
    except RemoteNotFound:
        return Outcome(State.DELETED, f"{_host(altdata)} no longer held {queue_name}", remote_id=f"{REMOTE}:{queue_name}")
    _success(response, "the answer to the removal")
    return Outcome(State.DELETED, f"removed {queue_name} from the queue at {_host(altdata)}", remote_id=f"{REMOTE}:{queue_name}")
