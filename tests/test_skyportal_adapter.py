"""The SkyPortal classes through SkyPortal's own call shape, against the ATLAS emulator."""

import asyncio
import json
import time
from typing import Any, ClassVar

import pytest
from jsonschema import Draft7Validator

from facility_apis.core.errors import AltdataError, ConfigurationError, DuplicateFacility, FacilityError
from facility_apis.core.interface import Kind
from facility_apis.core.registry import Registry
from facility_apis.skyportal import (
    ATLASAPI,
    SKYPORTAL_METHODS,
    Settings,
    api_classes,
    bind,
    class_names,
    configure,
    load_settings,
)
from facility_apis.skyportal.adapter import NOT_FOLLOWED
from facility_apis.testing import ATLASEmulator
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal_models import AsyncSession, make_request

TOKEN = "adapter-atlas-token-5f1e"
PAYLOAD = {"start_date": "2026-10-01", "end_date": "2026-10-31"}
RENDER_KEYS = {
    "methodsImplemented",
    "formSchema",
    "formSchemaForcedPhotometry",
    "formSchemaAltdata",
    "formSchemaConfig",
    "uiSchema",
    "aliasLookup",
    "priorityOrder",
}


#: SkyPortal's models are the fakes in every test here (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fakes")


@pytest.fixture
def atlas():
    with ATLASEmulator(tokens={TOKEN: "observer"}, rows=12) as emulator:
        configure(facilities={"atlas": {"base_url": emulator.base_url, "poll_interval": 0.05}}, egress=loopback_egress(emulator))
        yield emulator


def run(coroutine):
    return asyncio.run(coroutine)


def serialized(session, request, models=None):
    """Everything the classes left in SkyPortal, as text."""
    rows = [{"request": t.request, "response": t.response, "initiator_id": t.initiator_id} for t in session.transactions]
    return json.dumps([rows, request.status, session.photometry, models.refreshes if models else None], default=str)


def submitted(payload=None, **kwargs):
    request = make_request(altdata={"api_token": TOKEN}, payload=payload or PAYLOAD, **kwargs)
    return request, AsyncSession(request)


def poll_until_done(request, session, attempts=40):
    for _ in range(attempts):
        run(ATLASAPI.get(request, session))
        if not request.status.startswith(("queued", "running", "submitted")):
            return
        time.sleep(0.05)
    raise AssertionError(f"still {request.status!r}")


# -- submit / get / delete against the emulator ------------------------------------------------


def test_submit_sets_status_and_records_a_redacted_transaction(atlas, fakes):
    request, session = submitted({**PAYLOAD, "request_type": "forced_photometry"})
    assert run(ATLASAPI.submit(request, session, refresh_source=True)) is None

    assert request.status == "submitted: ATLAS task 1" + NOT_FOLLOWED
    (transaction,) = session.transactions
    assert transaction.followup_request is request and request.transactions == [transaction]
    assert transaction.initiator_id == request.last_modified_by_id == 42
    assert transaction.request["method"] == "POST" and transaction.request["url"] == f"{atlas.base_url}/queue/"
    assert transaction.request["headers"]["Authorization"] == "***"
    assert transaction.response["status_code"] == 201
    assert transaction.response["remote_id"] == f"{atlas.base_url}/queue/1/"
    assert json.loads(transaction.response["content"])["url"] == transaction.response["remote_id"]
    assert "request_type" not in transaction.request["body"]  # SkyPortal's marker is not sent to ATLAS
    assert session.commits == 0, "SkyPortal's handler commits, not the facility"
    assert fakes.refreshes == [{"obj_key": request.obj.internal_key, "request_id": 11, "user_id": 42, "refresh_source": True, "refresh_requests": False}]
    assert TOKEN not in serialized(session, request, fakes)
    (sent,) = [r for r in atlas.requests if r.method == "POST"]
    assert sent.headers["Authorization"] == f"Token {TOKEN}"  # the real token went to ATLAS only


