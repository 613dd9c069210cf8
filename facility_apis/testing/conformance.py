"""The conformance suite: the checks every facility passes, shipped so that any package runs them.

This package's own tests run it over every registered facility::

    TestConformance = conformance_suite(docs_dir=Path("docs"))

A facility in another package runs it with one line in its tests::

    from facility_apis.testing.conformance import conformance_suite
    TestConformance = conformance_suite(EchoScopeFacility)

What it checks, per facility:

- metadata: name, title, kind, SkyPortal class name, priority order, an example remote id;
- schemas: draft-07, valid ``examples``, every field titled; SkyPortal's ``aliasLookup`` labels
  are the form titles; credential-like altdata fields are marked ``writeOnly`` (a facility with no
  credentials at all is fine);
- bad altdata and payloads raise ``AltdataError``/``PayloadError`` naming the field;
- ``prepare`` makes no connection of any kind;
- a fault matrix for each implemented operation, ``remote_validate`` and ``find`` included
  (timeouts, reset, 5xx, 429 with and without ``Retry-After``, 401, 403, 404, empty and malformed
  bodies, HTML pages with 200 and 500): each ends in a defined state with a one-line, markup-free
  detail of at most 500 characters, a faulty answer is never a successful submission, a remote
  validation's acceptance, nor (for ``find``) a found or certainly absent request, and no secret
  reaches an outcome, a transaction, an exception or a log record;
- with ``docs_dir``: the facility has its page (``<docs_dir>/facilities/<name>.md``, listed in
  the index) and its SkyPortal class is named in ``<docs_dir>/skyportal.md``.

The secrets in the example altdata are replaced by unique sentinels, which must then appear
nowhere. No test of the suite reaches the network: HTTP is answered by ``responses`` and any other
connection is refused by :func:`~facility_apis.testing.network.socket_guard`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from jsonschema import Draft7Validator

from ..core.errors import AltdataError, PayloadError
from ..core.interface import NAME_RULE, SKYPORTAL_CLASS_RULE, Allocation, Facility, FollowupRequest, Kind, Target
from ..core.operations import DETAIL_LIMIT, perform
from ..core.outcome import Outcome, State
from ..core.registry import default_registry
from ..core.schemas import DRAFT7
from ..core.transport import Transport
from .network import socket_guard

ANY_URL = re.compile(r".*")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: Property names that hold a credential and must be marked ``writeOnly``.
CREDENTIAL_NAME = re.compile(r"(token|password|passwd|secret|api_?key|private_?key|userpass)", re.IGNORECASE)
MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")
HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Proxy Error</title><style>p {color: red}</style></head><body><h1>Proxy Error</h1>"
    "<p>The proxy server received an invalid response from an upstream server.</p></body></html>"
)

#: The fault matrix: an id and what every call answers (an exception, or status and body).
FAULTS: list[tuple[str, Any]] = [
    ("connect-timeout", requests.ConnectTimeout("connect timed out")),
    ("read-timeout", requests.ReadTimeout("read timed out")),
    ("reset", requests.ConnectionError("Connection reset by peer")),
    ("500", (500, "Internal Server Error", {})),
    ("502", (502, "Bad Gateway", {})),
    ("503", (503, "Service Unavailable", {"Retry-After": "1"})),
    ("504", (504, "Gateway Timeout", {})),
    ("429-retry-after", (429, '{"detail": "Request was throttled."}', {"Retry-After": "7"})),
    ("429-bare", (429, "", {})),
    ("401", (401, '{"detail": "Invalid token."}', {})),
    ("403", (403, '{"detail": "You do not have permission to perform this action."}', {})),
    ("404", (404, '{"detail": "Not found."}', {})),
    ("empty-200", (200, "", {})),
    ("malformed-json-200", (200, '{"id": 12, "url": "https://', {})),
    ("html-200", (200, HTML_PAGE, {"Content-Type": "text/html"})),
    ("html-500", (500, HTML_PAGE, {"Content-Type": "text/html"})),
]


def _sentinel(cls: type[Facility], key: str) -> str:
    return f"S3NT1NEL{cls.name.replace('_', '')}{key.replace('_', '')}7f3a9c"


def example_altdata(cls: type[Facility]) -> tuple[dict[str, Any], dict[str, str]]:
    """The facility's example altdata with each secret replaced by a unique sentinel, and the
    sentinels by field."""
    altdata = dict(cls.altdata_schema()["examples"][0])
    sentinels = {key: _sentinel(cls, key) for key in cls.secret_fields() if key in altdata}
    altdata.update(sentinels)
    return altdata, sentinels


def example_request(cls: type[Facility], remote_id: str | None = None) -> tuple[FollowupRequest, dict[str, str]]:
    """A request built from the facility's schema examples (secrets as sentinels), as SkyPortal's
    request 9."""
    altdata, sentinels = example_altdata(cls)
    payload = cls().request_schema()["examples"][0]
    allocation = Allocation(3, altdata, pi="A. Observer", proposal_id="2026B-001", instrument_id=1, instrument_name="Instrument", group_ids=(1,))
    target = Target("ZTF26conform", 150.0, -20.0)
    request = FollowupRequest(9, target, allocation, payload, requester="observer", remote_id=remote_id, followup_request_id=9)
    return request, sentinels


def assert_no_secret(sentinels: dict[str, str], *things: Any) -> None:
    text = " ".join(repr(thing) for thing in things)
    for key, value in sentinels.items():
        assert value not in text, f"the secret of altdata field {key!r} leaked"


def _titled(schema: dict[str, Any]) -> list[str]:
    """Properties anywhere in ``schema`` (branches included) that have no title."""
    missing: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict) and not sub.get("title") and not sub.get("const") and len(sub.get("enum") or ()) != 1:
                    missing.append(key)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return sorted(set(missing))


def _wrong_value(spec: dict[str, Any]) -> Any:
    """A value of the wrong JSON type for a property."""
    kinds = spec.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if "array" in kinds or "object" in kinds:
        return "not a list or object"
    if "string" in kinds:
        return ["not", "a", "string"]
    return {"not": "a number"}


class FacilityConformance:
    """The checks; :func:`conformance_suite` makes a pytest class of them for given facilities."""

    docs_dir: Path | None = None

    # -- metadata and schemas ------------------------------------------------------------------

    def test_metadata(self, facility_class: type[Facility]) -> None:
        cls = facility_class
        assert NAME_RULE.fullmatch(cls.name)
        assert cls.title.strip() and isinstance(cls.kind, Kind)
        assert SKYPORTAL_CLASS_RULE.fullmatch(cls.skyportal_class)
        assert cls.priority_order in ("asc", "desc")
        assert cls.example_remote_id
        implemented = cls.implements()
        assert implemented["validate_altdata"] is True
        assert implemented["submit"] or cls.kind is Kind.NOTIFICATION or implemented["get"], "a facility submits or fetches something"

    def test_schemas_are_draft07_with_valid_examples(self, facility_class: type[Facility]) -> None:
        facility = facility_class()
        for schema in (facility_class.altdata_schema(), facility.request_schema()):
            assert schema["$schema"] == DRAFT7
            Draft7Validator.check_schema(schema)
            assert schema.get("examples"), "a valid example drives the conformance suite and the docs"
        facility.validate_altdata(facility_class.altdata_schema()["examples"][0])
        facility.validate_payload(facility.request_schema()["examples"][0])
        altdata, _ = example_altdata(facility_class)
        try:
            facility.validate_altdata(altdata)
        except AltdataError as exc:  # pragma: no cover - a message for the facility's author
            pytest.fail(f"secret fields must accept a plain token such as {_sentinel(facility_class, 'x')!r}: {exc}")

    def test_every_field_has_a_title(self, facility_class: type[Facility]) -> None:
        request = facility_class().request_schema()
        assert not _titled(request), f"request fields without a title: {_titled(request)}"
        altdata = facility_class.altdata_schema()
        assert not _titled(altdata), f"altdata fields without a title: {_titled(altdata)}"

    def test_skyportal_labels_are_the_form_titles(self, facility_class: type[Facility]) -> None:
        from ..skyportal import configure
        from ..skyportal.adapter import make_api_class

        configure()
        api = make_api_class(facility_class.skyportal_class, facility_class)
        info = api.frontend_render_info(None, None)
        form = info["formSchema"] or info["formSchemaForcedPhotometry"]
        if facility_class.kind is Kind.OBSERVATION_PLAN:  # its request form is the generating class's (SkyPortal's)
            assert form is None and info["aliasLookup"] == {}
            return
        titles = {key: spec["title"] for key, spec in form["properties"].items() if isinstance(spec, dict) and spec.get("title")}
        assert info["aliasLookup"] == titles

    def test_credentials_are_marked_secret(self, facility_class: type[Facility]) -> None:
        properties = facility_class.altdata_schema().get("properties") or {}
        secrets = facility_class.secret_fields()
        for key in secrets & set(properties):
            assert properties[key].get("writeOnly") is True
        unmarked = sorted(key for key in properties if CREDENTIAL_NAME.search(key) and key not in secrets)
        assert not unmarked, f"credential-like altdata fields not marked writeOnly: {unmarked}"

    # -- validation ----------------------------------------------------------------------------

    def test_bad_altdata_raises_typed_error_naming_the_field(self, facility_class: type[Facility]) -> None:
        facility = facility_class()
        altdata, sentinels = example_altdata(facility_class)
        for key in facility_class.altdata_schema().get("required", []):
            broken = {k: v for k, v in altdata.items() if k != key}
            with pytest.raises(AltdataError) as caught:
                facility.validate_altdata(broken)
            assert f"$.{key}" in [e.path for e in caught.value.errors]
        if sentinels:
            with pytest.raises(AltdataError) as caught:
                facility.validate_altdata({**altdata, **dict.fromkeys(sentinels, 12345)})
            assert {f"$.{key}" for key in sentinels} <= {e.path for e in caught.value.errors}
            assert_no_secret(sentinels, caught.value)
        with pytest.raises(AltdataError):
            facility.validate_altdata("not an object")  # type: ignore[arg-type]

    def test_bad_payload_raises_typed_error_naming_the_field(self, facility_class: type[Facility]) -> None:
        facility = facility_class()
        payload = facility.request_schema()["examples"][0]
        with pytest.raises(PayloadError) as caught:
            facility.validate_payload({**payload, "no_such_field_xyz": 1})
        assert "$.no_such_field_xyz" in [e.path for e in caught.value.errors]
        for key, spec in facility.request_schema()["properties"].items():
            with pytest.raises(PayloadError) as caught:
                facility.validate_payload({**payload, key: _wrong_value(spec)})
            assert f"$.{key}" in [e.path for e in caught.value.errors]

    # -- operations ----------------------------------------------------------------------------

    def test_prepare_sends_nothing(self, facility_class: type[Facility]) -> None:
        facility = facility_class()
        if not facility.implements()["prepare"]:
            pytest.skip(f"{facility_class.name} does not implement prepare")
        request, _ = example_request(facility_class)
        request = FollowupRequest(
            request.id, request.target, request.allocation, facility.validate_payload(request.payload), request.requester
        )
        with socket_guard() as attempts, responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            facility.prepare(request)
        assert attempts == [] and len(mock.calls) == 0, "prepare must not send anything"

    @pytest.mark.parametrize(("fault_id", "fault"), FAULTS, ids=[fault_id for fault_id, _ in FAULTS])
    @pytest.mark.parametrize("operation", ["submit", "get", "update", "delete", "find", "remote_validate"])
    def test_faults_end_in_a_defined_state_and_leak_no_secret(
        self, facility_class: type[Facility], operation: str, fault_id: str, fault: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        facility = facility_class()
        if not facility.implements()[operation]:
            pytest.skip(f"{facility_class.name} does not implement {operation}")
        remote_id = None if operation in ("submit", "find", "remote_validate") else facility_class.example_remote_id
        request, sentinels = example_request(facility_class, remote_id=remote_id)
        if operation == "find":
            request = dataclasses.replace(request, attempted_at=1_790_000_000.0)
        caplog.set_level(logging.DEBUG)
        with socket_guard(), responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            for method in METHODS:
                if isinstance(fault, Exception):
                    mock.add(method, ANY_URL, body=fault)
                else:
                    status, body, headers = fault
                    mock.add(method, ANY_URL, status=status, body=body, headers=headers)
            with Transport(backoff=0, retries=1, max_wait=0) as transport:
                outcome = perform(facility, operation, request, transport)
        assert isinstance(outcome, Outcome) and outcome.state in State
        assert outcome.status
        assert "\n" not in outcome.detail and len(outcome.detail) <= DETAIL_LIMIT
        assert not MARKUP.search(outcome.detail), f"markup in the detail: {outcome.detail!r}"
        if operation == "submit":
            assert outcome.state not in (State.SUBMITTED, State.QUEUED, State.RUNNING, State.COMPLETED), (
                f"a {fault_id} answer must not count as a successful submission: {outcome.status!r}"
            )
        if operation == "remote_validate":
            assert outcome.state is not State.PENDING, f"a {fault_id} answer must not read as the facility's acceptance: {outcome.status!r}"
        if operation == "find":  # "absent" would submit a second time; "found" would follow nothing
            assert outcome.state not in (State.PENDING, State.SUBMITTED, State.QUEUED, State.RUNNING, State.COMPLETED), (
                f"a {fault_id} answer must not count as found or as certainly absent: {outcome.status!r}"
            )
        assert_no_secret(sentinels, outcome, outcome.status, [t.as_dict() for t in outcome.transactions])
        assert_no_secret(sentinels, caplog.text, [(r.getMessage(), r.exc_text) for r in caplog.records])

    # -- documentation -------------------------------------------------------------------------

    def test_has_a_docs_page_and_a_skyportal_listing(self, facility_class: type[Facility]) -> None:
        if self.docs_dir is None:
            pytest.skip("no docs_dir given to conformance_suite")
        docs = Path(self.docs_dir)
        page = docs / "facilities" / f"{facility_class.name}.md"
        assert page.is_file(), f"{page} is missing"
        assert f"facilities/{facility_class.name}" in (docs / "index.md").read_text(encoding="utf-8"), "the page is not in the index toctree"
        assert facility_class.skyportal_class in (docs / "skyportal.md").read_text(encoding="utf-8"), "docs/skyportal.md does not name its SkyPortal class"


def conformance_suite(*facility_classes: type[Facility], docs_dir: str | Path | None = None) -> type:
    """A pytest test class running :class:`FacilityConformance` on ``facility_classes`` (default:
    every facility of the default registry). Bind it to a name starting with ``Test``."""
    classes = tuple(facility_classes) or tuple(default_registry().all())

    @pytest.fixture(params=classes, ids=[cls.name for cls in classes])
    def facility_class(self: Any, request: pytest.FixtureRequest) -> type[Facility]:
        return request.param

    return type("Conformance", (FacilityConformance,), {"facility_class": facility_class, "docs_dir": None if docs_dir is None else Path(docs_dir)})
