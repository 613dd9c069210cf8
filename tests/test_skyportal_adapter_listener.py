"""The listener SkyPortal's ``POST /api/facility`` handler calls for the gateway's messages."""

import asyncio
import json

import pytest
from jsonschema import Draft7Validator, ValidationError

from facility_apis.core.errors import FacilityError, PayloadError
from facility_apis.skyportal import FacilityMessageListener
from facility_apis.testing.skyportal_models import AsyncSession, Handler, User, make_request

CALLER_TOKEN = "0b7c9a4e-sp-token-of-the-gateway"


#: SkyPortal's models are the fakes in every test here (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fakes")


def accepts(message):
    """As SkyPortal's handler checks: ``jsonschema.validate(body, complete_schema())``."""
    schema = FacilityMessageListener.complete_schema()
    Draft7Validator.check_schema(schema)
    try:
        Draft7Validator(schema).validate(message)
    except ValidationError:
        return False
    return True


def test_complete_schema_is_skyportals_and_sedm_compatible():
    schema = FacilityMessageListener.complete_schema()
    assert schema["title"] == "FacilityMessageListener" and schema["additionalProperties"] is False
    assert schema["properties"]["followup_request_id"] == {"type": "integer"}
    assert set(schema["properties"]) == {"followup_request_id", "new_status"}  # SEDMListener's body, exactly
    assert FacilityMessageListener.get_acl_id() == "Post from FacilityMessageListener"


@pytest.mark.parametrize(
    ("message", "ok"),
    [
        ({"followup_request_id": 11, "new_status": "complete: 12 points"}, True),
        ({"followup_request_id": 11, "new_status": "x", "detail": "more"}, False),
        ({"new_status": "x"}, False),
        ({"followup_request_id": "11", "new_status": "x"}, False),
        ({"followup_request_id": 1.5, "new_status": "x"}, False),
        ({"followup_request_id": 11}, False),
    ],
)
def test_schema_accepts_only_well_formed_messages(message, ok):
    assert accepts(message) is ok


def test_process_message_sets_the_status_and_records_the_message_without_the_token():
    request = make_request(payload={})
    session = AsyncSession(request)
    gateway_user = User(99, "gateway-bot")
    message = {"followup_request_id": 11, "new_status": "running: started at 2026-11-21T10:00:00Z"}
    handler = Handler(message, token=CALLER_TOKEN, user=gateway_user, url=f"https://skyportal.test/api/facility?token={CALLER_TOKEN}")

    asyncio.run(FacilityMessageListener.process_message(handler, session))

    assert request.status == "running: started at 2026-11-21T10:00:00Z"
    (transaction,) = session.transactions
    assert transaction.followup_request is request and transaction.initiator_id == 99
    assert transaction.request["method"] == "POST"
    assert transaction.request["headers"]["Authorization"] == "***"
    assert json.loads(transaction.request["body"]) == message
    assert transaction.request["url"] == "https://skyportal.test/api/facility?token=***"
    assert CALLER_TOKEN not in json.dumps([transaction.request, transaction.response])
    assert session.commits == 0  # the handler commits


def test_process_message_refuses_what_the_schema_refuses():
    request = make_request()
    session = AsyncSession(request)
    handler = Handler({"followup_request_id": 11, "new_status": ""}, token=CALLER_TOKEN, user=User(1, "u"))
    with pytest.raises(PayloadError, match=r"\$.new_status"):
        asyncio.run(FacilityMessageListener.process_message(handler, session))
    assert request.status == "pending submission" and session.added == []


def test_process_message_for_an_unknown_request():
    session = AsyncSession()
    handler = Handler({"followup_request_id": 9999, "new_status": "x"}, token=CALLER_TOKEN, user=User(1, "u"))
    with pytest.raises(FacilityError, match="Cannot find FollowupRequest with ID: 9999"):
        asyncio.run(FacilityMessageListener.process_message(handler, session))
