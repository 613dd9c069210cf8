"""The transport: timeouts, what is retried and what never is, throttling, redacted records."""

import socket
import threading
import time
from contextlib import contextmanager

import pytest
import requests
import responses
from responses import registries

from facility_apis.core.errors import FacilityUnavailable, Throttled
from facility_apis.core.redact import MASK
from facility_apis.core.transport import USER_AGENT, HTTPCall, Transport, throttle_wait
from facility_apis.testing.network import loopback_egress

URL = "https://facility.example.org/api/thing"
SECRET = "tok-abc-123"


def fast_transport(**kw):
    return Transport(backoff=0, secrets=[SECRET], **kw)


@responses.activate(registry=registries.OrderedRegistry)
def test_get_is_retried_on_transient_errors():
    responses.get(URL, status=503)
    responses.get(URL, status=502)
    responses.get(URL, json={"ok": True})
    with fast_transport() as transport, transport.recording() as records:
        response = transport.request("GET", URL)
    assert response.json() == {"ok": True}
    assert len(responses.calls) == 3
    assert records[-1].status == 200


@responses.activate
def test_post_is_never_retried_after_an_answer():
    responses.post(URL, status=503)
    with fast_transport() as transport, pytest.raises(FacilityUnavailable) as caught:
        transport.request("POST", URL, data={"a": "1"})
    assert len(responses.calls) == 1
    assert caught.value.sent is True


@responses.activate(registry=registries.OrderedRegistry)
def test_get_gives_up_after_the_retry_budget():
    for _ in range(4):
        responses.get(URL, status=504)
    with fast_transport(retries=3) as transport, pytest.raises(FacilityUnavailable, match="HTTP 504"):
        transport.request("GET", URL)
    assert len(responses.calls) == 4


@pytest.mark.parametrize(
    ("headers", "body", "wait"),
    [
        ({"Retry-After": "7"}, "", 7),
        ({}, '{"detail": "Request was throttled. Expected available in 1 second."}', 1),
        ({}, '{"detail": "Request was throttled. Expected available in 12 seconds."}', 12),
        ({}, '{"detail": "Expected available in 2 minutes."}', 120),
        ({}, "slow down", 10),
        ({"Retry-After": "99999"}, "", 300),
    ],
)
@responses.activate
def test_429_becomes_throttled_with_the_wait(headers, body, wait):
    responses.post(URL, status=429, headers=headers, body=body)
    with fast_transport() as transport, pytest.raises(Throttled) as caught:
        transport.request("POST", URL)
    assert caught.value.wait == wait
    assert len(responses.calls) == 1


def test_retry_after_as_http_date():
    from email.utils import formatdate

    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = formatdate(time.time() + 30, usegmt=True)
    assert 28 <= throttle_wait(response) <= 30


@responses.activate
def test_records_are_redacted_everywhere():
    responses.post(URL, json={"echo": SECRET}, headers={"Set-Cookie": "sid=1"})
    with fast_transport() as transport, transport.recording() as records:
        transport.request(
            "POST",
            URL,
            params={"token": SECRET},
            headers={"Authorization": f"Token {SECRET}", "X-Key": SECRET},
            data={"password": SECRET},
        )
    (record,) = records
    flat = repr(record.as_dict())
    assert SECRET not in flat
    assert record.request_headers["Authorization"] == MASK
    assert record.response_headers["Set-Cookie"] == MASK
    assert f"token={MASK}" in record.url
    assert record.request_body == f"password={MASK}"
    assert MASK in record.response_body


@responses.activate
def test_session_settings_user_agent_and_tls():
    responses.get(URL, body="ok")
    with fast_transport(timeout=(1.5, 4.0)) as transport:
        transport.request("GET", URL)
        assert transport.session.verify is True
        assert transport.session.trust_env is False
    request = responses.calls[0].request
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.req_kwargs["timeout"] == (1.5, 4.0)


def test_render_shows_the_exact_request_masked():
    call = HTTPCall("POST", URL, headers={"Authorization": f"Token {SECRET}"}, data={"ra": "1.5", "key": SECRET})
    text = Transport(secrets=[SECRET]).render(call)
    assert text.startswith(f"POST {URL}\n")
    assert "Authorization: ***" in text
    assert text.endswith(f"ra=1.5&key={MASK}\n")
    assert SECRET not in text


def test_large_bodies_are_clipped_in_records():
    from facility_apis.core import transport as module

    text = "x" * (module.BODY_LIMIT + 10)
    assert module._clip(text).endswith(f"({len(text)} characters in all)")


# -- real sockets on 127.0.0.1 -----------------------------------------------------------------


def unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def silent_server(respond_after=None):
    """Accepts connections and reads; answers 200 after ``respond_after`` s, or never."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()
    accepted = []

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.recv(65536)
            if respond_after is not None:
                time.sleep(respond_after)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/", accepted
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def test_connection_refused_is_retried_then_reported_as_never_sent():
    url = f"http://127.0.0.1:{unused_port()}/queue/"
    with Transport(backoff=0, retries=2, egress=loopback_egress()) as transport, transport.recording() as records, pytest.raises(FacilityUnavailable) as caught:
        transport.request("POST", url, data={"a": 1})
    assert caught.value.sent is False
    assert "could not connect" in str(caught.value)
    assert records[0].status is None and records[0].error


def test_post_read_timeout_is_not_resent():
    with silent_server() as (url, accepted), Transport(timeout=(1.0, 0.5), backoff=0, egress=loopback_egress()) as transport:
        with pytest.raises(FacilityUnavailable) as caught:
            transport.request("POST", url, data={"a": 1})
        time.sleep(0.3)
        assert len(accepted) == 1
    assert caught.value.sent is True
    assert "may have reached the facility" in str(caught.value)


def test_get_read_timeout_is_retried():
    with silent_server() as (url, accepted), Transport(timeout=(1.0, 0.3), backoff=0, retries=2, egress=loopback_egress()) as transport:
        with pytest.raises(FacilityUnavailable):
            transport.request("GET", url)
        time.sleep(0.3)
        assert len(accepted) == 3


def test_answer_within_timeout_is_returned():
    with silent_server(respond_after=0.1) as (url, _), Transport(timeout=(1.0, 2.0), egress=loopback_egress()) as transport:
        assert transport.request("GET", url).text == "ok"


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
@responses.activate
def test_429_with_retry_after_is_not_slept_through_on_idempotent_calls(method):
    # urllib3 would retry (and sleep) on a 429 carrying Retry-After; the caller must decide instead.
    responses.add(method, URL, status=429, headers={"Retry-After": "30"})
    responses.add(method, URL, status=200)
    started = time.monotonic()
    with fast_transport() as transport, pytest.raises(Throttled) as caught:
        transport.request(method, URL)
    assert caught.value.wait == 30
    assert len(responses.calls) == 1
    assert time.monotonic() - started < 1


@responses.activate(registry=registries.OrderedRegistry)
def test_503_with_retry_after_is_still_retried_on_get():
    responses.get(URL, status=503, headers={"Retry-After": "0"})
    responses.get(URL, body="ok")
    with fast_transport() as transport:
        assert transport.request("GET", URL).text == "ok"
    assert len(responses.calls) == 2


# -- repeatable: a GET that changes something, a POST that only reads ---------------------------


def test_a_get_declared_not_repeatable_is_not_resent_after_a_read_timeout():
    with silent_server() as (url, accepted), Transport(timeout=(1.0, 0.3), backoff=0, retries=2, egress=loopback_egress()) as transport:
        with pytest.raises(FacilityUnavailable) as caught:
            transport.send(HTTPCall("GET", url, repeatable=False))
        time.sleep(0.3)
        assert len(accepted) == 1
    assert caught.value.sent is True
    assert "may have reached the facility and was not sent again" in str(caught.value)


@responses.activate
def test_a_get_declared_not_repeatable_is_not_resent_after_a_503():
    responses.get(URL, status=503)
    with fast_transport() as transport, pytest.raises(FacilityUnavailable) as caught:
        transport.request("GET", URL, repeatable=False)
    assert len(responses.calls) == 1
    assert caught.value.sent is True


def test_a_post_declared_repeatable_is_resent_after_a_read_timeout_and_may_be_tried_again():
    with silent_server() as (url, accepted), Transport(timeout=(1.0, 0.3), backoff=0, retries=2, egress=loopback_egress()) as transport:
        with pytest.raises(FacilityUnavailable) as caught:
            transport.send(HTTPCall("POST", url, json={"q": 1}, repeatable=True))
        time.sleep(0.3)
        assert len(accepted) == 3
    assert caught.value.sent is False  # repeating it does no harm: the caller may try again
    assert "may have reached" not in str(caught.value)


@responses.activate(registry=registries.OrderedRegistry)
def test_a_post_declared_repeatable_is_retried_on_transient_statuses():
    responses.post(URL, status=502)
    responses.post(URL, json={"ok": True})
    with fast_transport() as transport:
        assert transport.request("POST", URL, json={"q": 1}, repeatable=True).json() == {"ok": True}
    assert len(responses.calls) == 2


@responses.activate(registry=registries.OrderedRegistry)
def test_the_choice_applies_to_its_own_call_only():
    responses.get(URL, status=503)
    responses.get(URL, status=503)
    responses.get(URL, body="ok")
    with fast_transport() as transport:
        with pytest.raises(FacilityUnavailable):
            transport.request("GET", URL, repeatable=False)
        assert transport.request("GET", URL).text == "ok"  # the default again: retried
    assert len(responses.calls) == 3
