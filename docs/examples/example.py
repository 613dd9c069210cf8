"""Example observatory: a JSON REST queue (the skeleton of a facility module).

Protocol: ``POST <base>/requests`` answers 201 with ``{"id": ...}``; ``GET <base>/requests/<id>``
shows ``{"state": "PENDING" | "SCHEDULED" | "OBSERVING" | "COMPLETED" | "EXPIRED" | "CANCELED"}``;
``DELETE <base>/requests/<id>`` cancels it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from facility_apis.core.errors import AltdataError, RemoteError
from facility_apis.core.interface import Facility, FollowupRequest, Kind
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.timeutil import iso_date, utcnow
from facility_apis.core.transport import HTTPCall, Transport

DEFAULT_BASE_URL = "https://queue.example.org/api"

# The observatory's words -> the normalised lifecycle.
STATES = {
    "PENDING": State.QUEUED,
    "SCHEDULED": State.QUEUED,
    "OBSERVING": State.RUNNING,
    "COMPLETED": State.COMPLETED,
    "EXPIRED": State.NO_DATA,
    "CANCELED": State.CANCELED,
}


class ExampleFacility(Facility):
    """Example observatory. Config: ``base_url``, ``poll_interval`` (seconds)."""

    name: ClassVar[str] = "example"  # the registry key; also the schemas folder name
    title: ClassVar[str] = "Example observatory"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    setup_url: ClassVar[str] = "https://queue.example.org/docs/"
    alias_lookup: ClassVar[dict[str, str]] = {"exposure_time": "Exposure time"}
    priority_order: ClassVar[str] = "asc"

    # -- validation beyond the schemas ---------------------------------------------------------

    def request_defaults(self) -> dict[str, Any]:
        return {"start_date": iso_date(utcnow())}  # computed per call, never at import

    def check_altdata(self, altdata: dict[str, Any]) -> None:
        if altdata["proposal_id"].endswith("-000"):
            raise AltdataError.single("$.proposal_id", "must not be the template proposal")

    # -- the remote calls ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.config.get("base_url", DEFAULT_BASE_URL).rstrip("/")

    def _headers(self, request: FollowupRequest) -> dict[str, str]:
        return {"Authorization": f"Bearer {request.allocation.altdata['api_key']}"}

    def _task_url(self, request: FollowupRequest) -> str:
        return f"{self.base_url}/requests/{request.remote_id}"

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        """Pure: the submission as an HTTPCall. Powers ``facility-apis submit --dry-run``."""
        payload = request.payload
        body = {
            "proposal": request.allocation.altdata["proposal_id"],
            "target": {"name": request.target.id, "ra": request.target.ra, "dec": request.target.dec},
            "start": payload["start_date"],
            "filters": list(payload["filters"]),
            "exposure_time": payload["exposure_time"],
        }
        return HTTPCall("POST", f"{self.base_url}/requests", headers=self._headers(request), json=body)

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        response = transport.send(self.prepare(request))  # 429 and 5xx are raised by the transport
        if response.status_code in (401, 403):
            raise AltdataError.single("$.api_key", f"was refused by the observatory (HTTP {response.status_code})")
        if response.status_code in (400, 422):
            return Outcome(State.REJECTED, _error_text(response))
        if response.status_code != 201:
            raise RemoteError(f"the observatory answered HTTP {response.status_code}", http_status=response.status_code)
        try:
            remote_id = str(response.json()["id"])
        except (ValueError, TypeError, KeyError):
            # Accepted but unreadable: never report success, never resubmit blindly.
            return Outcome(State.FAILED, "accepted (HTTP 201) without a request id; check the queue before submitting again")
        return Outcome(State.SUBMITTED, f"request {remote_id}", remote_id=remote_id, poll_after=self.poll_interval)

    def get(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.PENDING, "not submitted yet")
        response = transport.request("GET", self._task_url(request), headers=self._headers(request))
        if response.status_code == 404:
            return Outcome(State.CANCELED, "the request no longer exists", remote_id=request.remote_id)
        if response.status_code != 200:
            raise RemoteError(f"the observatory answered HTTP {response.status_code}", http_status=response.status_code)
        try:
            remote_state = response.json()["state"]
        except (ValueError, TypeError, KeyError):
            raise RemoteError("the observatory sent an unreadable request description") from None
        state = STATES.get(remote_state)
        if state is None:
            raise RemoteError(f"the observatory reported an unknown state {remote_state!r}")
        poll_after = self.poll_interval if state.active else None
        return Outcome(state, remote_state.lower(), remote_id=request.remote_id, poll_after=poll_after)

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        if not request.remote_id:
            return Outcome(State.DELETED, "nothing had been sent")
        response = transport.request("DELETE", self._task_url(request), headers=self._headers(request))
        if response.status_code not in (200, 204, 404):
            raise RemoteError(f"the observatory refused the cancellation (HTTP {response.status_code})", http_status=response.status_code)
        return Outcome(State.DELETED, "canceled at the observatory", remote_id=request.remote_id)

    @property
    def poll_interval(self) -> float:
        return float(self.config.get("poll_interval", 300.0))


def _error_text(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return str(body.get("error")) if isinstance(body, dict) and body.get("error") else f"HTTP {response.status_code}"