def test_get_follows_to_completion_and_stores_the_photometry(atlas, fakes, caplog):
    caplog.set_level("DEBUG")
    request, session = submitted()
    run(ATLASAPI.submit(request, session))
    poll_until_done(request, session)

    assert request.status.startswith("complete: 12 points")
    (body,) = session.photometry
    assert body["obj_id"] == "ZTF26skyp" and body["instrument_id"] == 3 and body["group_ids"] == [2, 7]
    assert body["origin"] == "fp" and body["magsys"] == "ab" and len(body["mjd"]) == 12
    assert set(body["filter"]) <= {"atlasc", "atlaso"}
    # every poll recorded its exchanges, all tagged with the task URL
    assert len(session.transactions) >= 3
    assert {t.response.get("remote_id") for t in session.transactions} == {f"{atlas.base_url}/queue/1/"}
    assert any("/results/" in t.request["url"] for t in session.transactions)
    assert TOKEN not in serialized(session, request, fakes)
    assert caplog.records and TOKEN not in caplog.text


def test_direct_mode_stores_photometry_beyond_skyportals_upload_limit_in_several_uploads(fakes):
    with ATLASEmulator(tokens={TOKEN: "observer"}, rows=12_000) as emulator:
        configure(facilities={"atlas": {"base_url": emulator.base_url, "poll_interval": 0.05}}, egress=loopback_egress(emulator))
        request, session = submitted()
        run(ATLASAPI.submit(request, session))
        poll_until_done(request, session)
    assert request.status.startswith("complete: 12000 points")
    assert [len(body["mjd"]) for body in session.photometry] == [10_000, 2_000]


def test_get_recovers_the_task_from_the_newest_transaction_only(atlas):
    request, session = submitted()
    run(ATLASAPI.submit(request, session))
    request.transactions.insert(0, type(request.transactions[0])(request={}, response={"remote_id": f"{atlas.base_url}/queue/99/"}))
    run(ATLASAPI.get(request, session))
    assert request.status.startswith("canceled")  # task 99 does not exist: the newest record won
    assert session.transactions[-1].request["url"] == f"{atlas.base_url}/queue/99/"


def test_get_before_any_submission_changes_nothing(atlas):
    request, session = submitted()
    request.status = "failed to submit: could not connect to fallingstar-data.com"
    run(ATLASAPI.get(request, session))
    assert request.status == "failed to submit: could not connect to fallingstar-data.com"
    assert session.transactions == [] and atlas.requests == []


def test_delete_cancels_the_task_and_keeps_the_row():
    with ATLASEmulator(tokens={TOKEN: "observer"}, queue_time=30.0) as atlas:
        configure(facilities={"atlas": {"base_url": atlas.base_url}}, egress=loopback_egress(atlas))
        request, session = submitted()
        run(ATLASAPI.submit(request, session))
        run(ATLASAPI.delete(request, session, refresh_source=False))
        methods = [r.method for r in atlas.requests]
    assert request.status == "deleted: task canceled at ATLAS"
    assert methods == ["POST", "GET", "DELETE"]
    assert [t.request["method"] for t in reversed(request.transactions)] == methods
    assert TOKEN not in serialized(session, request)


def test_delete_that_fails_raises_and_keeps_the_status(atlas):
    request, session = submitted()
    run(ATLASAPI.submit(request, session))
    refusal = '{"detail": "You do not have permission to perform this action."}'
    atlas.faults.add("status", path_prefix="/forcedphot/queue/1/", method="DELETE", status=403, body=refusal)
    with pytest.raises(FacilityError, match=r"could not delete: ATLAS refused the credentials \(HTTP 403"):
        run(ATLASAPI.delete(request, session))
    assert request.status == "submitted: ATLAS task 1" + NOT_FOLLOWED


def test_throttled_submission_is_resubmittable_in_skyportal(atlas):
    atlas.throttle_next(1, wait=7)
    request, session = submitted()
    run(ATLASAPI.submit(request, session))
    assert request.status.startswith("failed to submit: rate limit reached")
    assert session.transactions[0].response["status_code"] == 429
    assert "remote_id" not in session.transactions[0].response


def test_bad_altdata_and_payload_never_reach_atlas_and_never_echo_the_secret(atlas):
    request, session = submitted()
    request.allocation.altdata = {"api_token": TOKEN, "base_url": "http://atlas.example.org"}
    run(ATLASAPI.submit(request, session))
    assert request.status.startswith("failed to submit: invalid altdata: $.base_url")
    request.allocation.altdata = {"api_token": TOKEN}
    request.payload = {"start_date": "2026-10-31", "end_date": "2026-10-01"}
    run(ATLASAPI.submit(request, session))
    assert request.status == "rejected: invalid payload: $.end_date: must not be before start_date"
    assert atlas.requests == [] and session.transactions == []
    assert TOKEN not in serialized(session, request)


