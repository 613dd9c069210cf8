"""The drain benchmark's worker processes (``gateway_drain.py --worker-processes``) at a tiny size:
two gateway worker processes on one PostgreSQL database complete and deliver every task exactly
once and keep ATLAS's allowance between them, counted by the emulator and the SkyPortal stub.
Correctness only, never a timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
TASKS = 16


@pytest.mark.postgres
def test_two_worker_processes_deliver_every_task_once_within_the_allowance(tmp_path, postgres_schema):  # the fixture skips without a server
    out = tmp_path / "drain.json"
    command = [sys.executable, str(BENCH / "gateway_drain.py"), "--quick", "--tasks", str(TASKS), "--worker-processes", "2", "--allowed", "4"]
    done = subprocess.run([*command, "--json-out", str(out)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio 1 worker / 2 workers (PostgreSQL):" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["failures"] == []
    compared = figures["worker_processes"]
    for side, processes in (("one", 1), ("many", 2)):
        drain = compared[side]
        assert drain["processes"] == processes and len(drain["calls"]) == processes
        assert drain["completed"] == drain["delivered_completed"] == TASKS
        # Each task once: its 3 status reads at ATLAS, its 2 statuses and 1 upload of 20 points at the stub.
        assert drain["status_reads"] == sum(drain["calls"]) == TASKS * 3
        assert drain["statuses"] == TASKS * 2 and drain["repeated_statuses"] == 0
        assert drain["uploads"] == TASKS and drain["repeated_uploads"] == 0 and drain["points"] == TASKS * 20
        # 32 calls in flight allowed in each process, 4 at ATLAS in all: counted by the emulator.
        assert 1 <= drain["max_in_flight"] <= drain["allowed"] == 4
    assert compared["ratio"] > 0
    row = figures["more"][-1]
    assert row["ratio_name"] == "1 worker / 2 workers" and row["target"] == "≥ 1.6"
