"""Shared HTTP answer handling (facility_apis.core.answers): status codes to typed errors, any
error body to one readable line, JSON bodies read with a clear error."""

import pytest
import requests

from facility_apis.core.answers import body_line, expect, json_body, json_object
from facility_apis.core.errors import CredentialsRefused, Rejected, RemoteError, RemoteNotFound


def answer(status: int, body: str = "", content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    response.headers["Content-Type"] = content_type
    response.encoding = "utf-8"
    return response


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ('{"detail": "Invalid token."}', "Invalid token."),
        ('{"non_field_errors": ["ERROR: too many queued tasks"]}', "ERROR: too many queued tasks"),
        ('{"dec": ["Ensure this value is less than or equal to 90."], "ra": ["A valid number is required."]}',
         "dec: Ensure this value is less than or equal to 90.; ra: A valid number is required."),
        ('{"requests": [{"configurations": [{"instrument_type": ["Invalid instrument type"]}]}]}',
         "requests.configurations.instrument_type: Invalid instrument type"),
        ('{"error": "invalid_token", "message": "expired"}', "invalid_token expired"),
        ('["first problem", "second problem"]', "first problem second problem"),
        ('{"status": "error", "message": "Invalid API endpoint", "data": {}, "version": "0.9.1"}', "Invalid API endpoint"),
        ('{"status": "error", "message": "invalid body: a: is required", "data": {"errors": ["a: is required", "b: x"]}}',
         "invalid body: a: is required; b: x"),
        ("<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body><h1>Down</h1></body></html>",
         "an HTML page: 503 Service Unavailable"),
        ("<html><body><script>var x = 1;</script>\n<p>  Scheduled   maintenance </p></body></html>", "an HTML page: Scheduled maintenance"),
        ("<h1>Server Error (500)</h1>", "an HTML page: Server Error (500)"),
        ("no such task\nTraceback (most recent call last):\n  File ...", "no such task"),
        ("", "(empty body)"),
        ("   \n  ", "(empty body)"),
    ],
)
def test_any_error_body_becomes_one_readable_line(body, line):
    assert body_line(answer(400, body)) == line


def test_a_long_body_is_folded_but_never_cut_here():
    """Cutting belongs after masking (perform does both): a cut here could halve a secret."""
    text = "x" * 2000 + " tok-secret"
    assert body_line(answer(400, text)).endswith("tok-secret")


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (301, RemoteError, "ATLAS answered with a redirect (HTTP 301), which is not followed"),
        (401, CredentialsRefused, "ATLAS refused the credentials (HTTP 401: Invalid token.)"),
        (403, CredentialsRefused, "ATLAS refused the credentials (HTTP 403: Invalid token.)"),
        (404, RemoteNotFound, "ATLAS answered HTTP 404 (not found): Invalid token."),
        (400, Rejected, "Invalid token."),
        (422, Rejected, "Invalid token."),
        (500, RemoteError, "ATLAS answered HTTP 500: Invalid token."),
        (204, RemoteError, "ATLAS answered HTTP 204 where 201 was expected: Invalid token."),
    ],
)
def test_expect_maps_each_status_to_its_typed_error(status, error, message):
    with pytest.raises(error) as caught:
        expect(answer(status, '{"detail": "Invalid token."}'), 201, service="ATLAS")
    assert str(caught.value) == message
    assert caught.value.http_status == status


def test_expect_returns_an_expected_answer_and_an_empty_rejection_names_the_status():
    ok = answer(201, "{}")
    assert expect(ok, 200, 201, service="X") is ok
    with pytest.raises(Rejected, match=r"^X refused the request \(HTTP 409\)$"):
        expect(answer(409, ""), service="X")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "ATLAS sent an empty body instead of JSON for the task (HTTP 200)"),
        ('{"url": "https://', "ATLAS sent malformed JSON for the task (HTTP 200)"),
        ("<html><head><title>Maintenance</title></head></html>", "ATLAS sent an HTML page (Maintenance) instead of JSON for the task (HTTP 200)"),
    ],
)
def test_json_body_says_what_came_instead(body, message):
    with pytest.raises(RemoteError) as caught:
        json_body(answer(200, body), service="ATLAS", what="the task")
    assert str(caught.value) == message


@pytest.mark.parametrize(("body", "kind"), [("[]", "an array"), ('"x"', "a string"), ("null", "null"), ("3", "a number")])
def test_json_object_refuses_other_json(body, kind):
    with pytest.raises(RemoteError, match=f"^ATLAS sent {kind} where a JSON object was expected for the task$"):
        json_object(answer(200, body), service="ATLAS", what="the task")


@pytest.mark.parametrize(("method", "repeatable", "maybe_done"), [("POST", None, True), ("GET", None, False), ("POST", True, False), ("PUT", None, False)])
def test_a_server_error_to_a_call_that_is_not_repeatable_may_have_been_carried_out(method, repeatable, maybe_done):
    """A 500 to a POST: the facility may have made the request before failing, so ``expect``
    marks it ``maybe_done`` (a submission is then never sent again blindly); a repeatable call's
    500 is a plain failure. A response the transport did not make counts as repeatable."""
    import responses

    from facility_apis.core.transport import Transport

    with responses.RequestsMock() as mocked, Transport(retries=0) as transport:
        mocked.add(method, "https://facility.example.org/queue", status=500, body="Internal Server Error")
        response = transport.request(method, "https://facility.example.org/queue", repeatable=repeatable)
        with pytest.raises(RemoteError) as caught:
            expect(response, 201, service="Facility")
    assert caught.value.maybe_done is maybe_done and str(caught.value) == "Facility answered HTTP 500: Internal Server Error"
    with pytest.raises(RemoteError) as caught:
        expect(answer(500, "boom"), service="Facility")
    assert caught.value.maybe_done is False
