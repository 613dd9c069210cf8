"""Each facility page's "Trying it on this machine" recipe runs as written against the emulators,
127.0.0.1 only, and prints what its comment says; where the page shows how to serve the emulator
alone, that runs too and takes the page's command line."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from facility_apis.cli import main
from facility_apis.testing.network import socket_guard

DOCS = Path(__file__).resolve().parent.parent / "docs" / "facilities"
PAGES = ("swift", "nicer", "ztf_trigger", "kait", "winter", "spring", "mma")
NEEDS = {"swift": "swifttools", "ztf_trigger": "ztffields"}  # the page's extra
LOOPBACK_URL = re.compile(r"http://127\.0\.0\.1:\d+")


def section(name: str) -> str:
    text = (DOCS / f"{name}.md").read_text(encoding="utf-8")
    start = text.index("## Trying it on this machine")
    return text[start : text.index("\n## ", start)]


def promised(printed: str, promise: str) -> bool:
    """``printed`` is the ``promise``, each ``...`` in it standing for any text."""
    return re.fullmatch(".*".join(re.escape(part) for part in promise.split("...")), printed, re.S) is not None


def run_recipe(name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Run the page's recipe (no connection off loopback); check what it prints; its names."""
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    code = re.search(r"```python\n(.*?)```", section(name), re.S).group(1)
    namespace: dict[str, Any] = {}
    with socket_guard(allow_loopback=True) as attempts:
        exec(compile(code, f"{name}.md", "exec"), namespace)
    assert attempts == []
    promise = re.search(r"print\(.*\)  # (.+)$", code, re.M).group(1)
    printed = capsys.readouterr().out.strip()
    assert promised(printed, promise), f"{name}.md promises {promise!r}, the recipe printed {printed!r}"
    return namespace


@pytest.mark.parametrize("name", PAGES)
def test_the_pages_recipe_against_the_emulators_runs_and_prints_what_it_says(name, capsys):
    run_recipe(name, capsys)


SERVED_ALONE = [name for name in PAGES if "\npython -c " in section(name)]


def test_the_promise_check_fails_on_a_different_status():
    assert promised("submitted: KAIT queued BV (long): done", "submitted: KAIT queued ... (long): ...")
    assert not promised("rejected: KAIT refused the request: no", "submitted: KAIT queued ...")


@pytest.mark.parametrize("name", SERVED_ALONE)
def test_the_emulator_served_alone_takes_the_pages_command_line(name, capsys, tmp_path, monkeypatch):
    """The page's ``python -c`` serves the emulator until Enter; its ``facility-apis submit``
    line, with ``alt.json`` and ``req.json`` holding the recipe's altdata and form, submits to it."""
    namespace = run_recipe(name, capsys)
    text = section(name)
    code = shlex.split(re.search(r"^python -c (.+)$", text, re.M).group(1))[0]
    command = re.search(r"`(facility-apis submit [^`]+)`", text).group(1)
    monkeypatch.chdir(tmp_path)
    with subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as served:
        try:
            url = served.stdout.readline().strip()
            assert LOOPBACK_URL.fullmatch(url)
            altdata = json.loads(LOOPBACK_URL.sub(url, json.dumps(dict(namespace["altdata"]))))  # MMA's endpoint: this emulator
            (tmp_path / "alt.json").write_text(json.dumps(altdata))
            (tmp_path / "req.json").write_text(json.dumps(namespace["payload"]))
            with socket_guard(allow=[url]) as attempts:
                assert main(shlex.split(command.replace("<its URL>", url))[1:]) == 0
            assert attempts == []
            assert capsys.readouterr().out.startswith("submitted: ")
        finally:
            served.communicate("\n", timeout=30)
    assert served.returncode == 0
