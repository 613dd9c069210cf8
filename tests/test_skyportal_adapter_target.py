"""What SkyPortal knows of a source reaches the facilities: its aliases (Fink's diaObjectId) and,
for a facility that asks, its photometry (ZTF's flux-weighted centroid); ZTFAPI and FINKFPAPI
through SkyPortal's call shape, directly against the emulators and handed to the gateway."""

import asyncio
import json
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from responses import matchers

from facility_apis.skyportal import FINKFPAPI, ZTFAPI, configure
from facility_apis.testing.fink import FinkEmulator
from facility_apis.testing.ipac import IPACEmulator
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal_models import AsyncSession, Instrument, Photometry, Stream, make_request

DIA_ID = "313761043604045880"
LOGIN = ("ztffps-adapter", "shared-adapter-pw")
EMAIL, USERPASS = "adapter@example.org", "acct-adapter-pw"
IPAC_ALTDATA = {"ipac_http_user": LOGIN[0], "ipac_http_password": LOGIN[1], "ipac_email": EMAIL, "ipac_userpass": USERPASS}
ZTF_INSTRUMENT = (4, "ZTF", ["ztfg", "ztfr", "ztfi"])
LSST_INSTRUMENT = (8, "LSST", ["lsstu", "lsstg", "lsstr", "lssti", "lsstz", "lssty"])
CENTROID = {
    "start_date": "2026-09-01",
    "end_date": "2026-10-31",
    "position": "Flux weighted centroid (ZTF alert photometry only)",
    "request_type": "forced_photometry",
}


#: SkyPortal's models are the fakes in every test here (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fakes")


def run(coroutine):
    return asyncio.run(coroutine)


def photometry_of_the_source():
    ztf, other = Instrument(4, "ZTF"), Instrument(5, "KAIT")
    alerts = [Stream(1, "ZTF Public")]
    return [
        Photometry(1, 400.0, 20.0, ra=210.5001, dec=12.25, instrument=ztf, streams=alerts),
        Photometry(2, 400.0, 20.0, ra=210.5003, dec=12.25, instrument=ztf, streams=alerts),
        Photometry(3, 900.0, 20.0, ra=210.6, dec=12.3, instrument=other, streams=alerts),  # not ZTF
        Photometry(4, 900.0, 20.0, ra=210.6, dec=12.3, instrument=ztf),  # not from an alert
        Photometry(5, 900.0, 20.0, ra=210.6, dec=12.3, instrument=ztf, streams=alerts, origin="fp"),  # forced photometry
    ]


def test_ztfapi_sends_the_centroid_of_the_sources_ztf_alert_photometry(fakes):
    with IPACEmulator(http_login=LOGIN, accounts={EMAIL: USERPASS}) as ipac:
        configure(facilities={"ztf_fp": {"base_url": ipac.url}}, egress=loopback_egress(ipac))
        request = make_request(altdata=IPAC_ALTDATA, payload=CENTROID, instrument=ZTF_INSTRUMENT, api_classname="ZTFAPI")
        request.obj.photometry = photometry_of_the_source()
        run(ZTFAPI.submit(request, AsyncSession(request)))
        (job,) = ipac.jobs
    assert (job.ra, job.dec) == ("210.5002000", "12.2500000")
    assert request.status.startswith("submitted: IPAC queued a job for ra 210.5002000, dec 12.2500000") and "(flux-weighted centroid)" in request.status
    assert fakes.photometry_loads == 1


def test_the_sources_photometry_is_loaded_only_when_the_form_asks_for_a_centroid(fakes):
    with IPACEmulator(http_login=LOGIN, accounts={EMAIL: USERPASS}) as ipac:
        configure(facilities={"ztf_fp": {"base_url": ipac.url}}, egress=loopback_egress(ipac))
        payload = {**CENTROID, "position": "Source (object's coordinates)"}
        request = make_request(altdata=IPAC_ALTDATA, payload=payload, instrument=ZTF_INSTRUMENT, api_classname="ZTFAPI")
        run(ZTFAPI.submit(request, AsyncSession(request)))
        assert (ipac.jobs[0].ra, ipac.jobs[0].dec) == ("210.5000000", "12.2500000")
    assert fakes.photometry_loads == 0


def test_a_centroid_without_qualifying_photometry_is_rejected_with_the_reason(fakes):
    configure(facilities={"ztf_fp": {"base_url": "https://ztfweb.ipac.caltech.edu"}})
    request = make_request(altdata=IPAC_ALTDATA, payload=CENTROID, instrument=ZTF_INSTRUMENT, api_classname="ZTFAPI")
    session = AsyncSession(request)
    run(ZTFAPI.submit(request, session))
    assert request.status.startswith("rejected: invalid payload: $.position: no photometry of the source qualifies for a centroid")
    assert session.transactions == []  # nothing was sent


