"""A small client of the facility_apis gateway's HTTP API, for handing follow-ups off to it.

Contract: ``PUT /api/allocations/<id>`` (create or replace an allocation), ``POST
/api/followup_request`` (accept a request; answers its gateway id), ``DELETE
/api/followup_request/<gateway id>`` (cancel). Every call carries ``Authorization: token <token>``
and is answered with SkyPortal's envelope ``{"status": "success"|"error", "message", "data"}``.
All calls go through a core ``Transport``, so the token and the allocation's secrets are masked in
what is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from ..core.errors import RemoteError
from ..core.transport import Transport


class GatewayError(RemoteError):
    """The gateway refused a call (or answered something unreadable)."""


def _error_text(error: Any) -> str:
    if isinstance(error, Mapping):
        path, message = error.get("path") or error.get("field"), error.get("message") or error.get("error")
        if message:
            return f"{path}: {message}" if path else str(message)
    return str(error)


class GatewayClient:
    """Calls to the gateway at ``base_url`` with its API ``token``."""

    def __init__(self, base_url: str, token: str, transport: Transport):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.transport = transport
        transport.add_secrets([token])

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.transport.request(
            method,
            f"{self.base_url}{path}",
            headers={"Authorization": f"token {self._token}", "Accept": "application/json"},
            json=body,
        )
        try:
            envelope = response.json()
        except requests.JSONDecodeError:
            envelope = None
        if not isinstance(envelope, dict):
            status = response.status_code
            raise GatewayError(f"the gateway answered HTTP {status} to {method} {path} with a body that is not a JSON object", http_status=status)
        if response.status_code == 200 and envelope.get("status") == "success":
            return envelope.get("data")
        message = str(envelope.get("message") or f"HTTP {response.status_code}").strip().splitlines()[0]
        data = envelope.get("data")
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list) and errors:
            message += " (" + "; ".join(_error_text(e) for e in errors) + ")"
        text = self.transport.redactor.text(f"the gateway refused {method} {path}: {message}")
        raise GatewayError(text, http_status=response.status_code)

    def put_allocation(self, allocation_id: int, body: Mapping[str, Any]) -> Any:
        """Create or replace the gateway's copy of a SkyPortal allocation."""
        return self._call("PUT", f"/api/allocations/{allocation_id}", dict(body))

    def submit_request(self, body: Mapping[str, Any]) -> Any:
        """Hand a follow-up request to the gateway; its id is the answer's ``id``."""
        data = self._call("POST", "/api/followup_request", dict(body))
        if not isinstance(data, dict) or data.get("id") in (None, ""):
            raise GatewayError("the gateway accepted the request but its answer names no id; check the gateway before submitting again")
        return data

    def cancel_request(self, gateway_id: Any) -> None:
        """Cancel a request the gateway holds."""
        self._call("DELETE", f"/api/followup_request/{gateway_id}")
