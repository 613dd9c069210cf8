"""The gateway's API against hostile input, served as ``serve`` serves it (``AppThread``), on
SQLite and PostgreSQL: a malformed Authorization header never reaches a log; bodies no database
can store are 400s naming the field; a body over 1 MiB is a 413 with a body; secrets that cannot
travel in a header, and URLs carrying a password, are refused when an allocation is saved."""

from __future__ import annotations

import json
import logging
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from facility_apis.core.errors import AltdataError
from facility_apis.core.redact import RedactingFilter
from facility_apis.core.registry import default_registry
from facility_apis.gateway.api import MAX_BODY_BYTES, make_app
from facility_apis.gateway.runner import AppThread

TOKEN = "0123456789abcdef0123456789abcdef01234567"
ALLOCATION = {"facility": "atlas", "altdata": {"api_token": TOKEN}, "instrument_id": 7}
TARGET = {"id": "ZTF21aaaaaaa", "ra": 150.1, "dec": 2.2}
PAYLOAD = {"start_date": "2026-10-01", "end_date": "2026-10-31"}


@pytest.fixture
def gateway(gateway_store):
    """``(base URL, client token)`` of the API over the store, served by the gateway's runner."""
    executor = ThreadPoolExecutor(4)
    with AppThread(make_app(gateway_store, executor=executor)) as app:
        yield app.url, gateway_store.clients.add("hostile")
    executor.shutdown()


def call(gateway, method: str, path: str, **kwargs) -> requests.Response:
    url, token = gateway
    session = requests.Session()
    session.trust_env = False
    headers = {"Authorization": f"token {token}", **kwargs.pop("headers", {})}
    return session.request(method, url + path, headers=headers, timeout=30, **kwargs)


def refused(response: requests.Response, status: int = 400) -> list[str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["message"] and "Traceback" not in body["message"]
    return body["data"]["errors"]


# -- fault 7: a malformed Authorization header ---------------------------------------------------


def test_a_malformed_authorization_header_never_reaches_a_log(gateway, caplog):
    url, token = gateway
    host, port = url.removeprefix("http://").split(":")
    with caplog.at_level(logging.DEBUG), socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(f"GET /api/health HTTP/1.1\r\nHost: {host}\r\nAuthorization: token {token}\x00\r\n\r\n".encode())
        answer = raw.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")
    logged = [record for record in caplog.records if record.name.startswith("tornado")]
    assert logged, "tornado said nothing: the test would prove nothing"
    for record in caplog.records:
        assert token not in record.getMessage() and token not in (record.exc_text or "")


def test_every_record_through_the_gateways_log_handler_is_redacted():
    """A logger nobody attached the filter to still passes it on the handler ``serve`` installs."""
    record = logging.LogRecord("somebody.else", logging.ERROR, __file__, 1, "request headers %s", ({"Authorization": f"token {TOKEN}"},), None)
    assert RedactingFilter().filter(record) and TOKEN not in record.getMessage()


# -- fault 8: what no database can store ---------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "text, field",
    [
        ('{"allocation_id": 1, "target": {"id": "\\ud800", "ra": 1, "dec": 1}, "payload": {}}', "target.id: must be valid Unicode"),
        ('{"allocation_id": 1, "target": TGT, "payload": {}, "requester": "x\\udfff"}', "requester: must be valid Unicode"),
        ('{"allocation_id": 1, "target": TGT, "payload": {}, "requester": "a\\u0000b"}', "requester: must not contain the NUL"),
        ('{"allocation_id": 1, "target": TGT, "payload": {"start_date": "2026\\u0000"}}', "payload.start_date: must not contain the NUL"),
        ('{"allocation_id": 1, "target": TGT, "payload": {"snr_threshold": 1e400}}', "payload.snr_threshold: must be a finite number"),
        ('{"allocation_id": 1, "target": {"id": "x", "ra": 1e400, "dec": -1e400}, "payload": {}}', "target.dec: must be a finite number"),
        ('{"allocation_id": 1e400, "target": TGT, "payload": {}}', "allocation_id: must be a finite number"),
        ('{"allocation_id": 1, "target": TGT, "payload": {"a": DEEP}}'.replace("DEEP", _nested(60)), "must not be nested more than 32 levels deep"),
        ('{"allocation_id": 1, "payload": DEEP}'.replace("DEEP", _nested(100_000)), "body: must not be nested more than 32 levels deep"),
        ('{"allocation_id": 1, "target": TGT, "payload": {"k\\u0000": 1}}', "payload: keys must not contain the NUL"),
    ],
)
def test_a_request_body_no_database_can_store_is_a_400_naming_the_field(gateway, gateway_store, text, field):
    owner = gateway_store.clients.authenticate(gateway[1])
    gateway_store.allocations.put(owner, 1, "atlas", {"api_token": TOKEN}, instrument_id=7)
    text = text.replace("TGT", json.dumps(TARGET))
    errors = refused(call(gateway, "POST", "/api/followup_request", data=text.encode(), headers={"Content-Type": "application/json"}))
    assert any(error.startswith(field) or field in error for error in errors), errors
    assert gateway_store.requests.newest() == []


