"""docs/skyportal.md's "Testing a deployment's setup" example runs as written (a newcomer found it
did not: the emulator's loopback address was refused and its token was below the floor)."""

import contextlib
import io
import re
from pathlib import Path

from facility_apis.skyportal import settings

PAGE = Path(__file__).resolve().parents[1] / "docs" / "skyportal.md"


def test_the_documented_round_trip_runs_and_prints_what_the_page_says():
    section = PAGE.read_text(encoding="utf-8").split("## Testing a deployment's setup", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    printed = re.search(r"It prints `([^`]+)`", section).group(1)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(PAGE), "exec"), {"__name__": "docs_example"})
    finally:
        settings.reset()
    status, remote_id = out.getvalue().splitlines()
    assert status == printed and re.fullmatch(r"http://127\.0\.0\.1:\d+/forcedphot/queue/1/", remote_id)
