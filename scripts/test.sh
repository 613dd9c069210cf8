#!/usr/bin/env bash
# Install facility_apis with its test, docs and bench extras into a virtual environment, then run
# the whole test suite. PYTHON picks the interpreter (default python3), VENV the folder (.venv);
# extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test,docs,bench]'
exec "$VENV/bin/python" -m pytest "$@"
