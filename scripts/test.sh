#!/usr/bin/env bash
# Install facility_apis with its test, docs and bench extras into a virtual environment, then run
# the whole test suite. PYTHON picks the interpreter (default python3), VENV the folder (.venv);
# LINT=1 runs `ruff check .` first (CI does), and a finding fails the run even when the tests
# pass; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test,docs,bench]'
lint=0
if [ "${LINT:-0}" = 1 ]; then
  echo "=== ruff check ."
  "$VENV/bin/ruff" check . || lint=1
fi
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
if [ "$lint" != 0 ]; then
  echo "ruff check . found problems (listed above)" >&2
  exit $((status ? status : 1))
fi
exit "$status"
