"""Talking back to SkyPortal: status messages to ``/api/facility``, photometry with ``PUT``.

``PUT /api/photometry`` is idempotent in SkyPortal (a repeated ``POST`` of the same points is an
error), so delivery that may be repeated uses ``PUT``.
"""

from __future__ import annotations

from typing import Any

import requests

from ..core.egress import INTERNAL
from ..core.errors import FacilityError, RemoteError
from ..core.json_text import encode
from ..core.schemas import field_errors
from ..core.transport import Transport
from .listener import FacilityMessageListener


class SkyPortalError(RemoteError):
    """SkyPortal answered ``{"status": "error", "message": ...}`` (or something unreadable)."""


def _first_line(message: Any) -> str:
    """SkyPortal sometimes embeds a whole traceback in ``message``: keep its first line."""
    text = str(message or "").strip()
    return text.splitlines()[0][:500] if text else ""


class SkyPortalClient:
    """A SkyPortal API client authenticated with ``Authorization: token <token>``."""

    def __init__(self, base_url: str, token: str, transport: Transport | None = None):
        if not token:
            raise FacilityError("a SkyPortal API token is required")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.transport = transport or Transport(egress=INTERNAL)
        self.transport.add_secrets([token])

    def _call(self, method: str, path: str, body: dict[str, Any] | bytes | None = None, params: dict[str, Any] | None = None) -> Any:
        """SkyPortal's ``data`` from its answer to ``method path`` with ``body`` (a dict, or JSON
        already encoded); ``SkyPortalError`` for a refusal or an unreadable answer."""
        headers = {"Authorization": f"token {self._token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = body if isinstance(body, bytes) else encode(body)
        response = self.transport.request(method, f"{self.base_url}{path}", headers=headers, params=params, data=body)
        try:
            envelope = response.json()
        except requests.JSONDecodeError:
            raise SkyPortalError(f"SkyPortal answered HTTP {response.status_code} with a body that is not JSON", http_status=response.status_code) from None
        if not isinstance(envelope, dict):
            raise SkyPortalError(f"SkyPortal answered HTTP {response.status_code} with an unexpected body", http_status=response.status_code)
        if response.status_code != 200 or envelope.get("status") != "success":
            message = _first_line(envelope.get("message")) or f"HTTP {response.status_code}"
            raise SkyPortalError(f"SkyPortal refused {method} {path}: {self.transport.redactor.text(message)}", http_status=response.status_code)
        return envelope.get("data")

    def post_status(self, followup_request_id: int, new_status: str) -> None:
        """Set a follow-up request's status through ``POST /api/facility``."""
        message = {"followup_request_id": followup_request_id, "new_status": new_status}
        errors = field_errors(FacilityMessageListener.message_form(), message)
        if errors:
            raise FacilityError("invalid facility message: " + "; ".join(map(str, errors)))
        self._call("POST", "/api/facility", message)

    def put_photometry(self, body: bytes) -> list[int]:
        """Deliver photometry idempotently: ``body`` is an encoded upload (``Photometry.uploads``);
        returns SkyPortal's ids of the points."""
        data = self._call("PUT", "/api/photometry", body) or {}
        return list(data.get("ids", []))

    def get_source(self, obj_id: str) -> dict[str, Any]:
        """A source (``id``, ``ra``, ``dec``, ...) from ``GET /api/sources/<obj_id>``."""
        return self._call("GET", f"/api/sources/{requests.utils.quote(obj_id, safe='')}") or {}

    def followup_requests(self, obj_id: str) -> list[dict[str, Any]]:
        """The follow-up requests on a source (``GET /api/followup_request?sourceID=``)."""
        data = self._call("GET", "/api/followup_request", params={"sourceID": obj_id}) or {}
        found = data.get("followup_requests", []) if isinstance(data, dict) else data
        return [entry for entry in found if isinstance(entry, dict)]
