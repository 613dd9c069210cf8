"""The SkyPortal listeners: status messages from the facility_apis gateway, and from SEDM.

SkyPortal's ``POST /api/facility`` handler loads the follow-up request, checks that the caller
holds ``Post from <the instrument's listener>`` and validates the body against
``complete_schema()`` before it calls ``await process_message(handler, session)``; then it
commits. The message is ``{"followup_request_id": <int>, "new_status": <str>}``, the very body
SkyPortal's SEDMListener takes, so the gateway sends one shape whichever listener an instrument
names.

``FacilityMessageListener`` takes the gateway's messages for any instrument that names it.
``SEDMListener`` (SkyPortal's name, so SEDM instruments keep their ``listener_classname``) takes
SEDM's robot's messages, and only for requests on an SEDM instrument: SkyPortal's own lets any
token with its ACL set the status of any request on an instrument naming it.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any, ClassVar

from ..core.errors import FacilityError, PayloadError
from ..core.redact import Redactor
from ..core.schemas import compiled, load_schema, validate
from .models import get_models


def inbound_record(handler: Any, message: dict[str, Any]) -> dict[str, Any]:
    """The inbound HTTP request as a transaction ``request``, with the caller's credentials masked
    (SkyPortal's own listener stores its ``Authorization`` header verbatim)."""
    http = getattr(handler, "request", None)
    headers = dict(getattr(http, "headers", None) or {})
    authorization = next((str(v) for k, v in headers.items() if str(k).lower() == "authorization"), "")
    redactor = Redactor([part for part in (authorization, authorization.partition(" ")[2].strip()) if part])
    full_url = getattr(http, "full_url", None)
    url = full_url() if callable(full_url) else getattr(http, "uri", None)
    return {
        "method": getattr(http, "method", None),
        "url": redactor.text(url) if url else url,
        "headers": redactor.headers(headers),
        "body": json.dumps(redactor.data(message)),
    }


@functools.cache
def _message_form(listener: type[Listener]) -> Any:
    return compiled(listener.complete_schema())


class Listener:
    """SkyPortal's listener contract: the message ``schema`` (draft-07, without the request id),
    ``complete_schema()`` as SkyPortal enforces it, and the ACL a caller needs.

    Subclasses set ``schema``; those SkyPortal calls also implement ``process_message``.
    """

    schema: ClassVar[dict[str, Any]] = {}

    @classmethod
    def complete_schema(cls) -> dict[str, Any]:
        """The message schema as SkyPortal enforces it: ``followup_request_id`` (integer) added and
        required, no other keys allowed."""
        schema = copy.deepcopy(cls.schema)
        schema["type"] = "object"
        properties = schema.setdefault("properties", {})
        properties.setdefault("followup_request_id", {"type": "integer"})
        required = schema.setdefault("required", [])
        if "followup_request_id" not in required:
            required.append("followup_request_id")
        schema["title"] = cls.__name__
        schema["additionalProperties"] = False
        return schema

    @classmethod
    def message_form(cls) -> Any:
        """``complete_schema()`` compiled once per listener class (``schemas.compiled``): what a
        message is checked against, by SkyPortal's listener and by the gateway before it sends."""
        return _message_form(cls)

    @classmethod
    def get_acl_id(cls) -> str:
        """The ACL a token needs to post through this listener, e.g. ``Post from SEDMListener``."""
        return f"Post from {cls.__name__}"

    @classmethod
    def refusal(cls, request: Any) -> str | None:
        """Why this listener refuses messages for ``request`` (SkyPortal's ``FollowupRequest``,
        read by attribute: ``id``, ``allocation``, ``allocation.instrument``), or ``None``. Any
        request by default."""
        return None


class FacilityMessageListener(Listener):
    """Status messages for follow-up requests handed to the gateway (ACL
    ``Post from FacilityMessageListener``)."""

    schema: ClassVar[dict[str, Any]] = load_schema("facility_message")

    @classmethod
    async def process_message(cls, handler: Any, session: Any) -> None:
        """Set the request's status to ``new_status`` and record the message as a transaction
        (the caller's token masked). ``PayloadError`` for a malformed message, ``FacilityError``
        for an unknown request or one this listener refuses (:meth:`refusal`); nothing is
        changed then."""
        message = handler.get_json()
        validate(cls.message_form(), message, PayloadError)
        models = get_models()
        request = await models.load_request(session, message["followup_request_id"])
        if request is None:
            raise FacilityError(f"Cannot find FollowupRequest with ID: {message['followup_request_id']}")
        reason = cls.refusal(request)
        if reason is not None:
            raise FacilityError(reason)
        request.status = message["new_status"]
        user = getattr(handler, "associated_user_object", None)
        session.add(
            models.transaction(
                request=inbound_record(handler, message),
                response=None,
                followup_request=request,
                initiator_id=getattr(user, "id", None),
            )
        )


class SEDMListener(FacilityMessageListener):
    """SEDM's status messages (its robot posts ``{"followup_request_id", "new_status"}`` with a
    token holding ``Post from SEDMListener``), under SkyPortal's class name.

    A message is taken only for a request on SEDM's own instrument and allocation: the request's
    allocation is on its instrument, that instrument runs SEDM (``api_classname`` ``SEDMAPI``) and
    names this listener. SkyPortal's own SEDMListener takes any request on an instrument naming
    it, so a token with the ACL could set the status of another facility's requests (an
    instrument that named SEDMListener so the gateway could post through it); those instruments
    name ``FacilityMessageListener`` instead (see docs/facilities/sedm.md).
    """

    #: The ``api_classname`` of the instruments SEDM runs (the SEDM facility's ``skyportal_class``).
    api_classname: ClassVar[str] = "SEDMAPI"

    @classmethod
    def refusal(cls, request: Any) -> str | None:
        allocation = getattr(request, "allocation", None)
        instrument = getattr(allocation, "instrument", None)
        number = getattr(request, "id", None)
        if instrument is None:
            return f"FollowupRequest {number} has no instrument: {cls.__name__} takes messages only for SEDM's requests"
        name = getattr(instrument, "name", None)
        if getattr(instrument, "api_classname", None) != cls.api_classname:
            return f"FollowupRequest {number} is on instrument {name}, which SEDM does not run: {cls.__name__} takes messages only for SEDM's requests"
        if getattr(instrument, "listener_classname", None) != cls.__name__:
            return f"FollowupRequest {number} is on instrument {name}, whose listener is not {cls.__name__}"
        if getattr(allocation, "instrument_id", getattr(instrument, "id", None)) != getattr(instrument, "id", None):
            return f"FollowupRequest {number} is on an allocation of another instrument than {name}"
        return None
