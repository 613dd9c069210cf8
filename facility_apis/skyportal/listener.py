"""The SkyPortal listener for status messages from the facility_apis gateway.

SkyPortal's ``POST /api/facility`` handler loads the follow-up request, checks that the caller
holds ``Post from FacilityMessageListener`` and validates the body against ``complete_schema()``
before it calls ``await process_message(handler, session)``; then it commits. The message is
``{"followup_request_id": <int>, "new_status": <str>}``, the very body SEDMListener takes, so the
gateway sends one shape whichever listener an instrument names.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import FacilityError, PayloadError
from ..core.listener import FacilityMessageListener as _CoreListener
from ..core.redact import Redactor
from ..core.schemas import validate
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


class FacilityMessageListener(_CoreListener):
    """Status messages for follow-up requests handed to the gateway (ACL
    ``Post from FacilityMessageListener``)."""

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
