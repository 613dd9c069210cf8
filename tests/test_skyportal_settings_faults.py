"""A configuration mistake never takes SkyPortal down (issue 9, item 1).

SkyPortal imports its handlers at start-up, and that import computes every class's forms: anything
this package raises there stops the whole app. A bad setting is logged once, reported by the
operations it concerns in their status, and every other facility keeps working.
"""

import asyncio
import logging

import pytest

from facility_apis.core.errors import FacilityError
from facility_apis.core.interface import Facility, Kind
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.registry import Registry
from facility_apis.facilities.atlas import ATLASFacility
from facility_apis.skyportal import api_classes, bind, current_settings, reset, settings
from facility_apis.testing.skyportal_models import AsyncSession, make_request, use_fake_models

PAYLOAD = {"start_date": "2026-10-01", "end_date": "2026-10-31"}


class Notice(Facility):
    """A facility needing no settings at all: it must keep working whatever else is broken."""

    name, title, kind, skyportal_class = "notice", "Notice", Kind.NOTIFICATION, "NOTICEAPI"

    @classmethod
    def altdata_schema(cls):
        return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {}}

    def request_schema(self):
        return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {"note": {"type": "string", "title": "Note"}}}

    def submit(self, request, transport):
        return Outcome(State.COMPLETED, "noted")


@pytest.fixture(autouse=True)
def fresh():
    reset()
    with use_fake_models():
        yield
    reset()


@pytest.fixture
def registry():
    registry = Registry({"atlas": "facility_apis.facilities.atlas:ATLASFacility"}, group=None)
    registry.register("notice", Notice)
    return registry


def skyportal_config(monkeypatch, config):
    """SkyPortal's config.yaml as baselayer's load_env() would give it."""
    monkeypatch.setattr(settings, "_skyportal_config", lambda: config)


def everything_skyportal_reads_at_start_up(cls):
    """What SkyPortal's handlers and UI read from a class, as they read it."""
    return [
        cls.form_json_schema,
        cls.form_json_schema_forced_photometry,
        cls.form_json_schema_altdata,
        cls.ui_json_schema,
        cls.alias_lookup,
        cls.priorityOrder,
        cls.implements(),
        cls.custom_json_schema(None, None),
        cls.frontend_render_info(None, None),
        cls.frontend_render_info({"name": "ATLAS", "filters": ["atlasc"]}, None),
    ]


BROKEN = [
    # (the gateway was meant for ATLAS only: Notice runs here whatever happens to it)
    ({"facility_apis": {"gateway": {"url": "https://gw.example.org", "facilities": ["atlas"]}}}, "the gateway needs both a URL and a token"),
    ({"facility_apis": {"gateway": {"url": "http://gw.example.org", "token": "t0k", "facilities": ["atlas"]}}}, "the gateway URL is refused"),
    ({"facility_apis": {"egress": {"allow": ["not a network"]}}}, "facility_apis.egress.allow"),
    ({"facility_apis": {"facilities": {"atlas": {"base_url": "http://atlas.example.org/forcedphot"}}}}, "the configured ATLAS base_url is refused"),
    ({"app": {"atlas": {"protocol": "http", "host": "atlas.example.org"}}}, "the configured ATLAS base_url is refused"),
]


@pytest.mark.parametrize(("config", "problem"), BROKEN, ids=["gateway-without-token", "gateway-over-http", "egress", "atlas-url", "legacy-atlas-url"])
def test_a_bad_setting_never_raises_at_import_or_form_time_and_is_logged_once(monkeypatch, caplog, registry, config, problem):
    skyportal_config(monkeypatch, config)
    caplog.set_level(logging.ERROR)
    classes = api_classes(registry)
    for _ in range(3):  # SkyPortal reads these again and again: one log line, not one per read
        for cls in classes.values():
            everything_skyportal_reads_at_start_up(cls)
    form = classes["ATLASAPI"].form_json_schema_forced_photometry
    assert form["properties"]["start_date"]["title"]  # the form is still served
    logged = [r.getMessage() for r in caplog.records if problem in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(("config", "problem"), BROKEN, ids=["gateway-without-token", "gateway-over-http", "egress", "atlas-url", "legacy-atlas-url"])
def test_a_bad_setting_is_reported_in_the_status_and_other_facilities_keep_working(monkeypatch, registry, config, problem):
    skyportal_config(monkeypatch, config)
    classes = api_classes(registry)
    request = make_request(altdata={"api_token": "t0ken-abc"}, payload=PAYLOAD)
    session = AsyncSession(request)
    asyncio.run(classes["ATLASAPI"].submit(request, session))
    assert request.status.startswith("failed to submit: facility_apis is not configured correctly in SkyPortal: ")
    assert problem in request.status and "t0k" not in request.status
    assert session.transactions == []
    with pytest.raises(FacilityError, match="not configured correctly"):
        asyncio.run(classes["ATLASAPI"].delete(request, session))
    if "egress" not in problem:  # the egress rule concerns every facility; the rest only ATLAS
        notice = make_request(payload={"note": "hi"}, api_classname="NOTICEAPI")
        asyncio.run(classes["NOTICEAPI"].submit(notice, AsyncSession(notice)))
        assert notice.status == "complete: noted"


def test_the_settings_in_force_carry_the_problem_and_drop_only_the_broken_part(monkeypatch):
    skyportal_config(monkeypatch, {"facility_apis": {"gateway": {"url": "https://gw.example.org"}, "facilities": {"atlas": {"poll_interval": 5}}}})
    loaded = current_settings()
    assert loaded.gateway_url is None and loaded.facility_config("atlas") == {"poll_interval": 5}
    assert loaded.problem_for("atlas") == "facility_apis.gateway: the gateway needs both a URL and a token"
    with pytest.raises(Exception, match="needs both"):
        settings.load_settings({"facility_apis": {"gateway": {"url": "https://gw.example.org"}}}, {})  # explicit loading stays strict


def test_a_second_claim_on_a_skyportal_class_is_left_out_not_raised(caplog, registry):
    class Twin(ATLASFacility):
        name = "atlas_twin"

    registry.register("atlas_twin", Twin)
    caplog.set_level(logging.ERROR)

    class FollowUpAPI:
        pass

    class Listener:
        pass

    bound = bind(FollowUpAPI, Listener, registry)
    assert bound.ATLASAPI.facility_class is ATLASFacility and bound.NOTICEAPI.facility_class is Notice
    assert "atlas_twin" in caplog.text and "left out" in caplog.text


def test_configure_takes_the_config_yaml_shape_of_egress_and_names_a_bad_entry():
    from facility_apis.core.egress import EgressPolicy
    from facility_apis.core.errors import ConfigurationError
    from facility_apis.skyportal import settings

    try:
        configured = settings.configure(egress={"allow": ["127.0.0.1"]})
        assert isinstance(configured.egress, EgressPolicy) and configured.egress.refusal("http://127.0.0.1:9/x") is None
        with pytest.raises(ConfigurationError, match=r"^egress\.allow: "):
            settings.configure(egress={"allow": ["not an address at all/99"]})
        with pytest.raises(ConfigurationError, match="egress must be an EgressPolicy or"):
            settings.configure(egress=["127.0.0.1"])
    finally:
        settings.reset()
