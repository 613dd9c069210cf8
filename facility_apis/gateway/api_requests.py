"""``/api/followup_request``: accept (direct or SkyPortal GENERIC body), list, show, change and
cancel follow-up requests; ``/api/callbacks``: a facility's signed nudge."""

from __future__ import annotations

from typing import Any

from ..core.errors import FacilityError, FieldError, PayloadError
from ..core.interface import Facility, HostPoint, Kind, Target, instrument_refusal
from ..core.redact import redact_everywhere
from ..skyportal.client import SkyPortalError
from .api_base import ApiError, BaseHandler, parse_id, under
from .api_schemas import FollowupRequestBody, body_errors
from .store.requests import NewRequest

#: Why a plan delivery is not taken (docs/gateway.md): its status could reach no one in SkyPortal.
PLAN_REASON = (
    "the host delivers plans itself (SkyPortal's send runs them in its own process), and SkyPortal's listener "
    "updates follow-up requests only, so a plan's status could not be reported back"
)
PLAN_REFUSAL = f"is an observation-plan allocation, which the gateway does not take: {PLAN_REASON}"

#: SkyPortal statuses meaning "no such source" rather than "SkyPortal is failing".
UNKNOWN_SOURCE_STATUSES = frozenset({400, 404})


def _window_end(facility: Facility, payload: dict[str, Any]) -> float | None:
    """The end of the observing window ``payload`` asks for (epoch seconds), or None."""
    end = facility.window_end(payload)
    return None if end is None else end.timestamp()


def _callback_text(request_id: int) -> str:
    return f"callback:{request_id}"


class _RequestBodyHandler(BaseHandler):
    """Reads a follow-up request body, direct or SkyPortal GENERIC (``POST`` and ``PUT``)."""

    async def _checked(self, body: dict[str, Any]) -> tuple[int, Facility, Target | None, dict[str, Any], list[str]]:
        """``(allocation id, its facility, target or None for a GENERIC body, validated payload,
        ignored payload keys)``: a 404 for another client's allocation, else a 400 listing every
        failing field. A GENERIC body carries GENERIC's own form (observation_choices,
        exposure_time, ...): only the fields the facility's form defines are kept, and the others
        are named."""
        errors = body_errors(FollowupRequestBody(), body)
        target, obj_id, payload = body.get("target"), body.get("obj_id"), body.get("payload")
        ignored: list[str] = []
        if target is None and obj_id is None:
            errors.append(FieldError("target", "is required (or obj_id, to take the coordinates from SkyPortal)"))
        elif isinstance(target, dict) and obj_id is not None and target.get("id") != obj_id:
            errors.append(FieldError("obj_id", "must equal target.id when both are given"))
        if "allocation_id" not in {e.path for e in errors}:
            # Cross-allocation access is refused (404) before anything else is said about the body.
            summary = await self.blocking(self.gateway.store.allocations.summary, int(body["allocation_id"]), self.client_id)
            facility = self.gateway.facility(summary["facility"])
            if facility.kind is Kind.OBSERVATION_PLAN:
                raise ApiError.invalid("follow-up request", [FieldError("allocation_id", PLAN_REFUSAL)])
            refusal = instrument_refusal(facility, summary["instrument_id"])
            if refusal is not None:  # an allocation stored before the rule: its data could not be posted
                message = f"names an allocation without instrument_id: {refusal}; PUT the allocation again with one"
                raise ApiError.invalid("follow-up request", [FieldError("allocation_id", message)])
            if isinstance(payload, dict) and target is None:
                known = facility.request_schema().get("properties", {})
                ignored = sorted(key for key in payload if key not in known)
                payload = {key: value for key, value in payload.items() if key in known}
            if isinstance(payload, dict):
                try:
                    payload = facility.validate_payload(payload)
                    facility.refuse_a_closed_window(payload)
                    # The form the allocation's instrument serves: e.g. only its filters.
                    facility.check_instrument_form(payload, name=summary["instrument_name"], filters=tuple(summary["filters"] or ()))
                except PayloadError as exc:
                    errors += under("payload", exc.errors)
        if isinstance(target, dict) and not any(e.path.startswith("target") for e in errors):
            try:
                photometry = tuple(HostPoint(**point) for point in target.get("photometry") or ())
                target = Target(target["id"], float(target["ra"]), float(target["dec"]), aliases=tuple(target.get("aliases") or ()), photometry=photometry)
            except PayloadError as exc:
                errors += under("target", exc.errors)
        if errors:
            raise ApiError.invalid("follow-up request", sorted(set(errors), key=lambda e: e.path))
        return int(body["allocation_id"]), facility, target, payload, ignored


