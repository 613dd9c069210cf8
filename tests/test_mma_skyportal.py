"""SkyPortal's MMAAPI over the mma facility, called as SkyPortal calls a plan class
(``await MMAAPI.send(plan_request, session)``, ``await MMAAPI.remove(plan_request)``), with the
fake models, against the plan queue and SFTP emulators."""

import asyncio
import json
from typing import Any, ClassVar

import pytest

from facility_apis.core.errors import FacilityError
from facility_apis.core.plan import PLAN_KEY
from facility_apis.core.timeutil import to_mjd
from facility_apis.skyportal import MMAAPI, SKYPORTAL_METHODS, api_classes, bind, configure
from facility_apis.skyportal.plans import REFUSED, REMOVED, SENT, plan_request
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.obsplan_queue import ObsPlanQueueEmulator
from facility_apis.testing.sftp import SFTPEmulator
from facility_apis.testing.skyportal_models import AsyncSession, make_plan_request

TOKEN = "skyportal-mma-t0ken-61d2"
PASSWORD = "skyportal mma pass 77"


#: SkyPortal's models are the fakes in every test here (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fakes")


@pytest.fixture
def queue():
    with ObsPlanQueueEmulator(tokens={TOKEN}) as emulator:
        configure(egress=loopback_egress(emulator))
        yield emulator


def run(coroutine):
    return asyncio.run(coroutine)


def api_altdata(queue):
    return {"allocation_type": "API", "endpoint": queue.url, "api_token": TOKEN}


# -- what SkyPortal asks before calling --------------------------------------------------------


def test_the_plan_class_offers_send_and_remove_and_no_plan_making_of_its_own():
    configure()
    table = MMAAPI.implements()
    assert set(table) == set(SKYPORTAL_METHODS)
    assert {method for method, offered in table.items() if offered} == {"send", "remove", "validate_altdata"}
    info = MMAAPI.frontend_render_info(None, None)
    assert info["formSchema"] is None and info["methodsImplemented"] == table
    assert info["formSchemaAltdata"]["properties"]["allocation_type"]["enum"] == ["API", "scp", "slack", "email"]
    assert "MMAAPI" in api_classes()


class FollowUpAPI:
    """SkyPortal's stub base (facility_apis/interface.py): every method a stub."""

    @classmethod
    def implements(cls) -> dict[str, bool]:
        return {name: getattr(cls, name, None) is not getattr(FollowUpAPI, name, None) for name in SKYPORTAL_METHODS}

    @staticmethod
    async def submit(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    @staticmethod
    async def delete(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    @classmethod
    def frontend_render_info(cls, instrument: Any, user: Any, **kwargs: Any) -> dict[str, Any]:
        return {
            "methodsImplemented": cls.implements(),
            "formSchema": cls.custom_json_schema(instrument, user),
            "formSchemaForcedPhotometry": None,
            "formSchemaAltdata": cls.form_json_schema_altdata,
            "formSchemaConfig": None,
            "uiSchema": {},
            "aliasLookup": {},
            "priorityOrder": "asc",
        }


class Listener:
    pass


class SkyPortalMMAAPI(FollowUpAPI):
    """SkyPortal's own generating class, as far as this test needs it: it makes plans."""

    made: ClassVar[list[int]] = []

    @staticmethod
    async def submit(request_id: int, session: Any, asynchronous: bool = True) -> None:
        SkyPortalMMAAPI.made.append(request_id)

    @staticmethod
    async def delete(request: Any, session: Any, **kwargs: Any) -> None:
        pass

    @staticmethod
    def custom_json_schema(instrument: Any, user: Any, **kwargs: Any) -> dict[str, Any]:
        return {"type": "object", "properties": {"queue_name": {"type": "string"}, "filters": {"type": "string"}}}

    form_json_schema_altdata: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"allocation_type": {"type": "string", "enum": ["API", "slack", "email"]}},
    }


def test_bound_on_skyportals_generating_class_its_plan_making_stays_skyportals(queue):
    bound = bind(FollowUpAPI, Listener, bases={"MMAAPI": SkyPortalMMAAPI}).MMAAPI
    assert issubclass(bound, SkyPortalMMAAPI)
    table = bound.implements()
    assert table["submit"] and table["delete"] and table["send"] and table["remove"] and not table["get"]
    info = bound.frontend_render_info(None, None)
    assert info["formSchema"] == SkyPortalMMAAPI.custom_json_schema(None, None), "SkyPortal's plan form"
    assert info["formSchemaAltdata"]["properties"]["allocation_type"]["enum"] == ["API", "scp", "slack", "email"], "this package's allocation form"
    run(bound.submit(21, None))
    assert SkyPortalMMAAPI.made == [21]
    request = make_plan_request(altdata=api_altdata(queue))
    run(bound.send(request, AsyncSession(request)))
    assert request.status == SENT


# -- reading SkyPortal's plan request ----------------------------------------------------------


def test_the_plan_is_read_from_the_plan_requests_planned_observations():
    request = make_plan_request(altdata={"allocation_type": "API", "endpoint": "https://q.example.org", "api_token": TOKEN}, fields=4)
    core = plan_request(request)
    document = core.payload[PLAN_KEY]
    observations = request.observation_plans[0].planned_observations
    assert document["queue_name"] == "ToO_S250818k_night1"
    assert document["validity_window_mjd"] == [to_mjd(request.payload["start_date"]), to_mjd(request.payload["end_date"])]
    assert document["queue_type"] == "list" and document["user"] == "observer" and document["event"] == "2025-08-18T01:02:03"
    assert [t["request_id"] for t in document["targets"]] == [1, 2, 3, 4]
    assert [(t["field_id"], t["ra"], t["dec"], t["filter"], t["exposure_time"]) for t in document["targets"]] == [
        (o.field.field_id, o.field.ra, o.field.dec, o.filt, o.exposure_time) for o in observations
    ]
    assert (core.target.id, core.target.ra, core.target.dec) == ("2025-08-18T01:02:03", observations[0].field.ra, observations[0].field.dec)


