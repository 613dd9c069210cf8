"""ATLAS end to end over loopback: the emulator, the SkyPortal stub, and the follow loop."""

import math

from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.outcome import State
from facility_apis.core.transport import Transport
from facility_apis.demo import run_demo
from facility_apis.facilities.atlas import ATLASFacility
from facility_apis.facilities.atlas.results import parse_results
from facility_apis.skyportal.client import SkyPortalClient
from facility_apis.skyportal.follow import follow
from facility_apis.testing import ATLASEmulator, SkyPortalStub
from facility_apis.testing.network import loopback_egress

ATLAS_TOKEN = "e2e-atlas-token-31337"
SP_TOKEN = "e2e-skyportal-token"
OBJ, RA, DEC = "ZTF26e2e", 210.5, 12.25


def run(atlas, skyportal, request_id=7, payload=None):
    skyportal.add_source(OBJ, RA, DEC)
    skyportal.add_request(request_id, obj_id=OBJ, instrument_id=3, instrument_filters=["atlasc", "atlaso"])
    facility = ATLASFacility({"base_url": atlas.base_url, "poll_interval": 0.2}, egress=loopback_egress(atlas))
    request = FollowupRequest(request_id, Target(OBJ, RA, DEC), Allocation(1, {"api_token": ATLAS_TOKEN}, instrument_id=3, group_ids=(5, 2, 5)), payload or {})
    reported = []
    sleeps = []

    def sleep(seconds):
        import time

        sleeps.append(seconds)
        time.sleep(seconds)

    with Transport(secrets=[ATLAS_TOKEN], egress=loopback_egress(atlas, skyportal)) as transport:
        client = SkyPortalClient(skyportal.url, SP_TOKEN, transport)
        outcome = follow(facility, request, transport, skyportal=client, report=reported.append, sleep=sleep)
    return outcome, reported, sleeps


def test_throttled_then_submitted_queued_running_completed_with_photometry():
    with (
        ATLASEmulator(tokens={ATLAS_TOKEN: "observer"}, queue_time=0.5, run_time=0.5, rows=30) as atlas,
        SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as skyportal,
    ):
        atlas.throttle_next(1, wait=1)
        outcome, reported, sleeps = run(atlas, skyportal)
        statuses = skyportal.statuses(7)
        points = skyportal.photometry(OBJ)

    assert outcome.state is State.COMPLETED
    assert [o.state for o in reported] == [State.THROTTLED, State.SUBMITTED, State.QUEUED, State.RUNNING, State.COMPLETED]
    assert statuses == [o.status for o in reported]
    assert statuses[0].startswith("failed to submit: rate limit reached") and statuses[1].startswith("submitted: ATLAS task")
    assert statuses[-1].startswith("complete: 30 points")
    assert sleeps[0] == 1  # the Retry-After of the throttle was honoured

    # What SkyPortal received is what the result file says, with the limits of the rules.
    assert any("/results/" in t.url for t in outcome.transactions)
    expected = outcome.photometry
    assert len(points) == len(expected) == 30
    assert [p["mjd"] for p in points] == expected.values("mjd")
    assert [p["limiting_mag"] for p in points] == expected.values("limiting_mag")
    assert {p["filter"] for p in points} <= {"atlasc", "atlaso"}
    for point in points:
        assert point["origin"] == "fp" and point["magsys"] == "ab"
        assert math.isfinite(point["limiting_mag"])
        if point["mag"] is not None:
            assert point["mag"] <= point["limiting_mag"]
    assert any(p["mag"] is None for p in points) and any(p["mag"] is not None for p in points)


def test_photometry_delivery_is_idempotent_when_repeated():
    with (
        ATLASEmulator(tokens={ATLAS_TOKEN: "observer"}, rows=10) as atlas,
        SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as skyportal,
    ):
        outcome, _, _ = run(atlas, skyportal)
        client = SkyPortalClient(skyportal.url, SP_TOKEN)
        uploads = outcome.photometry.uploads(OBJ, 3, (5, 2))
        assert len(uploads) == 1
        (body,) = uploads
        first = client.put_photometry(body)
        again = client.put_photometry(body)
        assert first == again
        assert len(skyportal.photometry(OBJ)) == 10


def test_finished_with_error_is_terminal_no_data_without_busy_loop():
    with (
        ATLASEmulator(tokens={ATLAS_TOKEN: "observer"}, run_time=0.1) as atlas,
        SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as skyportal,
    ):
        atlas.fail_next(1, "No data returned")
        outcome, _, _ = run(atlas, skyportal)
        polls = [r for r in atlas.requests if r.method == "GET"]
        assert skyportal.statuses(7)[-1] == "complete: no data: No data returned"
        assert skyportal.photometry(OBJ) == []
    assert outcome.state is State.NO_DATA
    assert len(polls) <= 3


