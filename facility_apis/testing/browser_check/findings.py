"""What the check found in the browser's results, and the reviewed list that may excuse it.

Kinds of finding: ``disagreement`` (the form and the package judge the same data differently),
``untouched`` (a request form does not submit untouched, or the package refuses what it sends),
``broken`` (the form could not be used: it did not render, threw, had no submit button, or the
page failed), ``console``, ``network`` and ``harness`` (a console error, a request leaving the
page, an outcome the check cannot read). Only the first two, and ``broken`` on a generated instance
(hand-built data, not the untouched form an observer sees), may be listed in
``browser/expected-disagreements.json``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .forms import FORMS, FormUnderTest
from .paths import EXPECTED
from .verdicts import BROKEN, agrees, browser_verdict

MODES = ("plain", "skyportal")
REVIEWABLE = ("disagreement", "untouched")
SIDES = ("browser", "python", "both", "neither")


def in_ci() -> bool:
    """Whether this is a CI run (``CI`` set, as ``.ci/run`` runs): there the check is required."""
    return bool(os.environ.get("CI"))


@dataclass(frozen=True)
class Seen:
    """Where (facility, form, mode, instance) and the two verdicts, as the check prints them."""

    facility: str
    form: str
    mode: str
    instance: str
    browser: str
    python: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.facility, self.form, self.mode, self.instance)


@dataclass(frozen=True)
class Finding(Seen):
    """Something the check saw; ``data`` is what both sides judged (the facility's part of the form)."""

    kind: str = "disagreement"
    detail: str = ""
    data: Any = None

    @property
    def reviewable(self) -> bool:
        """Whether the reviewed list may excuse it (a broken untouched form never)."""
        return self.kind in REVIEWABLE or (self.kind == "broken" and self.instance != "untouched")

    def __str__(self) -> str:
        text = f"[{self.kind}] {self.facility} {self.form} ({self.mode}) {self.instance}: browser {self.browser}; python {self.python}"
        return text + (f" — {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Expected(Seen):
    """One reviewed entry: a finding, which side is ``right``, its ``status`` and the ``reason``."""

    right: str = ""
    reason: str = ""
    status: str = ""


def load_expected(path: Path = EXPECTED) -> list[Expected]:
    """The reviewed entries of ``path``; ``ValueError`` for an entry without a reason or a side,
    with an unknown form, mode or side, or listed twice."""
    document = json.loads(path.read_text(encoding="utf-8"))
    entries, seen = [], set()
    required = [*Seen.__dataclass_fields__, "right", "reason"]
    for number, raw in enumerate(document.get("entries", []), 1):
        missing = [name for name in required if not raw.get(name)]
        if missing:
            raise ValueError(f"{path.name} entry {number} lacks {', '.join(missing)}")
        entry = Expected(**{name: raw[name] for name in Expected.__dataclass_fields__ if name in raw})
        if entry.form not in FORMS or entry.mode not in MODES or entry.right not in SIDES:
            raise ValueError(f"{path.name} entry {number}: form must be one of {FORMS}, mode one of {MODES}, right one of {SIDES}")
        if entry.key in seen:
            raise ValueError(f"{path.name} entry {number} repeats {entry.key}")
        seen.add(entry.key)
        entries.append(entry)
    return entries


def judge(forms: list[FormUnderTest], results: Mapping[str, Any]) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Every finding in the browser's ``results`` (from ``browser/check.mjs``), and per form and
    mode the number of submissions, how many agreed, and the untouched form's verdicts."""
    by_form = {(f.facility, f.form): f for f in forms}
    findings = [Finding("-", "-", "-", "-", "-", "-", kind="network", detail=f"the page tried to load {url}") for url in results.get("left", [])]
    summaries = []
    for run in results["runs"]:
        form = by_form[(run["facility"], run["form"])]
        where = (run["facility"], run["form"], run["mode"])
        logged: dict[str, list[str]] = {}
        for entry in run.get("console", []):
            logged.setdefault(entry["text"], []).append(entry["step"])
        findings += [Finding(*where, steps[0], "-", "-", kind="console", detail=f"{text} (logged {len(steps)}x)") for text, steps in logged.items()]
        agreed, untouched = 0, None
        unusable = run["untouched"].get("broken")  # nothing else of this form is worth reporting
        for outcome in [run["untouched"], *run["instances"]]:
            browser, payload, outside = browser_verdict(outcome)
            python = form.judge(payload)
            found = functools.partial(Finding, *where, outcome["id"], str(browser), str(python), data=payload)
            if outcome["id"] == "untouched":
                untouched = {"browser": str(browser), "python": str(python), "submitted": payload}
            if unusable and outcome["id"] != "untouched":
                continue
            if browser.note == BROKEN:
                also = ""
                if unusable:
                    lost = sum(1 for o in run["instances"] if o.get("blockedBy") == "broken")
                    also = f"; {lost} of {len(run['instances'])} generated submissions could not be made either (not reported)"
                findings.append(found(kind="broken", detail=outcome.get("broken", "") + also))
            elif outside:
                findings.append(found(kind="harness", detail=f"the allocation around the form was refused at {sorted(outside)}"))
            elif browser.note:
                findings.append(found(kind="harness", detail=browser.note))
            elif outcome["id"] == "untouched" and form.form == "request" and not (browser.valid and python.valid):
                findings.append(found(kind="untouched", detail="the untouched request form must submit, and the package must accept what it sends"))
            elif not agrees(browser, python, outcome.get("blockedBy")):
                findings.append(found(kind="disagreement"))
            else:
                agreed += 1
        summary = {"facility": where[0], "form": where[1], "mode": where[2], "submissions": 1 + len(run["instances"])}
        summaries.append({**summary, "agreed": agreed, "untouched": untouched})
    return findings, summaries


def reconcile(findings: list[Finding], expected: list[Expected], facilities: set[str] | None) -> tuple[list[Finding], list[Finding], list[Expected]]:
    """Split ``findings`` into unexpected and expected (reviewable, and listed with the same two
    verdicts); the entries of the ``facilities`` checked that matched nothing are stale."""
    listed = {e.key: e for e in expected}
    unexpected, matched, used = [], [], set()
    for finding in findings:
        entry = listed.get(finding.key)
        if finding.reviewable and entry and (entry.browser, entry.python) == (finding.browser, finding.python):
            matched.append(finding)
            used.add(entry.key)
        else:
            unexpected.append(finding)
    stale = [e for e in expected if e.key not in used and (facilities is None or e.facility in facilities)]
    return unexpected, matched, stale


@dataclass
class Report:
    """A whole run: versions, times, per-form counts, and what passes or fails."""

    versions: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    browser_seconds: float = 0.0
    forms: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    expected: list[Finding] = field(default_factory=list)
    stale: list[Expected] = field(default_factory=list)
    screenshots: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # pages that checked forms at once

    @property
    def failures(self) -> list[str]:
        """One line per reason the check fails: unexpected findings, stale entries, and in CI a
        screenshot the run had to rewrite."""
        out = [str(f) for f in self.findings]
        out += [
            f"[stale entry] {e.facility} {e.form} ({e.mode}) {e.instance}: listed as browser {e.browser}; python {e.python} "
            "but no longer seen so: remove the entry (or update it if the verdicts changed)"
            for e in self.stale
        ]
        if in_ci():
            stale = [name for name, state in self.screenshots.items() if state != "unchanged"]
            out += [f"[screenshot] {name} is out of date: run the check and commit docs/_static/forms/" for name in stale]
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "versions": self.versions,
            "seconds": self.seconds,
            "browser_seconds": self.browser_seconds,
            "workers": self.workers,
            "forms": self.forms,
            "findings": [asdict(f) for f in self.findings],
            "expected": [asdict(f) for f in self.expected],
            "stale": [asdict(e) for e in self.stale],
            "screenshots": self.screenshots,
            "failures": self.failures,
        }
