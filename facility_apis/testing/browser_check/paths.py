"""Where the browser form check finds its files, in a checkout of this repository."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: package.json, package-lock.json, the page and check.mjs (node_modules/ and build/ are made here).
BROWSER = ROOT / "browser"
#: The reviewed list of expected findings.
EXPECTED = BROWSER / "expected-disagreements.json"
#: Where the screenshots go, for the docs.
SCREENSHOTS = ROOT / "docs" / "_static" / "forms"
#: sha256 of each screenshot's form markup, so an unchanged form keeps its picture.
MARKUP_DIGESTS = SCREENSHOTS / "markup.json"
#: The pictures every facility has: ``<facility>-<name>.png``.
SCREENSHOT_NAMES = ("request", "request-skyportal", "allocation")
