"""The browser form check's judging, reviewed list, screenshots and pinned packages: everything
that runs without a browser. The check itself runs in tests/test_browser_forms.py."""

import json
import re
import struct

import pytest

from facility_apis.core.registry import default_registry
from facility_apis.testing import browser_check as bc
from facility_apis.testing.browser_check import Expected, Finding, Verdict

ONEOF_SCHEMA = {
    "type": "object",
    "properties": {"kind": {"type": "string", "enum": ["a", "b"]}},
    "dependencies": {
        "kind": {
            "oneOf": [
                {"properties": {"kind": {"enum": ["a"]}, "x": {"type": "string"}}, "required": ["x"]},
                {"properties": {"kind": {"enum": ["b"]}, "y": {"type": "string"}}, "required": ["y"]},
            ]
        }
    },
}


def ajv(keyword, instance_path, schema_path, **params):
    return {"keyword": keyword, "instancePath": instance_path, "schemaPath": schema_path, "params": params}


# -- reading the browser's errors ----------------------------------------------------------------


def test_ajv_errors_name_the_field_as_the_package_does():
    errors = [
        ajv("required", "", "#/required", missingProperty="start_date"),
        ajv("dependencies", "", "#/dependencies", property="pm_ra", missingProperty="pm_dec"),
        ajv("additionalProperties", "", "#/additionalProperties", additionalProperty="extra"),
        ajv("type", "/snr", "#/properties/snr/type", type="number"),
        ajv("format", "/items/0/day", "#/properties/items/items/properties/day/format", format="date"),
    ]
    assert bc.ajv_fields(errors, {}) == {"$.start_date", "$.pm_dec", "$.extra", "$.snr", "$.items[0].day"}


def test_ajv_oneof_errors_keep_only_the_branch_the_instance_chose():
    # kind = "a" without x: Ajv reports both branches and the oneOf itself.
    errors = [
        ajv("required", "", "#/dependencies/kind/oneOf/0/required", missingProperty="x"),
        ajv("enum", "/kind", "#/dependencies/kind/oneOf/1/properties/kind/enum", allowedValues=["b"]),
        ajv("required", "", "#/dependencies/kind/oneOf/1/required", missingProperty="y"),
        ajv("oneOf", "", "#/dependencies/kind/oneOf", passingSchemas=None),
    ]
    assert bc.ajv_fields(errors, ONEOF_SCHEMA) == {"$.x"}
    # No branch chosen because every branch refused kind's value: kind, as the package reports it.
    unchosen = [
        ajv("enum", "/kind", "#/dependencies/kind/oneOf/0/properties/kind/enum", allowedValues=["a"]),
        ajv("enum", "/kind", "#/dependencies/kind/oneOf/1/properties/kind/enum", allowedValues=["b"]),
        ajv("oneOf", "", "#/dependencies/kind/oneOf", passingSchemas=None),
    ]
    assert bc.ajv_fields(unchosen, ONEOF_SCHEMA) == {"$.kind"}


def test_the_package_reads_the_same_oneof_instance_the_same_way():
    from facility_apis.core.schemas import field_errors

    assert {e.path for e in field_errors(ONEOF_SCHEMA, {"kind": "c"})} == {"$.kind"}

    assert {e.path for e in field_errors(ONEOF_SCHEMA, {"kind": "a"})} == {"$.x"}


def outcome(**fields):
    base = {
        "id": "i",
        "paths": {"root_a": "$.a", "root__altdata_token": "$._altdata.token"},
        "payloadKey": None,
        "formData": {"a": 1},
        "html5": [],
        "errors": [],
        "raw": [],
        "schema": {},
    }
    return {**base, **fields}


def test_browser_verdicts_from_each_way_a_submission_ends():
    assert bc.browser_verdict(outcome(submitted=True, blockedBy=None))[0] == Verdict(True)
    html5 = outcome(submitted=False, blockedBy="html5", html5=[{"id": "root_a", "message": "Please fill out this field."}])
    assert bc.browser_verdict(html5)[0] == Verdict(False, ("$.a",))
    custom = outcome(submitted=False, blockedBy="rjsf", errors=[{"property": ".start_date", "message": "Start Date must come before End Date"}])
    assert bc.browser_verdict(custom)[0] == Verdict(False, ("$.start_date",))
    stuck = bc.browser_verdict(outcome(submitted=False, blockedBy="nothing"))[0]
    assert not stuck.valid and stuck.note


