"""The SkyPortal-compatible listener schema of facility messages."""

from typing import Any, ClassVar

import pytest

from facility_apis.core.errors import PayloadError
from facility_apis.core.schemas import validate
from facility_apis.skyportal.listener import FacilityMessageListener, Listener


def check(message):
    validate(FacilityMessageListener.complete_schema(), message, PayloadError)


def test_well_formed_message_is_accepted():
    check({"followup_request_id": 5, "new_status": "submitted"})


@pytest.mark.parametrize(
    ("message", "path"),
    [
        ({"followup_request_id": 5, "new_status": "x", "extra": 1}, "$.extra"),
        ({"new_status": "x"}, "$.followup_request_id"),
        ({"followup_request_id": "5", "new_status": "x"}, "$.followup_request_id"),
        ({"followup_request_id": 5.5, "new_status": "x"}, "$.followup_request_id"),
        ({"followup_request_id": 5}, "$.new_status"),
        ({"followup_request_id": 5, "new_status": ""}, "$.new_status"),
    ],
)
def test_malformed_messages_are_refused_naming_the_field(message, path):
    with pytest.raises(PayloadError) as caught:
        check(message)
    assert [e.path for e in caught.value.errors] == [path]


def test_complete_schema_matches_skyportals_shape():
    schema = FacilityMessageListener.complete_schema()
    assert schema["title"] == "FacilityMessageListener"
    assert schema["additionalProperties"] is False
    assert schema["properties"]["followup_request_id"] == {"type": "integer"}
    assert schema["required"].count("followup_request_id") == 1
    assert FacilityMessageListener.get_acl_id() == "Post from FacilityMessageListener"


def test_complete_schema_does_not_mutate_the_class_schema():
    class Custom(Listener):
        schema: ClassVar[dict[str, Any]] = {"properties": {"new_status": {"type": "string"}}, "required": ["new_status"]}

    Custom.complete_schema()
    Custom.complete_schema()
    assert Custom.schema == {"properties": {"new_status": {"type": "string"}}, "required": ["new_status"]}
    assert Custom.get_acl_id() == "Post from Custom"
