"""Every registered facility, through the same table of bad inputs and faults.

Each facility's schemas carry an ``examples`` entry (a valid allocation and a valid request); the
secrets in it are replaced by unique sentinels, and after every fault no sentinel may appear in
any outcome, transaction, exception or log record.
"""

import logging
import re

import pytest
import requests
import responses
from jsonschema import Draft7Validator

from facility_apis.core.errors import AltdataError, PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import Outcome, State
from facility_apis.core.registry import default_registry
from facility_apis.core.schemas import DRAFT7
from facility_apis.core.transport import Transport

FACILITIES = default_registry().all()
ANY_URL = re.compile(r"https?://.*")
REMOTE_ID = "https://facility.invalid/remote/1/"


def secret_altdata(cls):
    """The facility's example altdata with each secret replaced by a unique sentinel."""
    altdata = dict(cls.altdata_schema()["examples"][0])
    sentinels = {}
    for key in cls.secret_fields():
        sentinels[key] = altdata[key] = f"SENTINEL-{cls.name}-{key}-7f3a"
    return altdata, sentinels


def example_request(cls, remote_id=None):
    altdata, sentinels = secret_altdata(cls)
    payload = cls().request_schema()["examples"][0]
    return FollowupRequest(9, Target("ZTF26conform", 150.0, -20.0), Allocation(3, altdata, instrument_id=1), payload, remote_id=remote_id), sentinels


def assert_no_secret(sentinels, *things):
    text = " ".join(repr(thing) for thing in things)
    for value in sentinels.values():
        assert value not in text


def ids(classes):
    return [cls.name for cls in classes]


@pytest.mark.parametrize("cls", FACILITIES, ids=ids(FACILITIES))
class TestConformance:
    def test_metadata(self, cls):
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.name)
        assert cls.title and cls.kind
        assert cls.priority_order in ("asc", "desc")

    def test_schemas_are_draft07_with_valid_examples(self, cls):
        facility = cls()
        for schema in (cls.altdata_schema(), facility.request_schema()):
            assert schema["$schema"] == DRAFT7
            Draft7Validator.check_schema(schema)
            assert schema.get("examples"), "a valid example drives the conformance tests and the docs"
        facility.validate_altdata(cls.altdata_schema()["examples"][0])
        facility.validate_payload(facility.request_schema()["examples"][0])

    def test_secrets_are_marked(self, cls):
        secrets = cls.secret_fields()
        assert secrets, "a facility with credentials must mark them writeOnly"
        properties = cls.altdata_schema()["properties"]
        for key in secrets:
            assert properties[key].get("writeOnly") is True

    def test_bad_altdata_raises_typed_error_naming_the_field(self, cls):
        facility = cls()
        altdata, sentinels = secret_altdata(cls)
        for key in cls.altdata_schema().get("required", []):
            broken = {k: v for k, v in altdata.items() if k != key}
            with pytest.raises(AltdataError) as caught:
                facility.validate_altdata(broken)
            assert f"$.{key}" in [e.path for e in caught.value.errors]
        with pytest.raises(AltdataError) as caught:
            facility.validate_altdata({**altdata, **dict.fromkeys(sentinels, 12345)})
        assert {f"$.{k}" for k in sentinels} <= {e.path for e in caught.value.errors}
        with pytest.raises(AltdataError):
            facility.validate_altdata("not an object")

    def test_bad_payload_raises_typed_error_naming_the_field(self, cls):
        facility = cls()
        payload = facility.request_schema()["examples"][0]
        with pytest.raises(PayloadError) as caught:
            facility.validate_payload({**payload, "no_such_field_xyz": 1})
        assert "$.no_such_field_xyz" in [e.path for e in caught.value.errors]
        for key, spec in facility.request_schema()["properties"].items():
            wrong = [] if spec.get("type") != "array" else "not a list"
            with pytest.raises(PayloadError) as caught:
                facility.validate_payload({**payload, key: wrong})
            assert f"$.{key}" in [e.path for e in caught.value.errors]

    @pytest.mark.parametrize(
        "fault",
        [
            requests.ConnectTimeout("connect timed out"),
            requests.ReadTimeout("read timed out"),
            requests.ConnectionError("Connection reset by peer"),
            (500, "Internal Server Error <html>"),
            (503, "unavailable"),
            (429, '{"detail": "Request was throttled. Expected available in 5 seconds."}'),
            (200, "{not json"),
            (201, "{not json"),
            (200, "[]"),
        ],
        ids=["connect-timeout", "read-timeout", "reset", "500", "503", "429", "malformed-200", "malformed-201", "unexpected-json"],
    )
    @pytest.mark.parametrize("operation", ["submit", "get", "delete"])
    def test_faults_give_outcomes_and_leak_no_secret(self, cls, operation, fault, caplog):
        facility = cls()
        if not facility.implements()[operation]:
            pytest.skip(f"{cls.name} does not implement {operation}")
        request, sentinels = example_request(cls, remote_id=None if operation == "submit" else REMOTE_ID)
        caplog.set_level(logging.DEBUG)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                if isinstance(fault, Exception):
                    mock.add(method, ANY_URL, body=fault)
                else:
                    status, body = fault
                    mock.add(method, ANY_URL, status=status, body=body)
            with Transport(backoff=0, retries=1) as transport:
                outcome = perform(facility, operation, request, transport)
        assert isinstance(outcome, Outcome)
        assert outcome.state in State
        assert outcome.status
        if operation == "submit" and outcome.state is State.SUBMITTED:
            pytest.fail(f"a {fault!r} answer must not count as a successful submission")
        assert_no_secret(sentinels, outcome, outcome.status, [t.as_dict() for t in outcome.transactions], caplog.text)
        assert_no_secret(sentinels, [(r.getMessage(), r.exc_text) for r in caplog.records])
