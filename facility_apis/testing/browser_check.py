"""The browser form check: every registered facility's forms, rendered and submitted in SkyPortal's
form renderer, judged against the package's own validation.

    python -m facility_apis.testing.browser_check [--facility NAME ...] [--report FILE]

For each facility it takes what SkyPortal's UI receives (the SkyPortal class's
``frontend_render_info``), renders the request form and the allocation (altdata) form in headless
Chromium with the react-jsonschema-form versions pinned in ``browser/package.json`` (see
``browser/check.mjs``), once as the schema alone asks (``plain``) and once the way SkyPortal wraps
it (``skyportal``), and submits the untouched form and every instance of
:func:`~facility_apis.testing.form_instances.form_instances`. Each outcome is compared with the
facility's verdict on the data the form held (``validate_payload`` / ``validate_altdata``): valid
or not, and which fields. Findings:

- ``disagreement``: the form and the package judge the same data differently;
- ``untouched``: a request form does not submit untouched, or the package refuses what it sends;
- ``console``, ``network``, ``harness``: a console error, a request leaving the page, or an outcome
  the check cannot read. These always fail.

The first two fail the check unless ``browser/expected-disagreements.json`` lists them, with the
same verdicts and a reason; an entry that matches nothing is stale and fails too. Screenshots of
each form go to ``docs/_static/forms/``; one is rewritten only when its form's markup changed
(dates masked), and under ``CI=true`` such a change fails the check (commit the new pictures).
Run from a checkout: ``browser/`` sits beside the package. See docs/browser-check.md.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..core.errors import ValidationFailed
from ..core.registry import Registry, default_registry
from .form_instances import form_instances

ROOT = Path(__file__).resolve().parents[2]
BROWSER = ROOT / "browser"
EXPECTED = BROWSER / "expected-disagreements.json"
SCREENSHOTS = ROOT / "docs" / "_static" / "forms"
#: sha256 of each screenshot's form markup, so an unchanged form keeps its picture.
MARKUP_DIGESTS = SCREENSHOTS / "markup.json"
#: The pictures every facility must have: ``<facility>-<name>.png``.
SCREENSHOT_NAMES = ("request", "request-skyportal", "allocation")
DEFAULT_CHROMIUM = "/usr/bin/chromium"
FORMS = ("request", "altdata")
MODES = ("plain", "skyportal")
#: Kinds of finding the reviewed file may list; every other kind always fails.
REVIEWABLE = ("disagreement", "untouched")
SIDES = ("browser", "python", "both", "neither")
_DATES = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?")


# -- what the Python side says -------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """``valid`` or not, and the JSON paths of the fields at fault (``$.start_date``)."""

    valid: bool
    fields: tuple[str, ...] = ()
    note: str = ""

    def __str__(self) -> str:
        if self.note:
            return self.note
        return "valid" if self.valid else "invalid: " + ", ".join(self.fields)


def _verdict_of(call: Callable[[], Any]) -> Verdict:
    try:
        call()
    except ValidationFailed as exc:
        return Verdict(False, tuple(sorted({e.path for e in exc.errors})))
    except Exception as exc:  # a facility that crashes on form data is a finding, not a check crash
        return Verdict(False, (), note=f"raised {type(exc).__name__}: {exc}")
    return Verdict(True)


@dataclass
class FormUnderTest:
    """One form of one facility as SkyPortal's UI receives it, and the package's judge for it."""

    facility: str
    form: str  # "request" or "altdata"
    title: str
    request_type: str | None  # SkyPortal's "forced_photometry" or "triggered" for request forms
    schema: dict[str, Any]
    ui_schema: dict[str, Any]
    judge: Callable[[Any], Verdict]
    ignore: tuple[str, ...] = ()

    def job(self) -> dict[str, Any]:
        instances = [{"id": i.id, "data": i.data} for i in form_instances(self.schema, ignore=self.ignore)]
        return {
            "facility": self.facility,
            "form": self.form,
            "title": self.title,
            "requestType": self.request_type,
            "schema": self.schema,
            "uiSchema": self.ui_schema,
            "instances": instances,
        }


def collect_forms(registry: Registry | None = None, names: Iterable[str] | None = None) -> list[FormUnderTest]:
    """The request and altdata forms of every facility in ``registry`` (or only ``names``), as the
    SkyPortal adapter hands them to SkyPortal's UI."""
    from ..skyportal import api_classes
    from ..skyportal.snapshot import SKYPORTAL_PAYLOAD_KEYS

    registry = registry or default_registry()
    wanted = {registry.get(name).name for name in names} if names else None  # UnknownFacility for a typo
    skyportal = {cls.facility_class.name: cls for cls in api_classes(registry).values()}
    forms = []
    for core in registry.all():
        if wanted is not None and core.name not in wanted:
            continue
        cls = skyportal[core.name]
        info = cls.frontend_render_info(instrument=None, user=None)
        facility = cls.facility()

        def judge_request(payload: Any, facility=facility) -> Verdict:
            if isinstance(payload, Mapping):  # SkyPortal's own markers never reach the facility
                payload = {k: v for k, v in payload.items() if k not in SKYPORTAL_PAYLOAD_KEYS}
            return _verdict_of(lambda: facility.validate_payload(payload))

        def judge_altdata(altdata: Any, facility=facility) -> Verdict:
            return _verdict_of(lambda: facility.validate_altdata(altdata))

        forced = info.get("formSchemaForcedPhotometry")
        request = forced if forced is not None else info.get("formSchema")
        if request is not None:
            forms.append(
                FormUnderTest(
                    core.name, "request", core.title, "forced_photometry" if forced is not None else "triggered",
                    request, info.get("uiSchema") or {}, judge_request, tuple(SKYPORTAL_PAYLOAD_KEYS),
                )
            )
        if info.get("formSchemaAltdata") is not None:
            forms.append(FormUnderTest(core.name, "altdata", core.title, None, info["formSchemaAltdata"], {}, judge_altdata))
    return forms