def test_a_direct_submission_says_it_will_not_be_followed(atlas):
    """SkyPortal 1.4.0 never calls `get` in direct mode: the observer must not wait for results
    that cannot come (issue 9, item 2)."""
    request, session = submitted()
    run(ATLASAPI.submit(request, session))
    assert request.status.startswith("submitted: ATLAS task 1; not followed: SkyPortal does not poll requests in direct mode")
    assert "gateway" in request.status


@pytest.mark.parametrize("stored", ["{api_token: abc", "[1, 2]", "tok3n-abc"])
def test_credentials_stored_as_unreadable_text_fail_clearly_without_echoing_them(atlas, stored):
    """An allocation whose altdata SkyPortal holds as text that is not a JSON object (issue 9,
    item 14): a resubmittable failure naming the problem, no raw JSON error, no call to ATLAS."""
    request, session = submitted()
    request.allocation.altdata = stored
    run(ATLASAPI.submit(request, session))
    assert request.status.startswith("failed to submit: invalid altdata: $: ")
    assert "JSON object" in request.status
    assert "abc" not in request.status and "Expecting" not in request.status
    assert atlas.requests == [] and session.transactions == []
    with pytest.raises(FacilityError, match=r"invalid altdata: \$: "):
        run(ATLASAPI.delete(request, session))


def test_unusable_coordinates_reject_the_submission():
    configure()
    request, session = submitted(obj=("ZTF26nocoord", None, 12.0))
    run(ATLASAPI.submit(request, session))
    assert request.status == "rejected: invalid payload: $.ra: must be a finite number in [0, 360)"


def test_a_photometry_failure_in_skyportal_shows_in_the_status(atlas):
    request, session = submitted()
    run(ATLASAPI.submit(request, session))
    session.photometry_error = RuntimeError(f"database refused {TOKEN}")
    poll_until_done(request, session)
    assert request.status == "failed: the photometry could not be stored in SkyPortal: database refused ***"
    assert TOKEN not in serialized(session, request)


def test_altdata_from_skyportal_as_json_text_is_read(atlas):
    request, session = submitted()
    request.allocation.altdata = json.dumps({"api_token": TOKEN})
    run(ATLASAPI.submit(request, session))
    assert request.status == "submitted: ATLAS task 1" + NOT_FOLLOWED


# -- what SkyPortal reads before calling --------------------------------------------------------


@pytest.mark.parametrize("name", list(api_classes()))
def test_frontend_render_info_has_skyportals_keys_and_draft7_forms(name):
    configure()
    cls = api_classes()[name]
    info = cls.frontend_render_info({"id": 3, "name": "ATLAS", "filters": ["atlasc", "atlaso"]}, None)
    assert set(info) == RENDER_KEYS
    assert set(info["methodsImplemented"]) == set(SKYPORTAL_METHODS)
    forms = [info["formSchema"], info["formSchemaForcedPhotometry"]]
    if cls.facility_class.kind is Kind.OBSERVATION_PLAN:  # the plan form is the generating class's (SkyPortal's)
        assert forms == [None, None] and info["methodsImplemented"]["send"]
    else:
        assert any(form is not None for form in forms)
    for schema in [*forms, info["formSchemaAltdata"]]:
        if schema is not None:
            Draft7Validator.check_schema(schema)
            assert "$id" not in schema
    assert info["priorityOrder"] in ("asc", "desc")
    assert info["formSchemaConfig"] is None


def test_atlas_is_a_forced_photometry_class():
    configure()
    info = ATLASAPI.frontend_render_info(None, None)
    assert info["formSchema"] is None and ATLASAPI.form_json_schema is None
    assert ATLASAPI.custom_json_schema(None, None) is None
    form = info["formSchemaForcedPhotometry"]
    assert form == ATLASAPI.form_json_schema_forced_photometry
    assert not form.get("required"), "the dates have defaults the package fills: SkyPortal must not require them"
    assert info["priorityOrder"] == "asc" == ATLASAPI.priorityOrder
    assert info["aliasLookup"] == ATLASAPI.alias_lookup == {key: spec["title"] for key, spec in form["properties"].items() if "title" in spec}
    assert info["aliasLookup"]["snr_threshold"] == "Detection threshold (SNR)"
    assert info["formSchemaAltdata"]["properties"]["api_token"]["writeOnly"] is True
    # SkyPortal's UI marks forced-photometry payloads; the form must let that key through, hidden.
    Draft7Validator(form).validate({**PAYLOAD, "request_type": "forced_photometry"})
    assert info["uiSchema"]["request_type"] == {"ui:widget": "hidden"}
    assert info["uiSchema"]["ui:order"][-1] == "request_type"