def test_a_form_that_could_not_be_used_is_broken_not_a_verdict():
    broken = outcome(submitted=False, blockedBy="broken", broken="the form crashed: TypeError: x is null")
    verdict = bc.browser_verdict(broken)[0]
    assert (verdict.valid, verdict.note) == (False, "broken")


def test_an_html5_refusal_on_a_widgets_own_input_is_read_by_its_name():
    # MUI's select validates a hidden input with a generated id; its name is the field's RJSF id.
    hidden = outcome(submitted=False, blockedBy="html5", html5=[{"id": "_r_2_", "name": "root_a", "message": "Please fill out this field."}])
    assert bc.browser_verdict(hidden)[0] == Verdict(False, ("$.a",))
    # An item of an array field: RJSF numbers its inputs after the field's id.
    item = outcome(submitted=False, blockedBy="html5", html5=[{"id": "root_a_0", "name": "root_a_0", "message": "Please fill out this field."}])
    assert bc.browser_verdict(item)[0] == Verdict(False, ("$.a[0]",))
    unknown = outcome(submitted=False, blockedBy="html5", html5=[{"id": "root_b_0", "name": "", "message": "Please fill out this field."}])
    assert bc.browser_verdict(unknown)[0] == Verdict(False, ("#root_b_0",))


def test_the_allocation_form_is_read_as_the_facilitys_altdata():
    wrapped = outcome(
        submitted=False,
        blockedBy="rjsf",
        payloadKey="_altdata",
        formData={"pi": "", "_altdata": {"token": 5}},
        raw=[ajv("type", "/_altdata/token", "#/properties/_altdata/properties/token/type"), ajv("minLength", "/pi", "#/properties/pi/minLength")],
    )
    verdict, payload, outside = bc.browser_verdict(wrapped)
    assert verdict == Verdict(False, ("$.token",))
    assert payload == {"token": 5}
    assert outside == {"$.pi"}  # the check's own filling was refused: a harness finding


def test_agreement_needs_the_same_fields_except_after_html5_validation():
    both = Verdict(False, ("$.a", "$.b"))
    assert bc.agrees(both, both, "rjsf")
    assert not bc.agrees(Verdict(False, ("$.a",)), both, "rjsf")
    assert bc.agrees(Verdict(False, ("$.a",)), both, "html5")  # HTML5 checks only a first pass
    assert not bc.agrees(Verdict(False, ("$.c",)), both, "html5")
    # An input standing for a whole array covers the package's fields inside it, not beside it.
    assert bc.agrees(Verdict(False, ("$.filters",)), Verdict(False, ("$.filters[0]",)), "html5")
    assert not bc.agrees(Verdict(False, ("$.filters",)), Verdict(False, ("$.filters_x",)), "html5")
    assert not bc.agrees(Verdict(False, ("$.filters",)), Verdict(False, ("$.filters[0]",)), "rjsf")
    assert not bc.agrees(Verdict(True), both, None)
    assert not bc.agrees(Verdict(False), Verdict(False, (), note="raised KeyError: 'x'"), "rjsf")


def test_the_python_side_judges_what_skyportal_hands_the_facility():
    request, altdata = bc.collect_forms(names=["atlas"])
    assert (request.form, request.request_type, altdata.form) == ("request", "forced_photometry", "altdata")
    ok = {"start_date": "2026-10-01", "end_date": "2026-10-31"}
    assert request.judge({**ok, "request_type": "forced_photometry"}) == Verdict(True)  # SkyPortal's marker is dropped
    assert request.judge({**ok, "start_date": "2026-10-01 00:00:00"}) == Verdict(True)  # a time is read as its date
    assert request.judge({**ok, "start_date": "2026-02-30"}) == Verdict(False, ("$.start_date",))
    assert altdata.judge({"api_token": "abc-token", "base_url": ""}) == Verdict(True)
    assert altdata.judge({}) == Verdict(False, ("$.api_token",))
    assert "request_type" in request.schema["properties"] and "request_type" in request.ignore
    with pytest.raises(LookupError, match="atlass"):
        bc.collect_forms(names=["atlass"])


