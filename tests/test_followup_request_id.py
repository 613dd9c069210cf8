"""``FollowupRequest.followup_request_id``: SkyPortal's id of the request, handed to the facility
by every caller that knows it (the SkyPortal classes, the gateway), so a facility whose remote side
reports to SkyPortal itself (SEDM) can name the request SkyPortal will recognise."""

from facility_apis.core.interface import Target
from facility_apis.skyportal.snapshot import core_request
from facility_apis.testing.skyportal_models import make_request


def test_the_skyportal_classes_give_skyportals_own_id():
    request = core_request(make_request(request_id=31))
    assert (request.id, request.followup_request_id) == (31, 31)


def test_the_gateway_gives_the_id_skyportal_handed_it_and_none_before_it_is_known(gateway_store):
    owner = gateway_store.clients.authenticate(gateway_store.clients.add("sp"))
    gateway_store.allocations.put(owner, 1, "atlas", {"api_token": "tok-0123456789"}, instrument_id=1)
    linked = gateway_store.requests.add(1, Target("ZTF26a", 1.0, 2.0), {}, followup_request_id=417, now=1000.0)
    unlinked = gateway_store.requests.add(1, Target("ZTF26b", 1.0, 2.0), {}, now=1000.0)
    jobs = {job.request_id: job.request for job in gateway_store.jobs.claim("w1", 10, lease=30, now=1000.0)}
    assert (jobs[linked].id, jobs[linked].followup_request_id) == (linked, 417)
    assert (jobs[unlinked].id, jobs[unlinked].followup_request_id) == (unlinked, None)