# -- what the browser says -----------------------------------------------------------------------


def _instance_path(pointer: str) -> str:
    """Ajv's ``/a/0/b`` as ``$.a[0].b``."""
    out = "$"
    for part in pointer.split("/")[1:] if pointer else []:
        part = part.replace("~1", "/").replace("~0", "~")
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def _error_path(error: Mapping[str, Any]) -> str:
    path = _instance_path(error.get("instancePath", ""))
    params = error.get("params") or {}
    if error.get("keyword") in ("required", "dependencies") and "missingProperty" in params:
        return f"{path}.{params['missingProperty']}"
    if error.get("keyword") == "additionalProperties" and "additionalProperty" in params:
        return f"{path}.{params['additionalProperty']}"
    return path


def _pointer(schema: Any, pointer: str) -> Any:
    node = schema
    for part in pointer.lstrip("#").split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else (node or {}).get(part)
    return node


def _has_discriminator(branch: Any) -> bool:
    properties = branch.get("properties") if isinstance(branch, Mapping) else None
    return any(isinstance(s, Mapping) and ("enum" in s or "const" in s) for s in (properties or {}).values())


def ajv_fields(errors: list[Mapping[str, Any]], schema: Mapping[str, Any]) -> set[str]:
    """The fields at fault in Ajv's raw ``errors``, ``oneOf``/``anyOf`` read as the package reads
    them (``core.schemas``): the errors of the one branch whose discriminating ``enum``/``const``
    matched, else the combinator's own error; errors of branches that do not apply are dropped."""
    combinators = [e for e in errors if e.get("keyword") in ("oneOf", "anyOf")]
    dropped: set[int] = set()
    for combinator in sorted(combinators, key=lambda e: len(e["schemaPath"])):
        if id(combinator) in dropped:
            continue
        prefix = combinator["schemaPath"] + "/"
        by_branch: dict[int, list[Mapping[str, Any]]] = {}
        for error in errors:
            if error["schemaPath"].startswith(prefix) and id(error) not in dropped:
                by_branch.setdefault(int(error["schemaPath"][len(prefix):].split("/")[0]), []).append(error)
        branches = _pointer(schema, combinator["schemaPath"]) or []
        chosen = [
            index
            for index, branch_errors in by_branch.items()
            if not any(e.get("keyword") in ("enum", "const") for e in branch_errors) and _has_discriminator(branches[index])
        ]
        for index, branch_errors in by_branch.items():
            if len(chosen) != 1 or index != chosen[0]:
                dropped.update(id(e) for e in branch_errors)
        if len(chosen) == 1:
            dropped.add(id(combinator))
    return {_error_path(e) for e in errors if id(e) not in dropped}


