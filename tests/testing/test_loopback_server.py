"""LoopbackServer: start/stop on a free loopback port, request recording, faults, down/up."""

import threading
import time

import pytest
import requests

from facility_apis.testing import LoopbackServer


def test_serves_on_loopback_and_stops_without_leaking_threads():
    before = set(threading.enumerate())
    server = LoopbackServer().start()
    assert server.url.startswith("http://127.0.0.1:")
    url = server.url
    assert requests.get(url + "/anything").status_code == 404
    server.stop()
    assert set(threading.enumerate()) == before
    with pytest.raises(RuntimeError, match="not started"):
        server.url  # noqa: B018 - reading the property is what raises
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=1)


def test_can_be_restarted_and_used_as_context_manager():
    server = LoopbackServer()
    with server:
        first = server.url
        assert requests.get(first).status_code == 404
    with server:
        assert requests.get(server.url).status_code == 404
    assert len(server.requests) == 2


def test_records_method_path_headers_and_body():
    with LoopbackServer() as server:
        requests.post(server.url + "/hook?x=1", data=b"payload", headers={"X-Test": "yes"})
    (recorded,) = server.requests
    assert (recorded.method, recorded.path, recorded.body) == ("POST", "/hook", b"payload")
    assert recorded.headers["X-Test"] == "yes"


def test_status_fault_fires_count_times_on_matching_paths_only():
    with LoopbackServer() as server:
        server.faults.add("status", count=2, path_prefix="/api", status=503, body={"error": "busy"}, retry_after=3)
        assert requests.get(server.url + "/other").status_code == 404
        assert len(server.faults) == 2
        for _ in range(2):
            response = requests.get(server.url + "/api/x")
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "3"
            assert response.json() == {"error": "busy"}
        assert requests.get(server.url + "/api/x").status_code == 404
        assert len(server.faults) == 0


def test_method_filter_and_clear():
    with LoopbackServer() as server:
        server.faults.add("status", status=500, method="POST")
        assert requests.get(server.url).status_code == 404
        assert requests.post(server.url).status_code == 500
        server.faults.add("drop", count=5)
        server.faults.clear()
        assert requests.get(server.url).status_code == 404


def test_latency_fault_delays_then_answers_normally():
    with LoopbackServer() as server:
        server.faults.add("latency", seconds=0.3)
        started = time.monotonic()
        assert requests.get(server.url).status_code == 404
        assert time.monotonic() - started >= 0.3
        with pytest.raises(requests.Timeout):
            server.faults.add("latency", seconds=2)
            requests.get(server.url, timeout=0.2)


def test_malformed_fault_answers_200_with_broken_json():
    with LoopbackServer() as server:
        server.faults.add("malformed")
        response = requests.get(server.url)
        assert response.status_code == 200
        with pytest.raises(requests.JSONDecodeError):
            response.json()


def test_drop_fault_closes_the_connection_without_an_answer():
    with LoopbackServer() as server:
        server.faults.add("drop")
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url)
        assert requests.get(server.url).status_code == 404
        assert len(server.requests) == 2


def test_down_and_up():
    with LoopbackServer() as server:
        server.down()
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url)
        server.down("503")
        assert requests.get(server.url).status_code == 503
        server.up()
        assert requests.get(server.url).status_code == 404


def test_unknown_fault_kind_is_refused():
    with pytest.raises(ValueError, match="unknown fault"):
        LoopbackServer().faults.add("explode")
    with pytest.raises(ValueError, match="count"):
        LoopbackServer().faults.add("drop", count=0)
