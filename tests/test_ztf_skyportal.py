"""SkyPortal's ZTFAPI serves two facilities, ZTF triggering and ZTF forced photometry, on one
allocation: both request types end to end through SkyPortal's call shape against the Kowalski and
IPAC emulators, the merged allocation form, and each facility refusing to run without its own
credentials."""

from __future__ import annotations

import asyncio
import json

import pytest

from facility_apis.core.errors import AltdataError
from facility_apis.skyportal import ZTFAPI, configure
from facility_apis.testing.ipac import IPACEmulator
from facility_apis.testing.kowalski import KowalskiEmulator
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal_models import AsyncSession, make_request

TOKEN = "kowalski-ztfapi-token-61d0"
LOGIN = ("ztffps-ztfapi", "shared-ztfapi-pw")
EMAIL, USERPASS = "ztfapi@example.org", "acct-ztfapi-pw"
IPAC_ALTDATA = {"ipac_http_user": LOGIN[0], "ipac_http_password": LOGIN[1], "ipac_email": EMAIL, "ipac_userpass": USERPASS}
BOTH = {"access_token": TOKEN, **IPAC_ALTDATA}
SECRETS = (TOKEN, LOGIN[1], EMAIL, USERPASS)
ZTF_INSTRUMENT = (4, "ZTF", ["ztfg", "ztfr", "ztfi"])
TRIGGERED = {"request_type": "triggered", "start_date": "2036-12-10", "end_date": "2036-12-11", "filters": ["ztfr"], "field_ids": [528], "queue_name": "sp1"}
FORCED = {"request_type": "forced_photometry", "start_date": "2026-09-01", "end_date": "2026-10-31", "position": "Source (object's coordinates)"}


#: SkyPortal's models are the fakes in every test here (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fakes")


@pytest.fixture
def services():
    with KowalskiEmulator({TOKEN: "admin"}) as kowalski, IPACEmulator(http_login=LOGIN, accounts={EMAIL: USERPASS}) as ipac:
        configure(facilities={"ztf_trigger": {"base_url": kowalski.url}, "ztf_fp": {"base_url": ipac.url}}, egress=loopback_egress(kowalski, ipac))
        yield kowalski, ipac


def run(coroutine):
    return asyncio.run(coroutine)


def ztf_request(altdata, payload):
    request = make_request(altdata=altdata, payload=payload, instrument=ZTF_INSTRUMENT, api_classname="ZTFAPI")
    return request, AsyncSession(request)


def stored(session, request):
    return json.dumps([[t.request, t.response] for t in session.transactions], default=str) + request.status


def test_both_request_types_run_on_one_allocation(services):
    kowalski, ipac = services
    triggered, session = ztf_request(BOTH, TRIGGERED)
    run(ZTFAPI.submit(triggered, session))
    assert triggered.status == "submitted: ZTF queue ToO_sp1 accepted by Kowalski: 1 exposure of 300 s (ztfr on field 528), MJD 65037 to 65039"
    (transaction,) = session.transactions
    assert transaction.request["method"] == "PUT" and transaction.response["remote_id"] == "ToO_sp1"
    assert "request_type" not in transaction.request["body"]  # SkyPortal's marker stays home
    assert json.loads(kowalski.requests[0].body)["user"] == "observer"  # SkyPortal's requester

    forced, forced_session = ztf_request(BOTH, FORCED)
    run(ZTFAPI.submit(forced, forced_session))
    assert forced.status.startswith("submitted: IPAC queued a job for ra 210.5000000, dec 12.2500000")
    assert [r.path for r in ipac.requests] == ["/cgi-bin/requestForcedPhotometry.cgi"] and len(kowalski.requests) == 1

    run(ZTFAPI.delete(triggered, session))
    assert triggered.status == "deleted: queue ToO_sp1 removed from ZTF's scheduler" and kowalski.queues == {}
    for request, sess in ((triggered, session), (forced, forced_session)):
        assert all(secret not in stored(sess, request) for secret in SECRETS)


def test_each_facility_refuses_to_run_without_its_own_credentials(services):
    kowalski, ipac = services
    triggered, session = ztf_request(IPAC_ALTDATA, TRIGGERED)
    run(ZTFAPI.submit(triggered, session))
    assert triggered.status == "failed to submit: invalid altdata: $.access_token: is required"
    forced, forced_session = ztf_request({"access_token": TOKEN}, FORCED)
    run(ZTFAPI.submit(forced, forced_session))
    assert forced.status.startswith("failed to submit: invalid altdata: $.ipac_email: is required; $.ipac_http_password: is required;")
    assert kowalski.requests == [] and ipac.requests == []


def test_a_payload_without_request_type_is_a_trigger(services):
    kowalski, _ = services
    request, session = ztf_request({"access_token": TOKEN}, {k: v for k, v in TRIGGERED.items() if k != "request_type"})
    run(ZTFAPI.submit(request, session))
    assert request.status.startswith("submitted: ZTF queue ToO_sp1") and list(kowalski.queues) == ["ToO_sp1"]


def test_the_allocation_form_and_its_validation_accept_either_set_of_credentials_or_both():
    configure()
    form = ZTFAPI.form_json_schema_altdata
    assert set(form["properties"]) == {"access_token", *IPAC_ALTDATA} and form["required"] == []
    # The browser's verdict on the merged form is the classes' own: either set, or both, never none or part.
    from jsonschema import Draft7Validator

    browser = Draft7Validator(form)
    assert all(browser.is_valid(a) for a in (BOTH, {"access_token": TOKEN}, IPAC_ALTDATA))
    assert not any(browser.is_valid(a) for a in ({}, {"access_token": TOKEN, "ipac_email": EMAIL}, {"ipac_email": EMAIL}))
    assert ZTFAPI.validate_altdata(BOTH) == BOTH
    assert ZTFAPI.validate_altdata({"access_token": TOKEN}) == {"access_token": TOKEN}
    assert ZTFAPI.validate_altdata(IPAC_ALTDATA) == IPAC_ALTDATA
    with pytest.raises(AltdataError) as caught:
        ZTFAPI.validate_altdata({"access_token": TOKEN, "ipac_email": EMAIL})  # IPAC's fields come all four or none
    assert "$.ipac_http_user" in str(caught.value) and EMAIL not in str(caught.value)
    with pytest.raises(AltdataError):
        ZTFAPI.validate_altdata({})


def test_skyportal_sees_both_forms_and_both_operations():
    configure()
    info = ZTFAPI.frontend_render_info({"id": 4, "name": "ZTF", "filters": ["ztfg", "ztfr"]}, None)
    assert info["formSchema"]["properties"]["filters"]["items"]["enum"] == ["ztfg", "ztfr"]
    assert "position" in info["formSchemaForcedPhotometry"]["properties"]
    assert info["methodsImplemented"]["submit"] and info["methodsImplemented"]["delete"] and info["methodsImplemented"]["get"]
    assert info["formSchema"]["properties"]["request_type"]["enum"] == ["forced_photometry", "triggered"]
    # One uiSchema serves both forms: its order must name every field of each (the form library
    # refuses to render a form whose fields the order misses).
    order = info["uiSchema"]["ui:order"]
    for form in (info["formSchema"], info["formSchemaForcedPhotometry"]):
        assert set(form["properties"]) <= set(order)
