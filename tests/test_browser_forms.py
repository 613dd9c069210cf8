"""The browser form check (docs/browser-check.md): every registered facility's forms in headless
Chromium with the react-jsonschema-form versions SkyPortal pins, judged against the package.

Needs node and Debian's Chromium; browser/node_modules is installed from the lock file by the check
when it is missing. Without node or Chromium the tests skip, except under CI, where they fail.
"""

import json
import subprocess
import sys

import pytest

from facility_apis.core.interface import Facility, Kind
from facility_apis.core.registry import Registry, default_registry
from facility_apis.core.schemas import DRAFT7
from facility_apis.testing import browser_check

pytestmark = pytest.mark.browser

FORCED_PHOTOMETRY = [cls.name for cls in default_registry().all() if cls.kind is Kind.FORCED_PHOTOMETRY]
REVIEWED = {entry.key: entry for entry in browser_check.load_expected()}


def untouched_params():
    """Each forced-photometry facility; those whose untouched SkyPortal form is a reviewed known
    fault are strict xfails, so the fix turns them into failures until the entry goes."""
    params = []
    for name in FORCED_PHOTOMETRY:
        entry = REVIEWED.get((name, "request", "skyportal", "untouched"))
        marks = [pytest.mark.xfail(strict=True, reason=f"{entry.status}: {entry.reason}")] if entry else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(scope="module")
def tools():
    missing = browser_check.missing_tools()
    if missing:
        message = "the browser form check needs " + "; ".join(missing)
        if browser_check.in_ci():
            pytest.fail(message + " (required in CI: .ci/run installs them)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def checked(tools, tmp_path_factory):
    """The documented command, run once: its exit code, its output and its JSON report."""
    report = tmp_path_factory.mktemp("browser") / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "facility_apis.testing.browser_check", "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.exists(), result.stdout + result.stderr
    return result, json.loads(report.read_text())


def test_every_form_agrees_with_the_package_or_is_a_reviewed_disagreement(checked):
    result, report = checked
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["failures"] == []
    checked_facilities = {form["facility"] for form in report["forms"]}
    assert checked_facilities == set(default_registry().names())
    registry = default_registry()
    for form in report["forms"]:
        # The untouched form and the generated instances: a handful for a form without fields
        # (Fink's allocation holds nothing: its example, empty, minimal and an unknown key).
        fields = form["form"] != "altdata" or registry.get(form["facility"]).altdata_schema().get("properties")
        assert form["submissions"] > (10 if fields else 4), form
    assert report["versions"]["@rjsf/core"] == json.loads((browser_check.BROWSER / "package.json").read_text())["dependencies"]["@rjsf/core"]


@pytest.mark.parametrize("facility", untouched_params())
def test_the_untouched_forced_photometry_form_as_skyportal_wraps_it_submits(checked, facility):
    _, report = checked
    (form,) = [f for f in report["forms"] if (f["facility"], f["form"], f["mode"]) == (facility, "request", "skyportal")]
    assert form["untouched"]["browser"] == "valid", form["untouched"]
    assert form["untouched"]["python"] == "valid", form["untouched"]


# -- the check can fail ----------------------------------------------------------------------------

PROBE_ALTDATA = {
    "$schema": DRAFT7,
    "type": "object",
    "properties": {"contact": {"type": "string", "format": "email", "title": "Contact e-mail"}},
    "required": ["contact"],
    "additionalProperties": False,
    "examples": [{"contact": "observer@example.org"}],
}
PROBE_REQUEST = {
    "$schema": DRAFT7,
    "type": "object",
    # A default outside its enum: RJSF says so on the console.
    "properties": {"mode": {"type": "string", "title": "Mode", "enum": ["a", "b"], "default": "c"}},
    "examples": [{"mode": "a"}],
}


def probe_facility(tmp_path, monkeypatch, name, documents):
    """A facility ``name`` whose schema documents (``{"request": {...}, ...}``) live in a package
    made in ``tmp_path``."""
    package = tmp_path / f"{name}_forms"
    (package / "schemas" / name).mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for document, content in documents.items():
        (package / "schemas" / name / f"{document}.json").write_text(json.dumps(content))
    monkeypatch.syspath_prepend(str(tmp_path))
    return type(name.title(), (Facility,), {
        "name": name, "title": name.title(), "kind": Kind.OBSERVATION, "skyportal_class": f"{name.upper()}API", "schema_package": package.name,
    })  # fmt: skip


@pytest.fixture
def probe_registry(tmp_path, monkeypatch):
    """A registry with one facility whose forms the browser and Python judge differently."""
    registry = Registry(builtins={}, group=None)
    registry.register("probe", probe_facility(tmp_path, monkeypatch, "probe", {"altdata": PROBE_ALTDATA, "request": PROBE_REQUEST}))
    return registry


def test_the_check_reports_disagreements_console_errors_and_stale_entries(tools, probe_registry, tmp_path):
    expected = tmp_path / "expected.json"
    stale = {
        "facility": "probe",
        "form": "altdata",
        "mode": "plain",
        "instance": "contact/format:valid",
        "browser": "valid",
        "python": "invalid: $.contact",
        "right": "python",
        "reason": "listed to see it reported as stale",
    }
    expected.write_text(json.dumps({"entries": [stale]}))
    report = browser_check.run(probe_registry, expected_path=expected, screenshots=None)
    found = {(f.kind, f.form, f.mode, f.instance): f for f in report.findings}
    # Ajv's e-mail format refuses a space in the local part; Python's only looks for an "@".
    space = found[("disagreement", "altdata", "plain", "contact/format:space")]
    assert (space.browser, space.python) == ("invalid: $.contact", "valid")
    assert ("disagreement", "altdata", "skyportal", "contact/format:space") in found
    assert any(kind == "console" and "default" in f.detail for (kind, *_), f in found.items())
    assert [e.instance for e in report.stale] == ["contact/format:valid"]
    assert report.failures


# A request form no observer can use: MUI's multi-select crashes on the null default of its array
# (the plain form has no submit button instead); the allocation form beside it is sound.
BROKEN_REQUEST = {
    "$schema": DRAFT7,
    "type": "object",
    "properties": {"filters": {"type": "array", "title": "Filters", "items": {"type": "string", "enum": ["g", "r"]}, "uniqueItems": True, "default": None}},
    "examples": [{"filters": ["g"]}],
}
NO_SUBMIT_BUTTON = {"ui:submitButtonOptions": {"norender": True}}


def test_a_form_that_cannot_be_used_is_a_failure_of_that_form_and_the_others_still_run(tools, tmp_path, monkeypatch):
    registry = Registry(builtins={}, group=None)
    documents = {"altdata": PROBE_ALTDATA, "request": BROKEN_REQUEST, "ui": NO_SUBMIT_BUTTON}
    registry.register("crashy", probe_facility(tmp_path, monkeypatch, "crashy", documents))
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"entries": []}))
    report = browser_check.run(registry, expected_path=expected, screenshots=None)
    broken = {(f.form, f.mode, f.instance): f for f in report.findings if f.kind == "broken"}
    assert set(broken) == {("request", "plain", "untouched"), ("request", "skyportal", "untouched")}
    assert "without a submit button" in broken[("request", "plain", "untouched")].detail
    assert "the form crashed: TypeError" in broken[("request", "skyportal", "untouched")].detail
    assert all(f.browser == "broken" and not f.reviewable for f in broken.values())
    # The allocation form was rendered and submitted as usual, every submission judged.
    allocation = [f for f in report.forms if f["form"] == "altdata"]
    assert len(allocation) == 2 and all(f["submissions"] > 10 for f in allocation)
    assert report.failures