def test_form_defaults_are_computed_at_each_read(monkeypatch):
    configure()
    from facility_apis.facilities.atlas import facility as atlas_module

    first = ATLASAPI.form_json_schema_forced_photometry["properties"]["end_date"]["default"]
    monkeypatch.setattr(atlas_module, "utcnow", lambda: __import__("datetime").datetime(2031, 1, 2, 3, 4))
    later = ATLASAPI.form_json_schema_forced_photometry["properties"]["end_date"]["default"]
    assert later == "2031-01-02" != first


def test_implements_matches_the_methods_defined():
    configure()
    table = ATLASAPI.implements()
    assert set(table) == set(SKYPORTAL_METHODS)
    assert {k for k, v in table.items() if v} == {"submit", "get", "delete", "validate_altdata"}
    assert not hasattr(ATLASAPI, "update")
    for name in ("submit", "get", "delete"):
        assert asyncio.iscoroutinefunction(getattr(ATLASAPI, name))


def test_implements_with_the_gateway():
    configure(gateway_url="https://gateway.test", gateway_token="gw-token")
    assert {k for k, v in ATLASAPI.implements().items() if v} == {"submit", "delete", "validate_altdata"}
    configure(gateway_url="https://gateway.test", gateway_token="gw-token", gateway_facilities=["other"])
    assert ATLASAPI.implements()["get"] is True


def test_validate_altdata_returns_cleaned_altdata_or_names_the_field():
    configure()
    assert ATLASAPI.validate_altdata({"api_token": TOKEN, "base_url": ""}, instrument={"name": "ATLAS"}) == {"api_token": TOKEN}
    with pytest.raises(AltdataError) as caught:
        ATLASAPI.validate_altdata({"api_token": 5})
    assert "$.api_token" in str(caught.value) and "5" not in str(caught.value).replace("$", "")


# -- naming, binding and settings -----------------------------------------------------------------


def test_every_registered_facility_gets_its_skyportal_class():
    from facility_apis.facilities.atlas import ATLASFacility

    class PagerFacility(ATLASFacility):
        name = "pager_duty"
        title = "Pager"
        skyportal_class = "PAGERDUTYAPI"

    registry = Registry({"atlas": "facility_apis.facilities.atlas:ATLASFacility"}, group=None)
    registry.register("pager_duty", PagerFacility)
    assert class_names(registry) == {"ATLASAPI": ("atlas",), "PAGERDUTYAPI": ("pager_duty",)}
    classes = api_classes(registry)
    assert classes["PAGERDUTYAPI"].facility_class is PagerFacility
    assert classes["PAGERDUTYAPI"].__name__ == "PAGERDUTYAPI"


def test_two_facilities_share_a_class_only_as_an_observation_and_a_forced_photometry_pair():
    from facility_apis.core.interface import Kind
    from facility_apis.facilities.atlas import ATLASFacility

    class Trigger(ATLASFacility):  # ATLAS's schemas, as the observation half of ATLASAPI
        name = "atlas_trigger"
        kind = Kind.OBSERVATION

        @classmethod
        def altdata_schema(cls):
            return ATLASFacility.altdata_schema()

        def request_schema(self):
            return ATLASFacility().request_schema()

    registry = Registry({"atlas": "facility_apis.facilities.atlas:ATLASFacility"}, group=None)
    registry.register("atlas_trigger", Trigger)
    configure()
    (cls,) = api_classes(registry).values()
    assert cls.facilities == (ATLASFacility, Trigger)
    assert cls.facility_for({"request_type": "forced_photometry"}) is ATLASFacility
    assert cls.facility_for({"request_type": "triggered"}) is Trigger and cls.facility_for({}) is Trigger
    info = cls.frontend_render_info(None, None)
    assert info["formSchema"] is not None and info["formSchemaForcedPhotometry"] is not None

    class Twin(ATLASFacility):
        name = "atlas_twin"

    registry.register("atlas_twin", Twin)
    with pytest.raises(DuplicateFacility, match="ATLASAPI is claimed by atlas, atlas_trigger, atlas_twin"):
        class_names(registry)


