"""IOOAPI, IOIAPI and SPRATAPI through SkyPortal's own call shape (direct mode), against the LT
node agent emulator: the abort names the uid the submission stored, whatever transactions came
after it; a refused abort leaves SkyPortal's status as it was."""

import asyncio
import json

import pytest

from facility_apis.core.errors import FacilityError
from facility_apis.skyportal import api_classes, configure
from facility_apis.testing.lt import LTNodeAgentEmulator
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal_models import AsyncSession, FacilityTransaction, make_request

PASSWORD = "skyportal-lt-pw-77aa"
ALTDATA = {"username": "observer", "password": PASSWORD, "LT_proposalID": "PL26A01"}
PAYLOADS = {
    "IOOAPI": {"observation_choices": ["g", "r"], "exposure_time": 60},
    "IOIAPI": {"observation_choices": ["H"]},
    "SPRATAPI": {"observation_type": "blue"},
}


#: SkyPortal's models are the fakes in every test here (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fakes")


@pytest.fixture
def lt():
    with LTNodeAgentEmulator({"observer": (PASSWORD, {"PL26A01"})}) as emulator:
        config = {name: {"base_url": emulator.endpoint} for name in ("lt_ioo", "lt_ioi", "lt_sprat")}
        configure(facilities=config, egress=loopback_egress(emulator))
        yield emulator


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.mark.parametrize("class_name", list(PAYLOADS))
def test_submit_then_delete_aborts_the_stored_uid(lt, class_name):
    api = api_classes()[class_name]
    request = make_request(altdata=ALTDATA, payload=PAYLOADS[class_name], instrument=(4, "LT", []), api_classname=class_name)
    session = AsyncSession(request)
    run(api.submit(request, session))
    (group,) = lt.groups
    assert request.status == f"submitted: Liverpool Telescope group {group.uid}"
    assert session.added[0].response["remote_id"] == group.uid
    # A newer transaction holding another RTML document (SkyPortal's class took the uid from the
    # newest transaction's RTML) must not redirect the abort.
    FacilityTransaction(request={"body": "<RTML uid='other_uid'/>"}, response={"content": "<RTML uid='other_uid'/>"}, followup_request=request)
    run(api.delete(request, session))
    assert request.status == f"deleted: aborted at the Liverpool Telescope: group {group.uid} expires now"
    assert [d.get("uid") for d in lt.documents("abort")] == [group.uid] and group.aborted
    records = json.dumps([[t.request, t.response] for t in session.added], default=str) + request.status
    assert PASSWORD not in records and all(t.request["headers"]["Password"] == "***" for t in session.added)


def test_a_refused_abort_keeps_skyportals_status_and_says_why(lt):
    api = api_classes()["IOOAPI"]
    request = make_request(altdata=ALTDATA, payload=PAYLOADS["IOOAPI"], instrument=(4, "IO:O", ["sdssg", "sdssr"]), api_classname="IOOAPI")
    session = AsyncSession(request)
    run(api.submit(request, session))
    before = request.status
    lt.reject_next("proposal PL26A01 is locked by the Phase 2 tool")
    with pytest.raises(FacilityError, match=r"could not delete: the Liverpool Telescope refused to abort group \w+: proposal PL26A01 is locked"):
        run(api.delete(request, session))
    assert request.status == before and not lt.groups[0].aborted
    assert len(session.added) == 2  # the refused abort is recorded all the same
