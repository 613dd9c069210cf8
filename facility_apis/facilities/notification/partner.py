"""GENERIC's API mode: forwarding a request to another SkyPortal-like service.

Protocol (SkyPortal's own follow-up request API, which this mode forwards to, and what SkyPortal's
GENERICAPI sends): ``POST <endpoint>`` with the JSON body ``{"obj_id", "allocation_id",
"payload"}`` and ``Authorization: token <api_token>``; the answer is SkyPortal's envelope
``{"status": "success", "data": {"id": <id>}}``, whose ``data.id`` is the request's id there.
``PUT <endpoint>/<id>`` with the same body changes it, ``DELETE <endpoint>/<id>`` deletes it. An
error is ``{"status": "error", "message": ...}`` with a 4xx status; SkyPortal also answers
success with ``data.ignored`` and a ``message`` when a constraint made it skip the request. This
package's gateway speaks the same protocol (``/api/followup_request``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from ...core.answers import expect, json_object
from ...core.egress import Origin
from ...core.errors import Rejected, RemoteError, RemoteNotFound
from ...core.interface import FollowupRequest
from ...core.outcome import Outcome, State
from ...core.transport import HTTPCall, Transport

SUCCESS = (200, 201, 202)


def partner(request: FollowupRequest) -> str:
    """The partner's host, as statuses name it."""
    return Origin.of(request.allocation.altdata["endpoint"]).host or "the partner"


def _headers(request: FollowupRequest) -> dict[str, str]:
    return {"Authorization": f"token {request.allocation.altdata['api_token']}", "Accept": "application/json"}


def _body(request: FollowupRequest) -> dict[str, Any]:
    return {"obj_id": request.target.id, "allocation_id": request.allocation.id, "payload": dict(request.payload)}


def _request_url(request: FollowupRequest) -> str:
    """``<endpoint>/<remote id>``, the id percent-encoded (it cannot add a path or a query)."""
    return f"{request.allocation.altdata['endpoint'].rstrip('/')}/{quote(str(request.remote_id), safe='')}"


def submission(request: FollowupRequest) -> HTTPCall:
    """The forwarding ``POST``, not sent."""
    return HTTPCall("POST", request.allocation.altdata["endpoint"], headers=_headers(request), json=_body(request))


def _checked(response: requests.Response, host: str) -> requests.Response:
    """``response`` if it is a success, else what ``expect`` raises, a refusal naming the partner."""
    try:
        return expect(response, *SUCCESS, service=host)
    except Rejected as exc:
        raise Rejected(f"{host}: {exc}", http_status=exc.http_status) from None


def _success_data(response: requests.Response, host: str, what: str) -> dict[str, Any]:
    """``data`` of a success envelope; ``Rejected`` for an envelope saying ``error``."""
    body = json_object(response, service=host, what=what)
    if body.get("status") not in (None, "success"):
        raise Rejected(f"{host}: {body.get('message') or 'the answer says ' + str(body.get('status'))}")
    data = body.get("data")
    return data if isinstance(data, dict) else {}


def _remote_id(data: dict[str, Any]) -> str | None:
    value = data.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        return None
    return str(value)


def submit(request: FollowupRequest, transport: Transport) -> Outcome:
    host = partner(request)
    response = _checked(transport.send(submission(request)), host)
    unsure = f"; it may hold the request: check with {host} before submitting again"
    try:
        data = _success_data(response, host, "the new request")
    except RemoteError as exc:
        return Outcome(State.FAILED, f"{host} answered HTTP {response.status_code}, but {exc}{unsure}", maybe_sent=True)
    remote_id = _remote_id(data)
    if remote_id is None:
        if data.get("ignored"):
            raise Rejected(f"{host} ignored the request: {data.get('message') or 'no reason given'}")
        detail = f"{host} accepted the request (HTTP {response.status_code}) but named no id, so it cannot be updated or deleted from here"
        return Outcome(State.FAILED, detail + unsure, maybe_sent=True)
    return Outcome(State.SUBMITTED, f"accepted by {host} as request {remote_id}", remote_id=remote_id)


def update(request: FollowupRequest, transport: Transport) -> Outcome:
    host = partner(request)
    try:
        response = _checked(transport.request("PUT", _request_url(request), headers=_headers(request), json=_body(request)), host)
    except RemoteNotFound:
        raise Rejected(f"{host} no longer has request {request.remote_id}") from None
    _success_data(response, host, "the update")
    return Outcome(State.SUBMITTED, f"update accepted by {host} (request {request.remote_id})", remote_id=request.remote_id)


def delete(request: FollowupRequest, transport: Transport) -> Outcome:
    host = partner(request)
    try:
        _checked(transport.request("DELETE", _request_url(request), headers=_headers(request)), host)
    except RemoteNotFound:
        return Outcome(State.DELETED, f"request {request.remote_id} was already gone at {host}", remote_id=request.remote_id)
    return Outcome(State.DELETED, f"deleted at {host} (request {request.remote_id})", remote_id=request.remote_id)