def test_finkfpapi_takes_the_id_from_the_sources_alias_and_stores_the_photometry(fakes):
    with FinkEmulator() as fink:
        fink.add_object(DIA_ID, points=18)
        configure(facilities={"fink_fp": {"base_url": fink.url}}, egress=loopback_egress(fink))
        request = make_request(altdata={}, payload={"request_type": "forced_photometry"}, instrument=LSST_INSTRUMENT, api_classname="FINKFPAPI")
        request.obj.alias = ["ZTF26skyp", f"LSST:{DIA_ID}"]
        session = AsyncSession(request)
        run(FINKFPAPI.submit(request, session))
        assert [q["diaObjectId"] for q in fink.queries] == [DIA_ID]
    assert request.status.startswith("complete: 18 points (") and request.status.endswith(f"from Fink for diaObjectId {DIA_ID}")
    (body,) = session.photometry
    assert body["obj_id"] == "ZTF26skyp" and body["instrument_id"] == 8 and len(body["mjd"]) == 18
    assert set(body["filter"]) <= set(LSST_INSTRUMENT[2]) and body["origin"] == "fink_fp"
    assert fakes.photometry_loads == 0


def test_the_hand_off_sends_what_was_decided_from_the_source():
    gateway, token = "https://gateway.test", "gw-token-target"
    configure(gateway_url=gateway, gateway_token=token)
    auth = matchers.header_matcher({"Authorization": f"token {token}"})
    with responses.RequestsMock() as mock:
        mock.put(f"{gateway}/api/allocations/5", json={"status": "success", "data": {"id": 5}}, match=[auth])
        mock.post(f"{gateway}/api/followup_request", json={"status": "success", "data": {"id": 21, "state": "pending"}}, match=[auth])
        fink = make_request(altdata={}, payload={"request_type": "forced_photometry"}, instrument=LSST_INSTRUMENT, api_classname="FINKFPAPI")
        fink.obj.alias = [DIA_ID]
        run(FINKFPAPI.submit(fink, AsyncSession(fink)))
        mock.post(f"{gateway}/api/followup_request", json={"status": "success", "data": {"id": 22, "state": "pending"}}, match=[auth])
        ztf = make_request(altdata=IPAC_ALTDATA, payload=CENTROID, instrument=ZTF_INSTRUMENT, api_classname="ZTFAPI")
        ztf.obj.photometry = photometry_of_the_source()
        run(ZTFAPI.submit(ztf, AsyncSession(ztf)))
        bodies = [json.loads(call.request.body) for call in mock.calls if call.request.url.endswith("/api/followup_request")]
    assert fink.status == "submitted to gateway (request 21)" and ztf.status == "submitted to gateway (request 22)"
    assert bodies[0]["payload"] == {"diaObjectId": DIA_ID, "snr_threshold": 3} and bodies[0]["target"]["aliases"] == [DIA_ID]
    assert (bodies[1]["payload"]["centroid_ra"], bodies[1]["payload"]["centroid_dec"]) == (210.5002, 12.25)
    assert "photometry" not in bodies[1]["target"]  # the gateway gets the centroid, not the photometry
    assert USERPASS not in repr(bodies)  # the account travels only in the allocation body


def test_the_ipac_account_never_reaches_skyportals_records(fakes):
    with IPACEmulator(http_login=LOGIN, accounts={EMAIL: USERPASS}) as ipac:
        configure(facilities={"ztf_fp": {"base_url": ipac.url}}, egress=loopback_egress(ipac))
        payload = {**CENTROID, "position": "Source (object's coordinates)"}
        request = make_request(altdata=IPAC_ALTDATA, payload=payload, instrument=ZTF_INSTRUMENT, api_classname="ZTFAPI")
        session = AsyncSession(request)
        run(ZTFAPI.submit(request, session))
    (transaction,) = session.transactions
    url = transaction.request["url"]
    assert dict(parse_qsl(urlsplit(url).query))["userpass"] == "***" and dict(parse_qsl(urlsplit(url).query))["email"] == "***"
    stored = repr([t.request for t in session.transactions]) + repr([t.response for t in session.transactions]) + request.status
    assert all(secret not in stored for secret in (LOGIN[1], EMAIL, USERPASS, "adapter%40example.org"))
