"""The steady-load gateway benchmark at a tiny size (seconds): correctness only, never a timing.

Every request that arrived through the API was submitted to ATLAS once, completed, and SkyPortal
accepted each of its messages once, in order, although it was down twice meanwhile. Also the
SkyPortal stub's log of accepted messages the benchmark counts them with.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

BENCH = Path(__file__).resolve().parent.parent / "bench"
AUTH = {"Authorization": "token skyportal-token"}
OBJ = "ZTF21aaaaaaa"


@pytest.mark.skipif(importlib.util.find_spec("psutil") is None, reason="psutil not installed")
def test_gateway_steady_quick(tmp_path):
    out = tmp_path / "steady.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "gateway_steady.py"), "--quick", "--seconds", "6", "--rate", "3", "--json-out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RSS end/warm-up:" in done.stdout and "open fds end/warm-up:" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["failures"] == [] and figures["refused"] == 0 and figures["drained"]
    arrived = figures["arrived"]
    assert arrived >= 6 * 3 - 1  # the intake kept its rate
    # One POST queue/ per request, counted at ATLAS; each completed; each status (submitted,
    # running, complete) and its 20 points accepted by SkyPortal once.
    assert figures["submissions"] == figures["completed"] == arrived and figures["duplicate_tasks"] == 0
    assert figures["statuses_delivered"] == 3 * arrived and figures["points_delivered"] == 20 * arrived
    assert figures["outbox_backlog"] == figures["outbox_dead"] == 0
    # SkyPortal was down twice while messages were owed: some needed another attempt.
    assert [mode for _, _, mode in figures["outages"]] == ["drop", "503"] and figures["delivery_retried"] > 0
    assert len(figures["samples"]) > 10 and all(rss > 0 and fds > 0 and blocks > 0 for _, rss, fds, blocks, *_ in figures["samples"])


def test_stub_logs_each_accepted_message_in_order(skyportal_stub):
    stub = skyportal_stub
    stub.add_request(7, obj_id=OBJ)
    stub.add_source(OBJ, 10.5, -20.25)
    points = {"obj_id": OBJ, "instrument_id": 1, "mjd": [60000.1, 60001.2], "mag": [18.5, None], "magerr": [0.05, None],
              "limiting_mag": [19.8, 19.6], "magsys": "ab", "filter": ["atlasc", "atlaso"]}  # fmt: skip

    def post(method, path, body):
        return requests.request(method, stub.url + path, json=body, headers=AUTH, timeout=5).status_code

    assert post("POST", "/api/facility", {"followup_request_id": 7, "new_status": "running: started"}) == 200
    stub.faults.add("status", path_prefix="/api/photometry", status=503)
    assert post("PUT", "/api/photometry", points) == 503  # faulted: never reached SkyPortal's handler
    assert post("PUT", "/api/photometry", points) == 200
    assert post("PUT", "/api/photometry", points) == 200  # the same points again: idempotent, yet a second upload
    assert post("POST", "/api/photometry", points) == 400  # refused: already stored
    assert post("POST", "/api/facility", {"followup_request_id": 8, "new_status": "x"}) == 400  # no such request
    assert post("POST", "/api/facility", {"followup_request_id": 7, "new_status": "complete: 2 points"}) == 200
    assert [tuple(message) for message in stub.accepted()] == [
        ("status", OBJ, "running: started", 7),
        ("photometry", OBJ, 2, None),
        ("photometry", OBJ, 2, None),
        ("status", OBJ, "complete: 2 points", 7),
    ]
