"""The SkyPortal listener for status messages from the facility_apis gateway.

SkyPortal's ``POST /api/facility`` handler loads the follow-up request, checks that the caller
holds ``Post from FacilityMessageListener`` and validates the body against ``complete_schema()``
before it calls ``await process_message(handler, session)``; then it commits. The message is
``{"followup_request_id": <int>, "new_status": <str>}``, the very body SEDMListener takes, so the
gateway sends one shape whichever listener an instrument names.
"""

from __future__ import annotations

import copy
import json
from typing import Any, ClassVar

from ..core.errors import FacilityError, PayloadError
from ..core.redact import Redactor
from ..core.schemas import load_schema, validate
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
    def get_acl_id(cls) -> str:
        """The ACL a token needs to post through this listener, e.g. ``Post from SEDMListener``."""
        return f"Post from {cls.__name__}"


class FacilityMessageListener(Listener):
    """Status messages for follow-up requests handed to the gateway (ACL
    ``Post from FacilityMessageListener``)."""

    schema: ClassVar[dict[str, Any]] = load_schema("facility_message")

    @classmethod
    async def process_message(cls, handler: Any, session: Any) -> None:
        """Set the request's status to ``new_status`` and record the message as a transaction."""
        message = handler.get_json()
        validate(cls.complete_schema(), message, PayloadError)
        models = get_models()
        request = await models.load_request(session, message["followup_request_id"])
        if request is None:
            raise FacilityError(f"Cannot find FollowupRequest with ID: {message['followup_request_id']}")
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
