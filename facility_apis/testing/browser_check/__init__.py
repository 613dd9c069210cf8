"""The browser form check: every registered facility's forms, rendered and submitted in SkyPortal's
form renderer, judged against the package's own validation.

    python -m facility_apis.testing.browser_check [--facility NAME ...] [--report FILE]

For each facility it takes what SkyPortal's UI receives (the SkyPortal class's
``frontend_render_info``), renders the request form and the allocation (altdata) form in headless
Chromium with the react-jsonschema-form versions pinned in ``browser/package.json``
(``browser/check.mjs``), once as the schema alone asks (``plain``) and once the way SkyPortal wraps
it (``skyportal``), and submits the untouched form and every instance of
:func:`~facility_apis.testing.form_instances.form_instances`. Each outcome is compared with the
facility's verdict on the data the form held (:mod:`.forms`, :mod:`.verdicts`); what differs is a
finding (:mod:`.findings`), which fails the check unless ``browser/expected-disagreements.json``
lists it; a listed entry that matches nothing is stale and fails too. Screenshots of each form go to
``docs/_static/forms/`` (:mod:`.screenshots`).

Runs from a checkout: ``browser/`` sits beside the package. See docs/browser-check.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from ...core.registry import Registry
from .findings import MODES, REVIEWABLE, SIDES, Expected, Finding, Report, in_ci, judge, load_expected, reconcile
from .forms import FORMS, FormUnderTest, Verdict, collect_forms, expected_screenshots
from .paths import BROWSER, EXPECTED, MARKUP_DIGESTS, ROOT, SCREENSHOT_NAMES, SCREENSHOTS
from .screenshots import keep_screenshots, markup_digest
from .tools import chromium_path, install, missing_tools, node_modules_current
from .verdicts import agrees, ajv_fields, browser_verdict

__all__ = [
    "BROWSER", "EXPECTED", "FORMS", "MARKUP_DIGESTS", "MAX_WORKERS", "MODES", "REVIEWABLE", "ROOT", "SCREENSHOTS", "SCREENSHOT_NAMES", "SIDES",
    "Expected", "Finding", "FormUnderTest", "Report", "Verdict", "agrees", "ajv_fields", "browser_verdict", "chromium_path", "collect_forms",
    "expected_screenshots", "in_ci",
    "install", "judge", "keep_screenshots", "load_expected", "markup_digest", "missing_tools", "node_modules_current", "reconcile", "run", "workers",
]


#: Pages checking forms at once: one per core, at most two (Chromium's renderer and the page's
#: scripts keep a core busy each); ``FORM_CHECK_WORKERS`` overrides.
MAX_WORKERS = 2


def workers() -> int:
    """How many pages check forms at once (``FORM_CHECK_WORKERS``, else one per core up to ``MAX_WORKERS``)."""
    configured = os.environ.get("FORM_CHECK_WORKERS", "").strip()
    if configured:
        return max(1, int(configured))
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def run(
    registry: Registry | None = None,
    names: Iterable[str] | None = None,
    *,
    expected_path: Path = EXPECTED,
    screenshots: Path | None = SCREENSHOTS,
) -> Report:
    """The whole check over ``registry`` (default: the installed facilities), or only ``names``,
    against the reviewed list at ``expected_path``; screenshots go to ``screenshots`` (``None``:
    none are taken). Installs the npm packages first when they do not match the lock file."""
    started = time.perf_counter()
    install()
    forms = collect_forms(registry, names)
    expected = load_expected(expected_path)
    with tempfile.TemporaryDirectory(prefix="form-check-") as tmp:
        job, results = Path(tmp) / "job.json", Path(tmp) / "results.json"
        shots = Path(tmp) / "shots"
        spec = {"screenshotDir": str(shots) if screenshots else None, "workers": workers(), "forms": [f.job() for f in forms]}
        job.write_text(json.dumps(spec))
        env = dict(os.environ, CHROMIUM=chromium_path())
        subprocess.run(["node", str(BROWSER / "check.mjs"), str(job), str(results)], check=True, env=env)
        seen = json.loads(results.read_text())
        findings, summaries = judge(forms, seen)
        pictures = keep_screenshots(seen, shots, screenshots) if screenshots else {}
    unexpected, matched, stale = reconcile(findings, expected, {f.facility for f in forms})
    elapsed = time.perf_counter() - started
    return Report(seen["versions"], elapsed, seen["seconds"], summaries, unexpected, matched, stale, pictures, seen.get("workers", 1))
