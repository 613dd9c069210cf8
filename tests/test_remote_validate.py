"""The remote validation in the contract: ``remote_validate(request, transport) -> Outcome``, run by
``perform`` like a submission (payload validated first) and by ``facility-apis submit
--remote-validate``."""

import json
from typing import ClassVar

import pytest
import responses

from facility_apis.cli import main
from facility_apis.core.answers import expect
from facility_apis.core.errors import NotImplementedOperation, Rejected
from facility_apis.core.interface import Allocation, Facility, FollowupRequest, Kind, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.transport import Transport


class Asker(Facility):
    """Asks ``https://asker.example.org/validate`` and says what it answered (no schema files:
    the tests below replace the schemas)."""

    name: ClassVar[str] = "asker"
    title: ClassVar[str] = "Asker"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    skyportal_class: ClassVar[str] = "ASKERAPI"

    @classmethod
    def altdata_schema(cls):
        return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {}}

    def request_schema(self):
        return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}

    def remote_validate(self, request, transport):
        response = expect(transport.request("POST", "https://asker.example.org/validate", json=dict(request.payload)), 200, service="Asker")
        verdict = response.json()
        if verdict["ok"]:
            return Outcome(State.PENDING, "Asker would accept it")
        raise Rejected(verdict["why"])


def request(payload):
    return FollowupRequest(1, Target("ZTF26ask", 10.0, 20.0), Allocation(1, {}), payload)


def test_implements_reports_it():
    assert Asker.implements()["remote_validate"] is True
    assert Facility.implements.__func__(Facility)["remote_validate"] is False


@responses.activate
def test_perform_runs_it_with_the_payload_validated_and_defaults_applied():
    responses.post("https://asker.example.org/validate", json={"ok": True})
    with Transport(backoff=0) as transport:
        outcome = perform(Asker(), "remote_validate", request({"n": 2}), transport)
    assert (outcome.state, outcome.status) == (State.PENDING, "pending submission: Asker would accept it")
    assert len(outcome.transactions) == 1 and json.loads(outcome.transactions[0].request_body) == {"n": 2}


@responses.activate
def test_the_facilitys_refusal_is_a_rejection():
    responses.post("https://asker.example.org/validate", json={"ok": False, "why": "too faint"})
    with Transport(backoff=0) as transport:
        outcome = perform(Asker(), "remote_validate", request({"n": 2}), transport)
    assert outcome.status == "rejected: too faint"


def test_an_invalid_payload_is_rejected_without_asking():
    with responses.RequestsMock() as mock, Transport(backoff=0) as transport:
        outcome = perform(Asker(), "remote_validate", request({"n": 0}), transport)
        assert len(mock.calls) == 0
    assert outcome.status == "rejected: invalid payload: $.n: must be at least 1"


def test_a_facility_without_it_is_a_programming_error():
    from facility_apis.facilities.atlas import ATLASFacility

    with pytest.raises(NotImplementedOperation), Transport() as transport:
        perform(ATLASFacility(), "remote_validate", request({}), transport)
    with pytest.raises(ValueError, match="remote_validate"), Transport() as transport:
        perform(Asker(), "validate", request({}), transport)


def test_the_cli_says_when_a_facility_has_none(tmp_path, capsys):
    altdata = tmp_path / "a.json"
    altdata.write_text(json.dumps({"api_token": "cli-token-0042"}))
    code = main(["submit", "atlas", "--ra", "1", "--dec", "2", "--altdata", str(altdata), "--remote-validate"])
    assert code == 2
    assert "atlas offers no remote validation" in capsys.readouterr().err


def test_the_cli_refuses_dry_run_with_remote_validate(tmp_path):
    with pytest.raises(SystemExit):
        main(["submit", "atlas", "--ra", "1", "--dec", "2", "--altdata", str(tmp_path / "a.json"), "--dry-run", "--remote-validate"])
