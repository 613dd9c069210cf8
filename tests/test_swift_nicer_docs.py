"""The status tables of docs/facilities/swift.md and nicer.md are the statuses the tests prove the
code gives: every documented status is one a test expects from the code, and every status a test
expects is documented (numbers made generic). Their recipes are run by tests/test_page_recipes.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATUS = re.compile(r"^(submitted|queued|running|complete|rejected|failed to submit|failed|canceled|deleted|pending submission)(: |$)")


def _generic(text: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "N", text)


def documented(page: str, start: str, end: str) -> set[str]:
    text = (ROOT / "docs" / "facilities" / page).read_text(encoding="utf-8")
    section = text[text.index(start) : text.index(end)]
    return {_generic(span) for span in re.findall(r"`([^`]+)`", section) if STATUS.match(span)}


def expected_by_tests(*modules: str) -> set[str]:
    """Every status-shaped string constant of the test modules (what they assert the code gives)."""
    found = set()
    for module in modules:
        for node in ast.walk(ast.parse((ROOT / "tests" / module).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and STATUS.match(node.value):
                found.add(_generic(node.value))
    return found


PAGES = {
    "swift": (("swift.md", "(swift-statuses)=", "(swift-frames)="), ("test_swift_facility.py", "test_swift_nicer_e2e.py")),
    "nicer": (("nicer.md", "(nicer-statuses)=", "## Differences from SkyPortal"), ("test_nicer_facility.py", "test_swift_nicer_e2e.py")),
}


def _matches(status: str, statuses: set[str]) -> bool:
    """``status`` is one of ``statuses``, or a documented prefix of one (a table row shows the
    first product's state, the status goes on)."""
    return any(status == other or other.startswith(status) or status.startswith(other) for other in statuses)


@pytest.mark.parametrize("name", list(PAGES))
def test_every_documented_status_is_one_the_code_gives(name):
    page, modules = PAGES[name]
    tested = expected_by_tests(*modules)
    missing = sorted(s for s in documented(*page) if not _matches(s, tested) and not s.endswith("..."))
    assert not missing, f"documented in {page[0]} but never expected by a test: {missing}"


@pytest.mark.parametrize("name", list(PAGES))
def test_every_status_the_code_gives_is_documented(name):
    page, modules = PAGES[name]
    docs = documented(*page)
    own = "Swift" if name == "swift" else "NICER|ARK"
    theirs = "NICER|ARK" if name == "swift" else "Swift|UKSSDC"
    ours = [s for s in expected_by_tests(*modules) if re.search(own, s) or (name == "swift" and re.search("UKSSDC|ToO|observation|product", s))]
    tested = {s for s in ours if not re.search(theirs, s)}
    missing = sorted(s for s in tested if not _matches(s, docs))
    assert not missing, f"expected by a test but not in {page[0]}: {missing}"
