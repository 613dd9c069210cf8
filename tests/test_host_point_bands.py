"""``HostPoint.mjd``/``filter``/``mag``: when, in which band and how bright a point of the host's
photometry is, read from SkyPortal's rows and accepted in the gateway's request body (SEDM sends
the latest ZTF magnitudes as its prior photometry)."""

from facility_apis.core.interface import HostPoint
from facility_apis.gateway.api_schemas import FollowupRequestBody, body_errors
from facility_apis.skyportal.snapshot import host_point
from facility_apis.testing.skyportal_models import Photometry


def test_skyportal_rows_give_time_band_and_magnitude():
    row = Photometry(1, flux=120.0, fluxerr=4.0, ra=1.0, dec=2.0, origin=None, mjd=61000.25, filter="ztfr", mag=18.7)
    assert host_point(row) == HostPoint(1.0, 2.0, 120.0, 4.0, None, None, False, mjd=61000.25, filter="ztfr", mag=18.7)
    limit = Photometry(2, flux=None, fluxerr=4.0, mjd=61001.0, filter="ztfg", mag=None)
    assert (host_point(limit).mag, host_point(limit).filter) == (None, "ztfg")


def test_the_gateway_body_takes_them_and_refuses_other_keys():
    point = {"ra": 1.0, "dec": 2.0, "flux": 120.0, "fluxerr": 4.0, "mjd": 61000.25, "filter": "ztfr", "mag": 18.7}
    body = {"allocation_id": 1, "target": {"id": "ZTF26a", "ra": 1.0, "dec": 2.0, "photometry": [point]}, "payload": {}}
    assert body_errors(FollowupRequestBody(), body) == []
    body["target"]["photometry"][0]["snr"] = 30.0
    assert [e.path for e in body_errors(FollowupRequestBody(), body)] == ["target.photometry[0].snr"]