def test_real_result_files_parse_like_the_emulated_ones():
    with ATLASEmulator(rows=50, pa_deg=False) as atlas:
        import requests

        query = {"ra": RA, "dec": DEC, "mjd_min": 60000, "mjd_max": 60100}
        task = requests.post(f"{atlas.base_url}/queue/", data=query, headers={"Authorization": "Token test-token"}, timeout=5).json()
        detail = requests.get(task["url"], timeout=5).json()
        text = requests.get(detail["result_url"], timeout=5).text
    photometry = parse_results(text)
    assert len(photometry) == 50
    assert all(60000 <= mjd <= 60100 for mjd in photometry.mjd)


def test_no_secret_reaches_skyportal_or_the_records():
    with ATLASEmulator(tokens={ATLAS_TOKEN: "observer"}, rows=5) as atlas, SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as skyportal:
        _, reported, _ = run(atlas, skyportal)
        received = repr(skyportal.statuses(7)) + repr(skyportal.photometry(OBJ))
    assert ATLAS_TOKEN not in received
    for o in reported:
        assert ATLAS_TOKEN not in repr(o) + repr([t.as_dict() for t in o.transactions])
        assert SP_TOKEN not in repr([t.as_dict() for t in o.transactions])


def test_demo_runs_through_the_gateway_and_reports_every_stage(tmp_path):
    lines = []
    assert run_demo(rows=12, run_time=0.3, poll_interval=0.2, data_dir=tmp_path, out=lines.append) == 0
    text = "\n".join(lines)
    stages = ("pending submission: throttled, will retry", "submitted: ATLAS task 1", "queued:", "running:", "complete: 12 points")
    positions = [text.index(f"SkyPortal status: {stage}") for stage in stages]
    assert positions == sorted(positions)
    assert lines[-1] == "SkyPortal received 5 status messages and 12 photometry points"
    # The embedded default: SQLite in the data dir, and a key file only its owner can read.
    assert (tmp_path / "demo.db").exists()
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert b"demo-atlas-token" not in (tmp_path / "demo.db").read_bytes()


def test_faults_while_following_are_survived_and_reported():
    import time

    with (
        ATLASEmulator(tokens={ATLAS_TOKEN: "observer"}, queue_time=0.3, rows=8) as atlas,
        SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as skyportal,
    ):
        task_path = "/forcedphot/queue/1/"
        atlas.faults.add("drop", path_prefix=task_path, method="GET")  # retried inside the transport
        atlas.faults.add("status", path_prefix=task_path, method="GET", status=500, body="<html>oops</html>")
        atlas.faults.add("malformed", path_prefix=task_path, method="GET")
        skyportal.add_source(OBJ, RA, DEC)
        skyportal.add_request(7, obj_id=OBJ, instrument_id=3)
        facility = ATLASFacility({"base_url": atlas.base_url, "poll_interval": 0.1}, egress=loopback_egress(atlas))
        request = FollowupRequest(7, Target(OBJ, RA, DEC), Allocation(1, {"api_token": ATLAS_TOKEN}, instrument_id=3), {})
        waits = []
        with Transport(secrets=[ATLAS_TOKEN], backoff=0, egress=loopback_egress(atlas, skyportal)) as transport:
            client = SkyPortalClient(skyportal.url, SP_TOKEN, transport)
            outcome = follow(facility, request, transport, skyportal=client, sleep=lambda s: (waits.append(s), time.sleep(min(s, 0.1))))
        statuses = skyportal.statuses(7)
        assert len(atlas.faults) == 0

    assert outcome.state is State.COMPLETED
    assert statuses[0] == "submitted: ATLAS task 1"
    assert "failed: ATLAS answered HTTP 500: an HTML page: oops" in statuses
    assert "failed: ATLAS sent malformed JSON for the task (HTTP 200)" in statuses
    assert statuses[-1].startswith("complete: 8 points")
    assert 60.0 in waits  # a failed poll is retried after a pause, not in a busy loop
    assert ATLAS_TOKEN not in repr(statuses)


def test_photometry_needs_the_instrument_to_be_known():
    import pytest

    from facility_apis.core.errors import FacilityError

    with ATLASEmulator(tokens={ATLAS_TOKEN: "observer"}, rows=3) as atlas, SkyPortalStub(tokens={SP_TOKEN: {"Post from FacilityMessageListener"}}) as skyportal:
        skyportal.add_request(8, obj_id=OBJ)
        facility = ATLASFacility({"base_url": atlas.base_url, "poll_interval": 0.05}, egress=loopback_egress(atlas))
        request = FollowupRequest(8, Target(OBJ, RA, DEC), Allocation(1, {"api_token": ATLAS_TOKEN}), {})
        with Transport(egress=loopback_egress(atlas, skyportal)) as transport, pytest.raises(FacilityError, match="names no instrument_id"):
            follow(facility, request, transport, skyportal=SkyPortalClient(skyportal.url, SP_TOKEN, transport))
        assert skyportal.photometry(OBJ) == []
