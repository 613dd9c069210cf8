"""``/api/allocations``: store an allocation's credentials (validated, exchanged once with the
facility where it asks for that, encrypted), check them, show an allocation without them."""

from __future__ import annotations

from typing import Any

from ..core.errors import AltdataError, FieldError
from ..core.interface import Facility, Kind, instrument_refusal
from ..core.operations import exchange
from ..core.transport import Transport
from .api_base import ApiError, BaseHandler, parse_id, under
from .api_requests import PLAN_REASON
from .api_schemas import AllocationBody, body_errors
from .store import NotFound

FIELDS = ("pi", "proposal_id", "instrument_id", "instrument_name", "filters", "group_ids")


class AllocationHandlerBase(BaseHandler):
    """Validation shared by storing and checking an allocation."""

    async def checked_allocation(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """``(facility, altdata to store, other fields)``, or a 400 listing every failing field.

        Valid altdata then goes through the facility's one-time exchange (``exchange_altdata``,
        e.g. BHTOM's password traded for a token), off the IOLoop; a failed exchange is a 400 too.
        """
        body = self.json_body()
        errors = body_errors(AllocationBody(), body)
        facility, altdata = body.get("facility"), body.get("altdata")
        cleaned: dict[str, Any] = {}
        registry = self.gateway.registry
        if isinstance(facility, str) and facility and facility not in registry:
            errors.append(FieldError("facility", f"is not a known facility (known: {', '.join(registry.names())})"))
        elif isinstance(facility, str) and facility and self.gateway.facility_class(facility).kind is Kind.OBSERVATION_PLAN:
            # Stored, its credentials would wait for requests the gateway refuses (see PLAN_REASON).
            errors.append(FieldError("facility", f"is an observation-plan facility, which the gateway does not take: {PLAN_REASON}"))
        elif isinstance(facility, str) and facility:
            instance = self.gateway.facility(facility)
            if isinstance(altdata, dict):
                try:
                    # The gateway never learns the allocation's SkyPortal group name.
                    cleaned = instance.validate_altdata(altdata, instrument_name=_instrument_name(body), group_known=False)
                except AltdataError as exc:
                    errors += under("altdata", exc.errors)
            refusal = instrument_refusal(instance, body.get("instrument_id"))
            if refusal is not None:
                errors.append(FieldError("instrument_id", f"is required: {refusal}"))
        if not errors:
            try:
                cleaned = await self.blocking(self._exchanged, self.gateway.facility(facility), cleaned, _instrument_name(body))
            except AltdataError as exc:
                errors += under("altdata", exc.errors)
        if errors:
            raise ApiError.invalid("allocation", sorted(set(errors), key=lambda e: e.path))
        return facility, cleaned, {name: body[name] for name in FIELDS if name in body}

    def _exchanged(self, facility: Facility, altdata: dict[str, Any], instrument_name: str | None) -> dict[str, Any]:
        with Transport(retries=1, egress=self.gateway.egress) as transport:
            return exchange(facility, altdata, transport, instrument_name=instrument_name)


def _instrument_name(body: dict[str, Any]) -> str | None:
    """The allocation's instrument name from the body (checked by the schema), for the
    facility's ``check_instrument``."""
    name = body.get("instrument_name")
    return name if isinstance(name, str) else None


class AllocationHandler(AllocationHandlerBase):
    """``PUT`` creates or replaces one of the caller's allocations; ``GET`` shows it."""

    async def get(self, allocation_id: str) -> None:
        number = parse_id(allocation_id, "allocation")
        self.success(await self.blocking(self.gateway.store.allocations.summary, number, self.client_id))

    async def put(self, allocation_id: str) -> None:
        number = parse_id(allocation_id, "allocation")
        facility, altdata, fields = await self.checked_allocation()
        allocations = self.gateway.store.allocations
        try:
            await self.blocking(allocations.put, self.client_id, number, facility, altdata, **fields)
        except NotFound:  # put refuses only another client's allocation
            raise ApiError(403, f"allocation {number} belongs to another client") from None
        self.success(await self.blocking(allocations.summary, number, self.client_id))


class AllocationValidateHandler(AllocationHandlerBase):
    """``POST``: would this allocation be accepted? Nothing is stored."""

    async def post(self) -> None:
        await self.checked_allocation()
        self.success({"valid": True})