def browser_verdict(outcome: Mapping[str, Any]) -> tuple[Verdict, Any, set[str]]:
    """What the form did, as a verdict on the facility's data; the data the facility gets; and the
    fields at fault outside it (the allocation around an altdata form: the check's own filling)."""
    paths = outcome.get("paths") or {}
    key = outcome.get("payloadKey")
    payload = outcome.get("formData")
    if key:
        payload = (payload or {}).get(key, {}) if isinstance(payload, Mapping) else payload
    if outcome.get("submitted"):
        return Verdict(True), payload, set()
    if outcome.get("blockedBy") == "html5":
        fields = {paths.get(i["id"], f"#{i['id']}") for i in outcome.get("html5") or []}
    elif outcome.get("blockedBy") == "rjsf":
        fields = ajv_fields(outcome.get("raw") or [], outcome.get("schema") or {})
        # Errors added by SkyPortal's own checks (customValidate) carry no schema path.
        fields |= {"$" + e["property"] for e in outcome.get("errors") or [] if not e.get("schemaPath") and e.get("property")}
    else:
        return Verdict(False, (), note="the form neither submitted nor reported an error"), payload, set()
    if key:
        prefix = f"$.{key}"
        outside = {f for f in fields if not (f == prefix or f.startswith(prefix + ".") or f.startswith(prefix + "["))}
        fields = {"$" + f[len(prefix):] if f != prefix else "$" for f in fields - outside}
        return Verdict(False, tuple(sorted(fields))), payload, outside
    return Verdict(False, tuple(sorted(fields))), payload, set()


# -- findings and the reviewed list --------------------------------------------------------------


@dataclass
class Finding:
    """Something the check saw; ``data`` is what both sides judged (the facility's part of the form)."""

    facility: str
    form: str
    mode: str
    instance: str
    browser: str
    python: str
    kind: str
    detail: str = ""
    data: Any = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.facility, self.form, self.mode, self.instance)

    def __str__(self) -> str:
        text = f"[{self.kind}] {self.facility} {self.form} ({self.mode}) {self.instance}: browser {self.browser}; python {self.python}"
        return text + (f" — {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Expected:
    """One reviewed entry of ``browser/expected-disagreements.json``."""

    facility: str
    form: str
    mode: str
    instance: str
    browser: str
    python: str
    right: str
    reason: str
    status: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.facility, self.form, self.mode, self.instance)


def load_expected(path: Path = EXPECTED) -> list[Expected]:
    """The reviewed entries; ``ValueError`` for a malformed file (a reason and a side are required)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    entries = []
    seen = set()
    for number, raw in enumerate(document.get("entries", []), 1):
        missing = [k for k in ("facility", "form", "mode", "instance", "browser", "python", "right", "reason") if not raw.get(k)]
        if missing:
            raise ValueError(f"{path.name} entry {number} lacks {', '.join(missing)}")
        entry = Expected(**{k: raw[k] for k in Expected.__dataclass_fields__ if k in raw})
        if entry.form not in FORMS or entry.mode not in MODES or entry.right not in SIDES:
            raise ValueError(f"{path.name} entry {number}: form must be one of {FORMS}, mode one of {MODES}, right one of {SIDES}")
        if entry.key in seen:
            raise ValueError(f"{path.name} entry {number} repeats {entry.key}")
        seen.add(entry.key)
        entries.append(entry)
    return entries


@dataclass
class Report:
    versions: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    browser_seconds: float = 0.0
    forms: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    expected: list[Finding] = field(default_factory=list)
    stale: list[Expected] = field(default_factory=list)
    screenshots: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        out = [str(f) for f in self.findings]
        out += [f"[stale entry] {e.facility} {e.form} ({e.mode}) {e.instance}: listed in {EXPECTED.name} but no longer seen "
                f"as browser {e.browser}; python {e.python} — remove it (or update it if the verdicts changed)" for e in self.stale]
        if in_ci():
            out += [f"[screenshot] {name} is out of date: run the check and commit docs/_static/forms/"
                    for name, state in self.screenshots.items() if state != "unchanged"]
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "versions": self.versions,
            "seconds": self.seconds,
            "browser_seconds": self.browser_seconds,
            "forms": self.forms,
            "findings": [asdict(f) for f in self.findings],
            "expected": [asdict(f) for f in self.expected],
            "stale": [asdict(e) for e in self.stale],
            "screenshots": self.screenshots,
            "failures": self.failures,
        }


def agrees(browser: Verdict, python: Verdict, blocked_by: str | None) -> bool:
    """Same verdict, and the same fields at fault. When the browser's HTML5 validation stopped the
    submission it has checked only its own first pass (required, number inputs, date inputs), and
    the form library never ran: then the browser's fields need only be among the package's."""
    if browser.valid != python.valid or browser.note or python.note:
        return False
    if blocked_by == "html5":
        return bool(browser.fields) and set(browser.fields) <= set(python.fields)
    return browser.fields == python.fields


def judge(forms: list[FormUnderTest], results: Mapping[str, Any]) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Every finding in the browser's ``results``, and per form and mode the counts and the
    untouched form's outcome."""
    by_form = {(f.facility, f.form): f for f in forms}
    findings = [Finding("-", "-", "-", "-", "-", "-", "network", f"the page tried to load {url}") for url in results.get("left", [])]
    summaries = []
    for run in results["runs"]:
        form = by_form[(run["facility"], run["form"])]
        where = (run["facility"], run["form"], run["mode"])
        seen: dict[str, list[str]] = {}
        for entry in run.get("console", []):
            seen.setdefault(entry["text"], []).append(entry["step"])
        findings += [Finding(*where, steps[0], "-", "-", "console", f"{text} (logged {len(steps)}x, first at {steps[0]})") for text, steps in seen.items()]
        agreed = 0
        untouched = None
        for outcome in [run["untouched"], *run["instances"]]:
            browser, payload, outside = browser_verdict(outcome)
            python = form.judge(payload)
            found = functools.partial(Finding, *where, outcome["id"], str(browser), str(python), data=payload)
            if outcome["id"] == "untouched":
                untouched = {"browser": str(browser), "python": str(python), "submitted": payload}
            if outside:
                findings.append(found(kind="harness", detail=f"the allocation around the form was refused at {sorted(outside)}"))
            elif browser.note:
                findings.append(found(kind="harness", detail=browser.note))
            elif outcome["id"] == "untouched" and form.form == "request" and not (browser.valid and python.valid):
                findings.append(found(kind="untouched", detail="the untouched request form must submit, and the package must accept what it sends"))
            elif not agrees(browser, python, outcome.get("blockedBy")):
                findings.append(found(kind="disagreement"))
            else:
                agreed += 1
        summaries.append({"facility": where[0], "form": where[1], "mode": where[2], "submissions": 1 + len(run["instances"]), "agreed": agreed, "untouched": untouched})
    return findings, summaries