# -- the reviewed list ---------------------------------------------------------------------------


def finding(instance="x/null", browser="valid", python="invalid: $.x", kind="disagreement"):
    return Finding("atlas", "request", "plain", instance, browser, python, kind=kind)


def entry(instance="x/null", browser="valid", python="invalid: $.x"):
    return Expected("atlas", "request", "plain", instance, browser, python, right="python", reason="because")


def test_listed_findings_pass_and_the_rest_fail():
    unexpected, matched, stale = bc.reconcile([finding(), finding("y/null")], [entry()], {"atlas"})
    assert [f.instance for f in matched] == ["x/null"]
    assert [f.instance for f in unexpected] == ["y/null"]
    assert stale == []


def test_an_entry_whose_verdicts_changed_is_both_unexpected_and_stale():
    unexpected, matched, stale = bc.reconcile([finding(python="invalid: $.y")], [entry()], {"atlas"})
    assert matched == [] and len(unexpected) == 1 and stale == [entry()]


def test_an_entry_that_matches_nothing_is_stale_unless_its_facility_was_not_checked():
    assert bc.reconcile([], [entry()], {"atlas"})[2] == [entry()]
    assert bc.reconcile([], [entry()], {"other"})[2] == []


def test_console_errors_cannot_be_excused():
    console = finding(instance="untouched", browser="-", python="-", kind="console")
    unexpected, matched, _ = bc.reconcile([console], [entry("untouched", "-", "-")], {"atlas"})
    assert unexpected == [console] and matched == []


def test_a_broken_form_may_be_excused_on_generated_data_but_never_untouched():
    crashed = finding(instance="x/null", browser="broken", kind="broken")
    unexpected, matched, _ = bc.reconcile([crashed], [entry("x/null", "broken")], {"atlas"})
    assert matched == [crashed] and unexpected == []
    untouched = finding(instance="untouched", browser="broken", kind="broken")
    unexpected, matched, _ = bc.reconcile([untouched], [entry("untouched", "broken")], {"atlas"})
    assert unexpected == [untouched] and matched == []


def test_a_stale_entry_fails_the_report():
    report = bc.Report(stale=[entry()])
    assert any("stale entry" in failure for failure in report.failures)


def test_the_reviewed_file_is_well_formed_and_every_entry_says_who_is_right_and_why():
    entries = bc.load_expected()
    for item in entries:
        assert item.right in bc.SIDES and len(item.reason) > 20
        assert item.status == "harmless" or item.status.startswith("known fault, to be fixed by")
        assert re.fullmatch(r"valid|invalid: \$.*|broken|-", item.browser) and re.fullmatch(r"valid|invalid: \$.*|-", item.python)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"reason": ""}, "lacks reason"),
        ({"right": "maybe"}, "right one of"),
        ({"mode": "firefox"}, "mode one of"),
    ],
)
def test_a_malformed_reviewed_entry_is_refused(tmp_path, change, message):
    raw = {
        "facility": "atlas",
        "form": "request",
        "mode": "plain",
        "instance": "i",
        "browser": "valid",
        "python": "valid",
        "right": "both",
        "reason": "a reason",
    }
    path = tmp_path / "expected.json"
    path.write_text(json.dumps({"entries": [{**raw, **change}]}))
    with pytest.raises(ValueError, match=message):
        bc.load_expected(path)
    path.write_text(json.dumps({"entries": [raw, raw]}))
    with pytest.raises(ValueError, match="repeats"):
        bc.load_expected(path)


# -- screenshots ---------------------------------------------------------------------------------