def test_an_observation_facility_narrows_its_form_to_the_instrument():
    from facility_apis.core.interface import Kind
    from facility_apis.facilities.atlas import ATLASFacility
    from facility_apis.skyportal import make_api_class

    class Imager(ATLASFacility):  # ATLAS's schemas, as an observation facility with filters
        kind = Kind.OBSERVATION

        def instrument_form(self, schema, *, name, filters):
            schema["properties"]["filters"] = {"type": "array", "items": {"enum": list(filters)}, "title": f"{name} filters"}
            return schema

    configure()
    cls = make_api_class("IMAGERAPI", Imager)
    form = cls.custom_json_schema({"name": "Cam", "filters": ["sdssg", "sdssr"]}, None)
    assert form["properties"]["filters"]["items"]["enum"] == ["sdssg", "sdssr"]
    info = cls.frontend_render_info({"name": "Cam", "filters": ["sdssg"]}, None)
    assert info["formSchemaForcedPhotometry"] is None and info["formSchema"]["properties"]["filters"]["title"] == "Cam filters"
    assert "filters" not in cls.form_json_schema["properties"]  # no instrument: the facility's form


def test_module_exposes_classes_by_skyportal_name():
    import facility_apis.skyportal as module

    assert module.ATLASAPI is ATLASAPI is module.api_class("ATLASAPI")
    assert "ATLASAPI" in dir(module)
    with pytest.raises(AttributeError):
        module.NOSUCHAPI  # noqa: B018


def test_bind_subclasses_skyportals_own_bases():
    class _Base:
        @classmethod
        def implements(cls):
            return {}

    class FollowUpAPI(_Base):
        form_json_schema = None
        form_json_schema_forced_photometry = None

        @staticmethod
        async def update(request, session):
            raise NotImplementedError

    class Listener:
        schema: ClassVar[dict[str, Any]] = {}

    configure()
    bound = bind(FollowUpAPI, Listener)
    assert issubclass(bound.ATLASAPI, FollowUpAPI) and issubclass(bound.ATLASAPI, ATLASAPI)
    assert issubclass(bound.FacilityMessageListener, Listener)
    assert bound.ATLASAPI.__name__ == "ATLASAPI" and bound.FacilityMessageListener.get_acl_id() == "Post from FacilityMessageListener"
    assert bound.ATLASAPI.form_json_schema_forced_photometry is not None  # ours, not the stub's None
    assert bound.ATLASAPI.implements()["submit"] is True
    assert bound.ATLASAPI.update is FollowUpAPI.update  # not implemented: SkyPortal's stub


def test_settings_from_skyportal_config_and_environment():
    config = {
        "app": {"atlas": {"protocol": "https", "host": "atlas.example.org", "port": 8443}},
        "facility_apis": {"gateway": {"url": "https://gw.example.org/", "facilities": ["atlas"]}},
    }
    settings = load_settings(config, {"FACILITY_APIS_GATEWAY_TOKEN": "gw-secret"})
    assert settings.facility_config("atlas") == {"base_url": "https://atlas.example.org:8443/forcedphot"}
    assert settings.gateway_url == "https://gw.example.org" and settings.hands_off("atlas")
    assert "gw-secret" not in repr(settings)
    explicit = load_settings({"facility_apis": {"facilities": {"atlas": {"base_url": "https://a.test/forcedphot"}}}, "app": config["app"]}, {})
    assert explicit.facility_config("atlas") == {"base_url": "https://a.test/forcedphot"}
    assert not explicit.hands_off("atlas")


@pytest.mark.parametrize(
    "kwargs",
    [{"gateway_url": "https://gw.test"}, {"gateway_token": "t"}, {"gateway_url": "http://gw.example.org", "gateway_token": "t"}],
)
def test_unusable_gateway_settings_are_refused(kwargs):
    with pytest.raises(ConfigurationError):
        Settings(**kwargs)


def test_configured_base_url_points_atlasapi_at_the_emulator(atlas):
    request, session = submitted()
    run(ATLASAPI.submit(request, session))
    assert atlas.requests and request.status.startswith("submitted")