def reconcile(findings: list[Finding], expected: list[Expected], facilities: set[str] | None) -> tuple[list[Finding], list[Finding], list[Expected]]:
    """Split ``findings`` into unexpected and expected (listed with the same verdicts); the listed
    entries (of the facilities checked) that matched nothing are stale."""
    listed = {e.key: e for e in expected}
    unexpected, matched, used = [], [], set()
    for finding in findings:
        entry = listed.get(finding.key)
        if finding.kind in REVIEWABLE and entry and (entry.browser, entry.python) == (finding.browser, finding.python):
            matched.append(finding)
            used.add(entry.key)
        else:
            unexpected.append(finding)
    stale = [e for e in expected if e.key not in used and (facilities is None or e.facility in facilities)]
    return unexpected, matched, stale


# -- screenshots ---------------------------------------------------------------------------------


def markup_digest(markup: str, versions: Mapping[str, Any]) -> str:
    """The form's markup with dates masked (defaults move with the clock), plus the renderer's
    versions: what decides whether a committed screenshot still shows the form."""
    text = _DATES.sub("DATE", markup) + json.dumps({k: versions.get(k) for k in sorted(versions) if k != "chromium"})
    return hashlib.sha256(text.encode()).hexdigest()


def keep_screenshots(results: Mapping[str, Any], shot_dir: Path, target: Path = SCREENSHOTS) -> dict[str, str]:
    """Copy each new screenshot into ``target`` when its form's markup changed (or it is missing);
    returns ``{file name: "unchanged" | "updated" | "added"}``."""
    digests_path = target / MARKUP_DIGESTS.name
    digests = json.loads(digests_path.read_text()) if digests_path.exists() else {}
    states = {}
    for run in results["runs"]:
        untouched = run["untouched"]
        if not untouched.get("screenshot") or untouched.get("markup") is None:
            continue
        name = f"{run['facility']}-{untouched['screenshot']}.png"
        digest = markup_digest(untouched["markup"], results.get("versions", {}))
        if (target / name).exists() and digests.get(name) == digest:
            states[name] = "unchanged"
            continue
        states[name] = "updated" if (target / name).exists() else "added"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot_dir / name, target / name)
        digests[name] = digest
    if any(state != "unchanged" for state in states.values()):
        digests_path.write_text(json.dumps(dict(sorted(digests.items())), indent=2) + "\n")
    return states


# -- running it ----------------------------------------------------------------------------------