# -- send --------------------------------------------------------------------------------------


def test_send_queues_the_plan_with_skyportals_exact_status_and_redacted_transactions(queue):
    request = make_plan_request(altdata=api_altdata(queue), fields=5000)
    session = AsyncSession(request)
    assert run(MMAAPI.send(request, session)) is None
    assert request.status == SENT == "submitted to telescope queue"
    assert len(queue.queues["ToO_S250818k_night1"]["targets"]) == 5000
    (transaction,) = session.transactions
    assert transaction.observation_plan_request is request and transaction.initiator_id == 42
    assert transaction.response["remote_id"] == "api:ToO_S250818k_night1" and "5000 planned observations" in transaction.response["detail"]
    assert TOKEN not in json.dumps([transaction.request, transaction.response])


def test_an_allocation_holding_skyportals_code_keys_sends_as_before(queue):
    legacy = {"protocol": "http", "host": "127.0.0.1", "port": str(queue.port), "access_token": TOKEN}
    request = make_plan_request(altdata=legacy)
    session = AsyncSession(request)
    run(MMAAPI.send(request, session))
    assert request.status == SENT and "ToO_S250818k_night1" in queue.queues
    assert TOKEN not in json.dumps([t.request for t in session.transactions])


def test_a_plan_the_queue_refuses_reads_rejected_from_telescope_queue(queue):
    request = make_plan_request(altdata=api_altdata(queue))
    other = make_plan_request(altdata=api_altdata(queue), fields=1, request_id=22)
    run(MMAAPI.send(other, AsyncSession(other)))
    run(MMAAPI.send(request, AsyncSession(request)))
    assert request.status.startswith(f"{REFUSED}: ") and "already holds a different plan named ToO_S250818k_night1" in request.status


def test_a_plan_that_was_not_delivered_stays_sendable_and_says_why(queue):
    request = make_plan_request(altdata=api_altdata(queue))
    session = AsyncSession(request)
    queue.down("503")
    with pytest.raises(FacilityError, match=r"could not deliver the plan: .*503"):
        run(MMAAPI.send(request, session))
    assert request.status == "complete", "SkyPortal offers Send to Queue again"
    assert session.commits == 1 and len(session.transactions) == 1, "the attempt's record outlives SkyPortal's rollback"
    queue.up()
    run(MMAAPI.send(request, session))
    assert request.status == SENT


def test_a_wrong_allocation_is_said_and_nothing_is_sent(queue):
    request = make_plan_request(altdata={"allocation_type": "API", "endpoint": queue.url})
    with pytest.raises(FacilityError, match=r"\$\.api_token"):
        run(MMAAPI.send(request, AsyncSession(request)))
    assert request.status == "complete" and queue.requests == []


def test_an_empty_plan_is_not_sent():
    configure()
    request = make_plan_request(altdata={"allocation_type": "API", "endpoint": "https://q.example.org", "api_token": TOKEN}, fields=0)
    with pytest.raises(FacilityError, match="no planned observation"):
        run(MMAAPI.send(request, AsyncSession(request)))


# -- remove ------------------------------------------------------------------------------------


def test_remove_without_a_session_takes_the_plan_back_from_the_queue(queue):
    request = make_plan_request(altdata=api_altdata(queue))
    session = AsyncSession(request)
    run(MMAAPI.send(request, session))
    run(MMAAPI.remove(request))  # SkyPortal's handler passes no session
    assert request.status == REMOVED == "deleted from telescope queue"
    assert queue.queues == {}
    assert request.transactions[0].response["detail"] == f"removed ToO_S250818k_night1 from the queue at 127.0.0.1:{queue.port}"
    assert len(session.transactions) == 2


def test_a_removal_that_failed_raises_so_skyportal_says_failed_to_remove(queue):
    request = make_plan_request(altdata=api_altdata(queue))
    run(MMAAPI.send(request, AsyncSession(request)))
    queue.down("503")
    with pytest.raises(FacilityError, match="could not remove the plan"):
        run(MMAAPI.remove(request))
    assert request.status == SENT and "ToO_S250818k_night1" in queue.queues


def test_scp_send_and_remove_through_skyportals_calls():
    with SFTPEmulator(users={"obsplans": PASSWORD}) as server:
        server.makedirs("/queue")
        configure(egress=loopback_egress(server))
        altdata = {
            "allocation_type": "scp",
            "host": "127.0.0.1",
            "port": server.port,
            "username": "obsplans",
            "password": PASSWORD,
            "directory": "/queue",
            "host_key": server.host_key,
        }
        request = make_plan_request(altdata=altdata, fields=5000)
        session = AsyncSession(request)
        run(MMAAPI.send(request, session))
        assert request.status == SENT and server.listing("/queue") == ["ToO_S250818k_night1.json"]
        assert len(json.loads(server.read("/queue/ToO_S250818k_night1.json"))["targets"]) == 5000
        run(MMAAPI.remove(request))
        assert request.status == REMOVED and server.listing("/queue") == []
        assert PASSWORD not in json.dumps([[t.request, t.response] for t in session.transactions])