def test_a_screenshot_is_rewritten_only_when_its_form_changed(tmp_path):
    shots, target = tmp_path / "shots", tmp_path / "docs"
    shots.mkdir()
    (shots / "atlas-request.png").write_bytes(b"first")

    def results(markup):
        return {"versions": {"@rjsf/core": "6.7.1"}, "runs": [{"facility": "atlas", "untouched": {"screenshot": "request", "markup": markup}}]}

    assert bc.keep_screenshots(results('<input id="_r_2_" value="2026-10-31 10:00:00">'), shots, target) == {"atlas-request.png": "added"}
    (shots / "atlas-request.png").write_bytes(b"second")
    # Another day: only the dates moved.
    assert bc.keep_screenshots(results('<input id="_r_2_" value="2026-11-01 09:00:00">'), shots, target) == {"atlas-request.png": "unchanged"}
    assert (target / "atlas-request.png").read_bytes() == b"first"
    # Another page: React numbered its generated ids on from the forms it showed before.
    assert bc.keep_screenshots(results('<input id="_r_3f_" value="2026-10-31 10:00:00">'), shots, target) == {"atlas-request.png": "unchanged"}
    assert bc.keep_screenshots(results('<input id="_r_7_" value="2026-10-31 10:00:00">'), shots, target) == {"atlas-request.png": "unchanged"}
    # MUI's idle ripple in a button, mounted or not by the time of the picture.
    idle = '<span class="MuiTouchRipple-root css-4mb1j7"></span>'
    ripple = f'<input id="_r_2_" value="2026-10-31 10:00:00"><button>Submit{idle}</button>'
    assert bc.keep_screenshots(results(ripple), shots, target) == {"atlas-request.png": "updated"}
    assert bc.keep_screenshots(results(ripple.replace(idle, "")), shots, target) == {"atlas-request.png": "unchanged"}
    assert bc.keep_screenshots(results('<input value="2026-11-01"><label>New</label>'), shots, target) == {"atlas-request.png": "updated"}
    assert (target / "atlas-request.png").read_bytes() == b"second"


def test_a_changed_screenshot_fails_only_in_ci(monkeypatch):
    report = bc.Report(screenshots={"atlas-request.png": "updated"})
    monkeypatch.delenv("CI", raising=False)
    assert report.failures == []
    monkeypatch.setenv("CI", "true")
    assert "out of date" in report.failures[0]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name", default_registry().names())
def test_every_facility_has_its_form_screenshots_and_its_page_shows_them(name):
    digests = json.loads(bc.MARKUP_DIGESTS.read_text())
    page = (bc.ROOT / "docs" / "facilities" / f"{name}.md").read_text()
    shots = bc.expected_screenshots(name)
    assert "allocation" in shots
    for shot in shots:
        path = bc.SCREENSHOTS / f"{name}-{shot}.png"
        width, height = png_size(path)
        assert width > 100 and height > 100
        assert path.name in digests
        assert f"_static/forms/{path.name}" in page, f"docs/facilities/{name}.md does not show {path.name}"


# -- the pinned npm packages ---------------------------------------------------------------------


def test_the_renderer_is_pinned_exactly_and_locked_from_the_npm_registry():
    package = json.loads((bc.BROWSER / "package.json").read_text())
    lock = json.loads((bc.BROWSER / "package-lock.json").read_text())
    pins = {**package["dependencies"], **package["devDependencies"]}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in pins.values()), pins
    # One version for the whole react-jsonschema-form family: the one SkyPortal's frontend pins.
    assert len({v for k, v in pins.items() if k.startswith("@rjsf/")}) == 1
    root = lock["packages"][""]
    assert {**root["dependencies"], **root["devDependencies"]} == pins
    for name, version in pins.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    for name, spec in lock["packages"].items():
        if name:
            assert spec["resolved"].startswith("https://registry.npmjs.org/"), name
            assert spec["integrity"].startswith("sha512-"), name


def test_pages_at_once_follow_the_cores_up_to_two_unless_set(monkeypatch):
    monkeypatch.delenv("FORM_CHECK_WORKERS", raising=False)
    monkeypatch.setattr(bc.os, "cpu_count", lambda: 8)
    assert bc.workers() == bc.MAX_WORKERS == 2
    monkeypatch.setattr(bc.os, "cpu_count", lambda: 1)
    assert bc.workers() == 1
    monkeypatch.setenv("FORM_CHECK_WORKERS", "3")
    assert bc.workers() == 3
