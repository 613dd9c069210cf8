"""SEDMListener: SEDM's robot's status messages, taken only for requests on SEDM's own instrument
and allocation, recorded with the caller's token masked; through SkyPortal's call shape (the fake
models) and over HTTP (the SkyPortal stub with facility_apis's listeners plugged in)."""

import asyncio
import json
from types import SimpleNamespace

import pytest

from facility_apis.core.errors import FacilityError, PayloadError
from facility_apis.core.transport import Transport
from facility_apis.skyportal import LISTENER_CLASSES, FacilityMessageListener, SEDMListener, bind
from facility_apis.skyportal.client import SkyPortalClient, SkyPortalError
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal import SkyPortalStub
from facility_apis.testing.skyportal_models import AsyncSession, Handler, Instrument, User, make_request

ROBOT_TOKEN = "sedm-robot-token-0c4e1b"
ROBOT = User(77, "sedm-robot")


#: SkyPortal's models are the fakes in every test here (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fakes")


def sedm_request(request_id=11, *, api_classname="SEDMAPI", listener="SEDMListener"):
    request = make_request(request_id=request_id, instrument=(4, "SEDM", ["sedm::ifu"]), api_classname=api_classname)
    request.allocation.instrument.listener_classname = listener
    return request


def post(request, message):
    session = AsyncSession(request)
    asyncio.run(SEDMListener.process_message(Handler(message, token=ROBOT_TOKEN, user=ROBOT), session))
    return session


def test_a_message_for_an_sedm_request_sets_its_status_and_is_recorded_without_the_token():
    request = sedm_request()
    session = post(request, {"followup_request_id": 11, "new_status": "observed successfully"})
    assert request.status == "observed successfully"
    (transaction,) = session.transactions
    assert transaction.followup_request is request and transaction.initiator_id == ROBOT.id
    assert transaction.request["headers"]["Authorization"] == "***"
    assert json.loads(transaction.request["body"]) == {"followup_request_id": 11, "new_status": "observed successfully"}
    assert ROBOT_TOKEN not in json.dumps([transaction.request, transaction.response])


@pytest.mark.parametrize(
    ("api_classname", "listener", "reason"),
    [
        ("ATLASAPI", "SEDMListener", "FollowupRequest 11 is on instrument SEDM, which SEDM does not run: SEDMListener takes messages only for SEDM's requests"),
        (None, "SEDMListener", "FollowupRequest 11 is on instrument SEDM, which SEDM does not run: SEDMListener takes messages only for SEDM's requests"),
        ("SEDMAPI", "FacilityMessageListener", "FollowupRequest 11 is on instrument SEDM, whose listener is not SEDMListener"),
    ],
)
def test_a_message_for_another_instruments_request_is_refused_and_changes_nothing(api_classname, listener, reason):
    request = sedm_request(api_classname=api_classname, listener=listener)
    session = AsyncSession(request)
    handler = Handler({"followup_request_id": 11, "new_status": "observed successfully"}, token=ROBOT_TOKEN, user=ROBOT)
    with pytest.raises(FacilityError) as caught:
        asyncio.run(SEDMListener.process_message(handler, session))
    assert str(caught.value) == reason
    assert request.status == "pending submission" and session.added == []


def test_a_request_whose_allocation_is_on_another_instrument_is_refused():
    instrument = Instrument(4, "SEDM", [], api_classname="SEDMAPI", listener_classname="SEDMListener")
    request = SimpleNamespace(id=11, allocation=SimpleNamespace(instrument_id=9, instrument=instrument))
    assert SEDMListener.refusal(request) == "FollowupRequest 11 is on an allocation of another instrument than SEDM"


def test_a_request_without_an_instrument_is_refused():
    request = SimpleNamespace(id=5, allocation=None)
    assert SEDMListener.refusal(request) == "FollowupRequest 5 has no instrument: SEDMListener takes messages only for SEDM's requests"


@pytest.mark.parametrize("message", [{"followup_request_id": 11, "new_status": ""}, {"followup_request_id": 11, "new_status": "x", "extra": 1}])
def test_a_malformed_message_is_refused(message):
    request = sedm_request()
    with pytest.raises(PayloadError):
        post(request, message)
    assert request.status == "pending submission"


def test_it_is_listed_under_skyportals_name_with_skyportals_acl_and_message():
    assert LISTENER_CLASSES["SEDMListener"] is SEDMListener
    assert SEDMListener.get_acl_id() == "Post from SEDMListener"
    schema = SEDMListener.complete_schema()
    assert schema["title"] == "SEDMListener" and set(schema["properties"]) == {"followup_request_id", "new_status"}
    assert set(schema["required"]) == {"followup_request_id", "new_status"} and schema["additionalProperties"] is False

    class SkyPortalListener:  # SkyPortal's base class, passed in
        pass

    bound = bind(object, SkyPortalListener)
    assert issubclass(bound.SEDMListener, SkyPortalListener) and bound.SEDMListener.__name__ == "SEDMListener"
    assert bound.SEDMListener.refusal(sedm_request(api_classname="ATLASAPI")) is not None


def test_it_names_the_class_the_sedm_facility_runs_under():
    from facility_apis.core.registry import default_registry

    assert SEDMListener.api_classname == default_registry().get("sedm").skyportal_class


# -- over HTTP: the SkyPortal stub with facility_apis's listeners -----------------------------------


@pytest.fixture
def skyportal():
    listeners = {"SEDMListener": SEDMListener, "FacilityMessageListener": FacilityMessageListener}
    with SkyPortalStub(tokens={ROBOT_TOKEN: {"Post from SEDMListener"}}, listeners=listeners) as stub:
        stub.add_request(21, listener="SEDMListener", instrument_id=4, instrument_name="SEDM", api_classname="SEDMAPI", allocation_id=8)
        stub.add_request(22, listener="SEDMListener", instrument_id=1, instrument_name="ATLAS", api_classname="ATLASAPI", allocation_id=9)
        yield stub


def client(stub):
    return SkyPortalClient(stub.url, ROBOT_TOKEN, Transport(backoff=0, egress=loopback_egress(stub)))


def test_over_http_the_robot_sets_an_sedm_requests_status(skyportal):
    client(skyportal).post_status(21, "observed successfully")
    assert skyportal.statuses(21) == ["observed successfully"]


def test_over_http_a_message_for_another_instruments_request_is_refused(skyportal):
    with pytest.raises(SkyPortalError) as caught:
        client(skyportal).post_status(22, "observed successfully")
    assert "FollowupRequest 22 is on instrument ATLAS, which SEDM does not run" in str(caught.value)
    assert caught.value.http_status == 400 and skyportal.statuses(22) == []
