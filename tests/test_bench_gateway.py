"""Smoke tests of the gateway benchmarks at tiny sizes (seconds, not minutes), so they cannot rot.

Correctness only — every task completed and delivered, nothing lost; never a timing. Also the
ATLAS emulator's scheduling knobs the benchmarks rely on (``finish_after_reads``,
``throttle_period`` and the read counters).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from facility_apis.testing import ATLASEmulator

BENCH = Path(__file__).resolve().parent.parent / "bench"
TOKEN = "atlas-token-0123456789"


def run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, str(BENCH / script), "--quick", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout, done.stdout
    return done


def test_gateway_drain_quick(tmp_path):
    out = tmp_path / "drain.json"
    done = run("gateway_drain.py", "--tasks", "12", "--json-out", str(out))
    assert "ratio baseline/gateway (SQLite):" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["failures"] == []
    gateway = figures["gateway"]["SQLite"]
    assert gateway["completed"] == gateway["delivered_completed"] == 12
    assert gateway["statuses"] == 24 and gateway["points"] == 12 * 20  # running + complete; 20 rows each
    assert gateway["status_reads"] == 12 * 3


@pytest.mark.postgres
def test_gateway_drain_quick_on_postgresql(tmp_path, postgres_schema):  # the fixture skips without a server
    done = run("gateway_drain.py", "--tasks", "8", "--database", "postgresql")
    assert "ratio baseline/gateway (PostgreSQL):" in done.stdout


def test_gateway_throttled_quick(tmp_path):
    out = tmp_path / "throttled.json"
    done = run("gateway_throttled.py", "--json-out", str(out))
    assert "fraction of the allowed read rate achieved (2 workers, SQLite):" in done.stdout
    assert "lost tasks: 0" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["failures"] == [] and figures["lost"] == 0 and figures["rate_known"]
    for phase in ("one_worker", "many_workers"):
        assert figures[phase]["reads_allowed"] == 30 * 3
        assert figures[phase]["reads_throttled"] == 0  # told the rate, the workers together kept to it


def test_gateway_throttled_quick_with_the_rate_unknown(tmp_path):
    out = tmp_path / "throttled.json"
    done = run("gateway_throttled.py", "--unknown-rate", "--json-out", str(out))
    assert "lost tasks: 0" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["failures"] == [] and figures["lost"] == 0 and not figures["rate_known"]
    for phase in ("one_worker", "many_workers"):
        assert figures[phase]["reads_allowed"] == 30 * 3
        assert figures[phase]["reads_throttled"] > 0  # the throttle did bite: the pauses and ramps were exercised
    # Two workers (32 calls in flight each) never had more than the 4 allowed at ATLAS, counted there.
    assert figures["workers"] == 2 and 1 <= figures["many_workers"]["max_in_flight"] <= figures["allowed"] == 4


@pytest.mark.skipif(importlib.util.find_spec("psutil") is None, reason="psutil not installed")
def test_gateway_memory_quick(tmp_path):
    out = tmp_path / "memory.json"
    done = run("gateway_memory.py", "--jobs", "100", "--json-out", str(out))
    assert "RSS growth holding 100 jobs:" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["completed"] == 100 and figures["status_reads"] == 300


# -- the emulator's knobs --------------------------------------------------------------------


def _submit(emulator: ATLASEmulator) -> str:
    answer = requests.post(
        f"{emulator.base_url}/queue/", data={"ra": "10", "dec": "20", "send_email": "false"}, headers={"Authorization": f"Token {TOKEN}"}, timeout=5
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["url"]


def test_finish_after_reads_finishes_a_task_at_its_nth_status_read():
    with ATLASEmulator(tokens={TOKEN: "bench"}, run_time=3600, finish_after_reads=3) as emulator:
        url = _submit(emulator)
        time.sleep(0.05)
        seen = [requests.get(url, timeout=5).json() for _ in range(3)]
        assert [task["finished"] for task in seen] == [False, False, True]
        assert seen[0]["starttimestamp"] is not None and seen[0]["finishtimestamp"] is None
        done = seen[2]
        assert done["result_url"] and done["runtime"] >= 0 and done["waittime"] == 0.0
        assert requests.get(done["result_url"], timeout=5).status_code == 200
        assert requests.get(url, timeout=5).json()["finishtimestamp"] == done["finishtimestamp"]  # stays finished
        assert emulator.task(done["id"])["finished"]  # the emulator's own view is not a status read


def test_finish_after_reads_also_ends_the_queue_wait():
    with ATLASEmulator(tokens={TOKEN: "bench"}, queue_time=3600, finish_after_reads=2) as emulator:
        url = _submit(emulator)
        first, second = (requests.get(url, timeout=5).json() for _ in range(2))
        assert first["starttimestamp"] is None and first["queuepos"] == 0
        assert second["finished"] and second["starttimestamp"] == second["finishtimestamp"]


def test_throttle_period_and_read_counters():
    with ATLASEmulator(tokens={TOKEN: "bench"}, read_rate=2, throttle_period=1.0) as emulator:
        url = _submit(emulator)
        headers = {"Authorization": f"Token {TOKEN}"}
        codes = [requests.get(url, headers=headers, timeout=5).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert (emulator.reads_allowed, emulator.reads_throttled) == (2, 1)
        time.sleep(1.05)  # the window has slid past both reads
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        assert emulator.reads_allowed == 3