def in_ci() -> bool:
    """Whether this is a CI run (``CI`` set, as ``.ci/run`` runs): there the check is required."""
    return bool(os.environ.get("CI"))


def chromium_path() -> str:
    return os.environ.get("CHROMIUM", DEFAULT_CHROMIUM)


def missing_tools() -> list[str]:
    """What this machine lacks to run the check (empty when it can run)."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node (Debian package nodejs)")
    if not os.access(chromium_path(), os.X_OK):
        missing.append(f"Chromium at {chromium_path()} (Debian package chromium; or set CHROMIUM)")
    if not _node_modules_current() and shutil.which("npm") is None:
        missing.append("npm, to install browser/package-lock.json")
    return missing


def _node_modules_current(browser: Path = BROWSER) -> bool:
    """Whether ``browser/node_modules`` holds exactly what the lock file asks for (npm records what
    it installed in ``node_modules/.package-lock.json``)."""
    installed_path = browser / "node_modules" / ".package-lock.json"
    if not installed_path.exists():
        return False
    wanted = json.loads((browser / "package-lock.json").read_text())["packages"]
    installed = json.loads(installed_path.read_text())["packages"]
    return all(
        installed.get(name, {}).get("version") == spec.get("version")
        for name, spec in wanted.items()
        if name and not spec.get("optional")
    )


def install(browser: Path = BROWSER) -> None:
    """``npm ci`` the lock file when ``node_modules`` does not match it."""
    if _node_modules_current(browser):
        return
    print("browser check: installing browser/package-lock.json (npm ci)", flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=browser, check=True)


def run(
    registry: Registry | None = None,
    names: Iterable[str] | None = None,
    *,
    expected_path: Path = EXPECTED,
    screenshots: Path | None = SCREENSHOTS,
) -> Report:
    """Run the whole check; ``screenshots=None`` takes no pictures."""
    started = time.perf_counter()
    install()
    forms = collect_forms(registry, names)
    expected = load_expected(expected_path)
    with tempfile.TemporaryDirectory(prefix="form-check-") as tmp:
        tmp_path = Path(tmp)
        job = {"screenshotDir": str(tmp_path / "shots") if screenshots else None, "forms": [f.job() for f in forms]}
        (tmp_path / "job.json").write_text(json.dumps(job))
        env = dict(os.environ, CHROMIUM=chromium_path())
        subprocess.run(["node", str(BROWSER / "check.mjs"), str(tmp_path / "job.json"), str(tmp_path / "results.json")], check=True, env=env)
        results = json.loads((tmp_path / "results.json").read_text())
        findings, summaries = judge(forms, results)
        shots = keep_screenshots(results, tmp_path / "shots", screenshots) if screenshots else {}
    checked = {f.facility for f in forms}
    unexpected, matched, stale = reconcile(findings, expected, checked)
    return Report(results["versions"], time.perf_counter() - started, results["seconds"], summaries, unexpected, matched, stale, shots)


def _print(report: Report) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in report.versions.items())
    print(f"browser check: {versions}")
    for form in report.forms:
        untouched = form["untouched"] or {}
        print(
            f"  {form['facility']:<12} {form['form']:<8} {form['mode']:<10} {form['submissions']:>4} submissions, "
            f"{form['agreed']:>4} agreed; untouched: browser {untouched.get('browser')}, python {untouched.get('python')}"
        )
    for finding in report.expected:
        print(f"  expected: {finding}")
    for name, state in report.screenshots.items():
        if state != "unchanged":
            print(f"  screenshot {state}: docs/_static/forms/{name}")
    submissions = sum(f["submissions"] for f in report.forms)
    print(
        f"browser check: {len({f['facility'] for f in report.forms})} facilities, {len(report.forms)} forms x modes, "
        f"{submissions} submissions, {len(report.expected)} expected disagreements, {len(report.failures)} failures "
        f"in {report.seconds:.1f} s (browser {report.browser_seconds:.1f} s)"
    )
    for failure in report.failures:
        print(f"FAIL {failure}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facility_apis.testing.browser_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--facility", action="append", help="check only this facility (repeatable)")
    parser.add_argument("--report", type=Path, help="also write the full report as JSON here")
    parser.add_argument("--no-screenshots", action="store_true", help="take no pictures")
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        print("browser check: cannot run, missing " + "; ".join(missing), file=sys.stderr)
        return 2
    report = run(names=args.facility, screenshots=None if args.no_screenshots else SCREENSHOTS)
    if args.report:
        args.report.write_text(json.dumps(report.as_json(), indent=1))
    _print(report)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
