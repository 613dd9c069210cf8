"""Smoke test of the benchmark scripts: they run with --quick and print a ratio line.

No timing is asserted here; the figures are for people reading ``bench/run_all.py``'s output.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
HAS_PANDAS = importlib.util.find_spec("pandas") is not None


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_time_quick():
    done = run("import_time.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio core/baseline:" in done.stdout
    assert "FAIL" not in done.stdout


def test_atlas_parse_quick():
    done = run("atlas_parse.py", "--rows", "2000")
    assert done.returncode == 0, done.stdout + done.stderr
    if HAS_PANDAS:
        assert "ratio ours/pandas:" in done.stdout
        assert "peak traced memory" in done.stdout and "peak memory / file size:" in done.stdout
        assert "points differing from the row-by-row reference in any bit: 0" in done.stdout  # the parser stays exact
    else:
        assert "pandas is not installed" in done.stdout


def test_run_all_quick():
    done = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--quick"], capture_output=True, text=True, timeout=360
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "summary" in done.stdout and "ratio" in done.stdout
