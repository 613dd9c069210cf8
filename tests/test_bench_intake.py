"""Smoke test of ``bench/gateway_intake.py`` at a tiny size: its correctness figures, never a timing.

Every posted request accepted exactly once (an id each, the stored rows exactly those ids), in
both deployments (``serve``; ``serve --no-worker`` beside a ``worker``), each run as real
processes; the drain's tasks all completed and delivered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run(*args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = Path(args[args.index("--json-out") + 1])
    # The bench gives up on a phase first (and stops the gateway processes it started), so a
    # stall fails with its report instead of leaving orphans when the subprocess is killed.
    command = [sys.executable, str(BENCH / "gateway_intake.py"), "--quick", "--timeout", "150", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout, done.stdout
    return done, json.loads(out.read_text())


def check(figures: dict, labels: list[str], requests: int, tasks: int) -> None:
    assert figures["failures"] == []
    assert list(figures["results"]) == labels
    for result in figures["results"].values():
        assert result["posted"] == result["accepted"] == result["stored"] == 2 * requests  # idle, then during the drain
        assert result["idle"]["count"] == requests
        assert 1 <= result["drain"]["count"] == result["posted_during_drain"] <= requests
        assert result["drain_completed"] == result["drain_delivered"] == tasks


def test_gateway_intake_quick(tmp_path):
    done, figures = run("--requests", "24", "--tasks", "8", "--deployments", "one,split", "--json-out", str(tmp_path / "intake.json"))
    assert "ratio p99 during drain / idle p99 (one, SQLite):" in done.stdout
    assert "ratio p99 during drain / idle p99 (split, SQLite):" in done.stdout
    check(figures, ["one, SQLite", "split, SQLite"], 24, 8)


@pytest.mark.postgres
def test_gateway_intake_quick_on_postgresql(tmp_path, postgres_schema):  # the fixture skips without a server
    done, figures = run("--requests", "16", "--tasks", "6", "--deployments", "split", "--database", "postgresql", "--json-out", str(tmp_path / "i.json"))
    assert "ratio p99 during drain / idle p99 (split, PostgreSQL):" in done.stdout
    check(figures, ["split, PostgreSQL"], 16, 6)