class FollowupRequestsHandler(_RequestBodyHandler):
    """``POST`` accepts a request on one of the caller's allocations; ``GET`` lists the caller's."""

    async def get(self) -> None:
        self.success({"requests": await self.blocking(self.gateway.store.requests.newest, self.client_id)})

    async def post(self) -> None:
        body = self.json_body()
        allocation_id, facility, target, payload, ignored = await self._checked(body)
        if not isinstance(target, Target):
            target = await self._resolve(body["obj_id"])
        try:
            # Fields the facility takes from the source (an id among its aliases, a centroid of its
            # photometry) are decided now and stored with the payload.
            payload = await self.blocking(facility.validate_payload, payload, target)
        except PayloadError as exc:
            raise ApiError.invalid("follow-up request", under("payload", exc.errors)) from None
        followup_request_id = None if body.get("followup_request_id") is None else int(body["followup_request_id"])
        accepted = NewRequest(
            allocation_id,
            target,
            payload,
            owner_id=self.client_id,
            followup_request_id=followup_request_id,
            requester=body.get("requester"),
            window_end=_window_end(facility, payload),
        )
        request_id = await self.blocking(self.gateway.accept, accepted)
        self.success({"id": request_id, "state": "pending", "ignored": ignored})

    async def _resolve(self, obj_id: str) -> Target:
        """The target of a GENERIC body: its coordinates and aliases, as SkyPortal has them."""
        skyportal = self.gateway.skyportal
        if skyportal is None:
            raise ApiError.invalid("follow-up request", [FieldError("target", "is required: this gateway has no SkyPortal to look obj_id up in")])
        try:
            source = await self.blocking(skyportal.get_source, obj_id)
        except SkyPortalError as exc:
            if exc.http_status in UNKNOWN_SOURCE_STATUSES:
                raise ApiError.invalid("follow-up request", [FieldError("target", "is required: SkyPortal does not know the source obj_id")]) from None
            raise ApiError(502, f"SkyPortal could not give the source's coordinates: {redact_everywhere(str(exc))}") from None
        except FacilityError as exc:
            raise ApiError(502, f"SkyPortal could not give the source's coordinates: {redact_everywhere(str(exc))}") from None
        ra, dec = source.get("ra"), source.get("dec")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (ra, dec)):
            raise ApiError(502, "SkyPortal gave no coordinates for the source")
        names = source.get("alias")
        aliases = tuple(name for name in names if isinstance(name, str) and name) if isinstance(names, list) else ()
        try:
            return Target(obj_id, float(ra), float(dec), aliases=aliases)
        except PayloadError as exc:
            raise ApiError.invalid("follow-up request", under("target", exc.errors)) from None


class FollowupRequestHandler(_RequestBodyHandler):
    """``GET`` shows one of the caller's requests; ``PUT`` changes its payload (SkyPortal's
    ``PUT /api/followup_request/<id>``, the body of ``POST``); ``DELETE`` cancels it (SkyPortal
    GENERIC's delete sends ``DELETE <endpoint>/<id>``)."""

    async def get(self, request_id: str) -> None:
        number = parse_id(request_id, "follow-up request")
        self.success(await self.blocking(self.gateway.store.requests.view, number, self.client_id))

    async def put(self, request_id: str) -> None:
        number = parse_id(request_id, "follow-up request")
        requests = self.gateway.store.requests
        current = await self.blocking(requests.view, number, self.client_id)
        body = self.json_body()
        allocation_id, facility, target, payload, ignored = await self._checked(body)
        errors = []
        if allocation_id != current["allocation_id"]:
            errors.append(FieldError("allocation_id", "must be the request's own allocation (a request cannot move)"))
        if (body.get("obj_id") or (target.id if isinstance(target, Target) else None)) != current["obj_id"]:
            errors.append(FieldError("obj_id", "must be the request's own source"))
        if isinstance(target, Target) and (target.ra, target.dec) != (current["ra"], current["dec"]):
            errors.append(FieldError("target", "cannot change: cancel the request and submit a new one"))
        if errors:
            raise ApiError.invalid("follow-up request", errors)
        can_update = facility.implements()["update"]
        state = await self.blocking(requests.change, number, payload, self.client_id, can_update=can_update, window_end=_window_end(facility, payload))
        self.success({"id": number, "state": state, "ignored": ignored})

    async def delete(self, request_id: str) -> None:
        number = parse_id(request_id, "follow-up request")
        requests = self.gateway.store.requests
        facility = await self.blocking(requests.facility_of, number, self.client_id)
        facility_class = self.gateway.facility_class(facility)
        can_delete = facility_class.implements()["delete"]
        state = await self.blocking(requests.cancel, number, self.client_id, can_delete=can_delete, title=facility_class.title)
        self.success({"id": number, "state": state})


class CallbackHandler(BaseHandler):
    """``POST /api/callbacks/<request id>/<signature>``: a facility says a request changed.

    No token (a facility cannot send ours): the signature in the URL authenticates. The body is
    not trusted for anything; the request is only made due for its next poll now.
    """

    auth_required = False

    async def post(self, request_id: str, signature: str) -> None:
        number = int(request_id) if request_id.isascii() and request_id.isdigit() and len(request_id) < 20 else 0
        if number < 1 or not signature.isascii() or not self.gateway.box.verify(_callback_text(number), signature):
            raise ApiError(404, "no such callback")
        polled = await self.blocking(self.gateway.store.requests.poke, number)
        self.success({"id": number, "poll_due": polled})

    def log_path(self) -> str:
        return self.request.path.rsplit("/", 1)[0] + "/***"


def callback_path(box: Any, request_id: int) -> str:
    """The URL path (below the gateway's base URL) a facility may call about ``request_id``."""
    return f"/api/callbacks/{request_id}/{box.sign(_callback_text(request_id))}"
