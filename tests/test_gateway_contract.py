"""The gateway API's published contract (``GET /api/openapi.json``), checked by schemathesis
against a running gateway: every operation with its documented examples, then generated bodies,
path ids and headers (valid and invalid), with the client's token. Any 5xx, any status the
document does not list, any answer outside its documented shape fails.

Every check schemathesis has runs but one: a body that fits the document can still be refused,
since ``altdata`` and ``payload`` are checked against the facility's own draft-07 schemas, which
the document leaves to the facility (``GET`` a facility's forms from ``facility-apis schema``).

Bounded: at most ``MAX_EXAMPLES`` generated cases per operation, derandomized (the same cases on
every run), each call with a ``TIMEOUT`` s timeout; the bounds and the time taken are printed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import positive_data_acceptance

from facility_apis.core.interface import Target
from facility_apis.gateway.api import make_app
from facility_apis.gateway.crypto import SecretBox, generate_key
from facility_apis.gateway.runner import AppThread
from facility_apis.gateway.store import Store

MAX_EXAMPLES = 100
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A running gateway on SQLite with one client, its ATLAS allocation 1 and request 1."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('contract') / 'gateway.db'}", SecretBox(generate_key()))
    token = store.clients.add("contract")
    store.allocations.put(store.clients.authenticate(token), 1, "atlas", {"api_token": "0123456789abcdef0123456789abcdef01234567"}, instrument_id=7)
    store.requests.add(1, Target("ZTF21aaaaaaa", 150.1, 2.2), {"start_date": "2026-10-01", "end_date": "2026-10-31"}, followup_request_id=42)
    executor = ThreadPoolExecutor(4)
    with AppThread(make_app(store, executor=executor)) as app:
        yield app.url, token
    executor.shutdown()
    store.close()


def test_the_document_is_served_without_a_token_and_names_every_route(gateway):
    url, _ = gateway
    document = requests.get(f"{url}/api/openapi.json", timeout=TIMEOUT).json()
    assert document["openapi"] == "3.0.3" and document["info"]["title"] == "facility_apis gateway"
    assert set(document["paths"]) == {
        "/", "/api/allocations/validate", "/api/allocations/{allocation_id}", "/api/followup_request", "/api/followup_request/{request_id}",
        "/api/callbacks/{request_id}/{signature}", "/api/health", "/api/openapi.json",
    }  # fmt: skip
    body = document["components"]["schemas"]["FollowupRequestBody"]
    assert body["required"] == ["allocation_id", "payload"] and body["additionalProperties"] is False


def test_the_running_gateway_keeps_its_published_contract(gateway, request):
    url, token = gateway
    schema = schemathesis.openapi.from_url(f"{url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    started, calls = time.monotonic(), []
    headers = {"Authorization": f"token {token}"}
    for operation in operations:

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call_and_validate(base_url=url, headers=headers, timeout=TIMEOUT, excluded_checks=[positive_data_acceptance])
            calls.append((case.method, case.path, response.status_code))

        check()
    elapsed = time.monotonic() - started
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = (f"schemathesis: {len(operations)} operations, at most {MAX_EXAMPLES} generated cases each (derandomized), "
            f"{TIMEOUT:g} s timeout per call; {len(calls)} calls in {elapsed:.1f} s")  # fmt: skip
    if reporter is not None:
        reporter.write_line(line)
    print(line)
    assert all(status < 500 for _, _, status in calls)
    assert {status for _, _, status in calls} >= {200, 400, 404}, "the run never reached past validation: it would prove little"