@pytest.mark.parametrize(
    "text, field",
    [
        ('{"facility": "atlas", "altdata": {"api_token": "TOK"}, "pi": "\\ud83d", "instrument_id": 7}', "pi: must be valid Unicode"),
        ('{"facility": "atlas", "altdata": {"api_token": "TOK"}, "pi": "A\\u0000", "instrument_id": 7}', "pi: must not contain the NUL"),
        ('{"facility": "atlas", "altdata": {"api_token": "TOK", "x": 1e400}, "instrument_id": 7}', "altdata.x: must be a finite number"),
        ('{"facility": "atlas", "altdata": {"api_token": "TOK"}, "instrument_id": 1e400}', "instrument_id: must be a finite number"),
    ],
)
def test_an_allocation_body_no_database_can_store_is_a_400_naming_the_field(gateway, gateway_store, text, field):
    errors = refused(call(gateway, "PUT", "/api/allocations/1", data=text.replace("TOK", TOKEN).encode()))
    assert any(error.startswith(field) for error in errors), errors
    refused(call(gateway, "GET", "/api/allocations/1"), 404)


# -- fault 9: a body over 1 MiB ------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_body_over_one_mebibyte_is_a_413_in_the_envelope(gateway):
    for size in (MAX_BODY_BYTES + 1, 70 * MAX_BODY_BYTES):  # refused from its Content-Length, unread
        assert refused(call(gateway, "POST", "/api/followup_request", data=b"x" * size), 413) == [f"body: must be at most {MAX_BODY_BYTES} bytes"]
    chunks = (b"y" * 65536 for _ in range(2 * MAX_BODY_BYTES // 65536))  # no Content-Length: counted as it streams
    assert refused(call(gateway, "PUT", "/api/allocations/1", data=chunks), 413) == [f"body: must be at most {MAX_BODY_BYTES} bytes"]
    assert call(gateway, "GET", "/api/health").status_code == 200


# -- faults 10 and 11: credentials that cannot be sent, or would be shown ---------------------------


@pytest.mark.parametrize(
    "token, rule",
    [
        ("e", "must be at least 6 characters long"),
        ("abcdefgh\r\nX-Injected: 1", "must not contain control characters"),
        ("abcdefgh\x00", "must not contain the NUL character"),
        ("tökén-€-over-latin-1", "must be made of Latin-1 characters"),
        ("x" * 900_000, "must be at most 4096 characters long"),
        (" padded-token-1234", "must not begin or end with a space"),
    ],
)
def test_a_secret_that_cannot_travel_in_a_header_is_refused_when_saved(gateway, token, rule):
    """The kit's floor for every writeOnly field (core/credentials.py); ATLAS's own schema is
    stricter (printable ASCII, at most 256), and either refusal names the field and its rule."""
    body = {**ALLOCATION, "altdata": {"api_token": token}}
    atlas_rule = ("altdata.api_token: must be printable ASCII without spaces", "altdata.api_token: must be at most 256 characters long")
    for method, path in (("PUT", "/api/allocations/1"), ("POST", "/api/allocations/validate")):
        response = call(gateway, method, path, json=body)
        errors = refused(response)
        assert len(errors) == 1 and errors[0].startswith((f"altdata.api_token: {rule}", *atlas_rule)), errors
        assert len(token) < 8 or token not in response.text
    refused(call(gateway, "GET", "/api/allocations/1"), 404)


def test_a_url_with_a_user_name_or_password_is_refused_when_saved(gateway):
    for url in ("https://observer:hunter2-password@fallingstar-data.com/forcedphot", "https://observer@fallingstar-data.com/forcedphot"):
        response = call(gateway, "PUT", "/api/allocations/1", json={**ALLOCATION, "altdata": {"api_token": TOKEN, "base_url": url}})
        (error,) = refused(response)  # the kit's rule, or ATLAS's pattern stating it in words
        assert error.startswith("altdata.base_url: ") and "user name or password" in error
        assert "hunter2" not in response.text
    refused(call(gateway, "GET", "/api/allocations/1"), 404)


@pytest.mark.parametrize("name", default_registry().names())
def test_every_facilitys_secret_fields_refuse_what_cannot_travel_in_a_header(name):
    facility_class = default_registry().get(name)
    facility = facility_class()
    example = facility_class.altdata_schema()["examples"][0]
    if not facility_class.secret_fields():
        pytest.skip(f"{name} has no credentials")  # a public service: the kit allows it
    for field in facility_class.secret_fields() & set(example):
        for bad in ("tiny", "has\nnewline-in-it", "ünïcödé-€-secret", "y" * 5000):
            with pytest.raises(AltdataError) as caught:
                facility.validate_altdata({**example, field: bad})
            assert [error.path for error in caught.value.errors] == [f"$.{field}"] and bad not in str(caught.value)
