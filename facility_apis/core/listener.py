"""SkyPortal-compatible listener base: the schema of messages posted to ``/api/facility``."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from .schemas import load_schema


class Listener:
    """A facility-message listener with SkyPortal's ``complete_schema`` and ACL naming.

    Subclasses set ``schema`` (a draft-07 object schema of the message without the request id).
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
    """The listener for status messages sent by facility_apis."""

    schema: ClassVar[dict[str, Any]] = load_schema("facility_message")
