"""The documentation: generated tables, the facility skeleton it shows, and a full Sphinx build."""

import json
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
import responses

from facility_apis import docgen
from facility_apis.core.interface import Facility, Kind
from facility_apis.core.registry import Registry
from facility_apis.core.schemas import DRAFT7

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TODAY = date(2026, 11, 21)


def rows(table: str) -> dict[str, list[str]]:
    """Table rows keyed by the field name, cells stripped (header and rule skipped)."""
    out = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        out[cells[0].strip("`")] = cells
    return out


def column(name: str) -> int:
    return docgen.COLUMNS.index(name)


# -- docgen ----------------------------------------------------------------------------------


def test_altdata_table_has_a_row_per_property_and_marks_the_secret():
    from facility_apis.facilities.atlas import ATLASFacility

    schema = ATLASFacility.altdata_schema()
    table = rows(docgen.schema_table(schema))
    assert set(table) == set(schema["properties"]) == {"api_token", "base_url"}
    assert table["api_token"][column("Secret")] == "yes"
    assert table["base_url"][column("Secret")] == ""
    assert table["api_token"][column("Required")] == "yes"
    assert table["base_url"][column("Required")] == "no"
    assert table["base_url"][column("Type")] == "string"
    # "<base URL>" must not reach the page as an HTML tag.
    assert "\\<base URL\\>" in table["api_token"][column("Description")]


def test_request_table_describes_time_relative_defaults_instead_of_freezing_them():
    from facility_apis.facilities.atlas import ATLASFacility

    text = docgen.request_table(ATLASFacility)
    table = rows(text)
    facility = ATLASFacility()
    assert set(table) == set(facility.request_schema()["properties"])
    # The package fills them itself, so they are not required (SkyPortal checks `required`).
    assert table["start_date"][column("Required")] == "no"
    assert table["end_date"][column("Required")] == "no"
    assert table["start_date"][column("Default")] == "30 days before today (computed at request time)"
    assert table["end_date"][column("Default")] == "today (computed at request time)"
    for value in facility.request_defaults().values():
        assert value not in text, "a date computed today must not be frozen into the docs"
    assert table["start_date"][column("Allowed values")].startswith("a UTC date, YYYY-MM-DD, from 1900-01-01 to 2099-12-31")
    assert table["snr_threshold"][column("Default")] == "`3`"
    assert table["snr_threshold"][column("Allowed values")] == "> 0; ≤ 100"
    assert table["propermotion_ra"][column("Description")].endswith("Requires `propermotion_dec`, `radec_epoch_year`.")
    assert table["radec_epoch_year"][column("Required")] == "with `propermotion_ra` or `propermotion_dec`"
    assert "Any other field is refused." in text


@pytest.mark.parametrize(
    ("value", "words"),
    [(TODAY, "today"), (TODAY - timedelta(days=30), "30 days before today"), (TODAY + timedelta(days=1), "1 day after today")],
)
def test_relative_day(value, words):
    assert docgen.relative_day(value.isoformat(), TODAY) == words


def test_relative_day_of_something_else():
    assert docgen.relative_day("soon", TODAY) is None
    assert docgen.relative_day(3, TODAY) is None
    table = rows(docgen.schema_table({"properties": {"t": {"type": "string"}}}, computed={"t": "x"}, today=TODAY))
    assert table["t"][column("Default")] == "computed at request time"


def test_schema_table_handles_enums_formats_bounds_arrays_and_branches():
    schema = {
        "$schema": DRAFT7,
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["fast", "deep"], "default": "fast", "description": "a | b"},
            "level": {"oneOf": [{"const": 1, "title": "Low"}, {"const": 2, "title": "High"}]},
            "when": {"type": "string", "format": "date-time", "title": "When"},
            "bands": {"type": "array", "items": {"type": "string", "enum": ["g", "r"]}, "uniqueItems": True},
            "name": {"type": "string", "minLength": 2, "maxLength": 9, "pattern": "^a|b$"},
        },
        "dependencies": {
            "mode": {
                "oneOf": [
                    {"properties": {"mode": {"enum": ["fast"]}}},
                    {"properties": {"mode": {"enum": ["deep"]}, "depth": {"type": "integer", "minimum": 1}}, "required": ["depth"]},
                ]
            }
        },
    }
    text = docgen.schema_table(schema, today=TODAY)
    table = rows(text)
    assert list(table) == ["mode", "level", "when", "bands", "name", "depth"]
    assert table["mode"][column("Allowed values")] == "one of `fast`, `deep`"
    assert table["mode"][column("Default")] == "`fast`"
    assert table["mode"][column("Description")] == "a \\| b"
    assert table["level"][column("Allowed values")] == "one of `1` (Low), `2` (High)"
    assert table["when"][column("Type")] == "string (date-time)"
    assert table["bands"][column("Type")] == "array of string"
    assert table["bands"][column("Allowed values")] == "each item: one of `g`, `r`; no repeated items"
    assert table["name"][column("Allowed values")] == "at least 2 characters; at most 9 characters; matches `^a\\|b$`"  # an unknown pattern
    assert table["depth"][column("Required")] == "yes, when `mode` is `deep`"
    assert table["depth"][column("Description")] == "Only when `mode` is `deep`."
    assert all(len(line.split(" | ")) == len(docgen.COLUMNS) for line in text.splitlines()[2:] if line.startswith("| "))


def test_a_pattern_the_kit_knows_is_shown_as_its_rule_in_words_never_as_the_expression():
    from facility_apis.core.schemas import PATTERN_RULES
    from facility_apis.core.timeutil import DATE_PATTERN

    pattern, rule = next((p, r) for p, r in PATTERN_RULES.items() if p != DATE_PATTERN)  # dates have their own wording
    table = rows(docgen.schema_table({"type": "object", "properties": {"x": {"type": "string", "title": "X", "pattern": pattern}}}, today=TODAY))
    assert table["x"][column("Allowed values")] == docgen._text(rule) and pattern not in table["x"][column("Allowed values")]


class Pager(Facility):
    name = "pager"
    title = "Pager | notifications"
    kind = Kind.NOTIFICATION
    skyportal_class = "PAGERAPI"

    def submit(self, request, transport):  # pragma: no cover - only its presence matters
        raise NotImplementedError


def test_capability_table_has_a_row_per_facility_and_a_column_per_operation():
    registry = Registry({"atlas": "facility_apis.facilities.atlas:ATLASFacility"}, group=None)
    registry.register("pager", Pager)
    lines = docgen.capability_table(registry).splitlines()
    assert lines[0] == "| Facility | Kind | `validate_altdata` | `prepare` | `submit` | `get` | `update` | `delete` | `find` | `remote_validate` |"
    assert lines[2] == "| `atlas` (ATLAS forced photometry) | forced_photometry | yes | yes | yes | yes | — | yes | yes | — |"
    assert lines[3] == "| `pager` (Pager \\| notifications) | notification | yes | — | yes | — | — | — | — | — |"
    assert len(lines) == 2 + len(registry.names())


def test_dry_run_example_is_the_clis_output_with_the_token_masked():
    from facility_apis.facilities.atlas import ATLASFacility

    text = docgen.dry_run_example(ATLASFacility)
    token = ATLASFacility.altdata_schema()["examples"][0]["api_token"]
    output = text.split("```text\n", 1)[1]
    assert token not in output
    assert "Authorization: ***" in output
    assert output.startswith("POST https://fallingstar-data.com/forcedphot/queue/\n")
    assert "ra=150.1234&dec=-20.5678&mjd_min=61314.0&mjd_max=61345.0&use_reduced=false&send_email=false" in output
    assert docgen.dry_run_example(Pager) is None


def test_dry_run_output_is_what_the_command_prints(tmp_path, capsys):
    from facility_apis.cli import main
    from facility_apis.facilities.atlas import ATLASFacility

    altdata, payload = {"api_token": "tok/en+1"}, {"start_date": "2026-01-01", "end_date": "2026-01-31", "use_reduced": True}
    (tmp_path / "a.json").write_text(json.dumps(altdata))
    (tmp_path / "p.json").write_text(json.dumps(payload))
    obj_id, ra, dec = docgen.EXAMPLE_TARGET
    args = ["submit", "atlas", "--ra", str(ra), "--dec", str(dec), "--target-id", obj_id]
    assert main([*args, "--altdata", str(tmp_path / "a.json"), "--payload", str(tmp_path / "p.json"), "--dry-run"]) == 0
    assert capsys.readouterr().out == docgen.dry_run_output(ATLASFacility, altdata, payload)


def test_write_generated_writes_every_file_and_leaves_unchanged_files_alone(tmp_path):
    registry = Registry(group=None)
    paths = docgen.write_generated(tmp_path, registry)
    expected = {"capabilities.md", "observation-plan.md", "observation-plan-targets.md"}
    expected |= {f"{cls.name}-{part}.md" for cls in registry.all() for part in ("altdata", "request")}
    expected |= {f"{cls.name}-dry-run.md" for cls in registry.all() if docgen.dry_run_example(cls) is not None}
    assert {p.name for p in paths} == expected
    assert "api_token" in (tmp_path / "atlas-altdata.md").read_text()
    assert "`validity_window_mjd`" in (tmp_path / "observation-plan.md").read_text()
    assert "`exposure_time`" in (tmp_path / "observation-plan-targets.md").read_text()
    stamp = (tmp_path / "capabilities.md").stat().st_mtime_ns
    docgen.write_generated(tmp_path, registry)
    assert (tmp_path / "capabilities.md").stat().st_mtime_ns == stamp


# -- the ATLAS status table ------------------------------------------------------------------

ATLAS_BASE = "https://fallingstar-data.com/forcedphot"
TASK = f"{ATLAS_BASE}/queue/123/"
RESULT = f"{ATLAS_BASE}/static/results/job123.txt"
HEADER = "###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi apfit mag5sig Sky Obs"
ROW = "60990.1 17.5 0.05 350 12 {f} 0 1.1 150.0 -20.0 1 1 2 2 0 0 19.5 20 01a"
FINISHED = {"url": TASK, "starttimestamp": "2026-11-21T10:00:00Z", "finishtimestamp": "2026-11-21T10:05:00Z", "result_url": RESULT}


MAINTENANCE = "<html><head><title>Maintenance</title></head><body>back soon</body></html>"
FOUND = {"id": 123, "ra": 150.0, "dec": -20.0, "mjd_min": 61314.0, "mjd_max": 61345.0, "use_reduced": False, "timestamp": "2026-11-21T10:00:00Z"}


def _finished(mock, result=None, status=200):
    mock.get(TASK, json=FINISHED)
    mock.get(RESULT, status=status, body=result if result is not None else "\n".join([HEADER, ROW.format(f="o"), ROW.format(f="c")]))


def _atlas_scenarios():
    queue = f"{ATLAS_BASE}/queue/"
    throttled = {"detail": "Request was throttled. Expected available in 5 seconds."}
    cap = {"non_field_errors": ["ERROR: You have too many queued tasks (500 queued + 1 requested > 500)."]}
    dec = {"dec": ["Ensure this value is greater than or equal to -90."]}
    return {
        "submitted": ("submit", None, lambda m: m.post(queue, status=201, json={"url": TASK})),
        "rejected by ATLAS": ("submit", None, lambda m: m.post(queue, status=400, json=cap)),
        "field error": ("submit", None, lambda m: m.post(queue, status=400, json=dec)),
        "bad payload": ("submit", None, {"start_date": "2026-10-31", "end_date": "2026-10-01"}),
        "bad altdata": ("submit", None, {"api_token": 5}),
        "refused credentials": ("submit", None, lambda m: m.post(queue, status=401, json={"detail": "Invalid token."})),
        "throttled submission": ("submit", None, lambda m: m.post(queue, status=429, json=throttled)),
        "cannot connect": ("submit", None, lambda m: m.post(queue, body=requests.ConnectTimeout())),
        "read timeout": ("submit", None, lambda m: m.post(queue, body=requests.ReadTimeout())),
        "dropped": ("submit", None, lambda m: m.post(queue, body=requests.ConnectionError())),
        "503 on submit": ("submit", None, lambda m: m.post(queue, status=503)),
        "500 on submit": ("submit", None, lambda m: m.post(queue, status=500, body="Internal Server Error")),
        "201 without url": ("submit", None, lambda m: m.post(queue, status=201, body="{}")),
        "queued 3": ("get", TASK, lambda m: m.get(TASK, json={"url": TASK, "queuepos": 3})),
        "queued 1": ("get", TASK, lambda m: m.get(TASK, json={"url": TASK, "queuepos": 1})),
        "queued next": ("get", TASK, lambda m: m.get(TASK, json={"url": TASK, "queuepos": 0})),
        "queued unknown": ("get", TASK, lambda m: m.get(TASK, json={"url": TASK})),
        "running": ("get", TASK, lambda m: m.get(TASK, json={"url": TASK, "starttimestamp": "2026-11-21T10:00:00Z"})),
        "complete": ("get", TASK, _finished),
        "complete with notes": ("get", TASK, lambda m: _finished(m, "\n".join([HEADER, *(ROW.format(f=band) for band in "oott")]))),
        "error_msg": ("get", TASK, lambda m: m.get(TASK, json={"url": TASK, "finishtimestamp": "x", "error_msg": "No data returned"})),
        "no result": ("get", TASK, lambda m: m.get(TASK, json={"url": TASK, "finishtimestamp": "x"})),
        "empty result": ("get", TASK, lambda m: _finished(m, HEADER + "\n")),
        "gone": ("get", TASK, lambda m: m.get(TASK, status=404, json={"detail": "Not found."})),
        "throttled poll": ("get", TASK, lambda m: m.get(TASK, status=429, json={"detail": "Request was throttled. Expected available in 1 second."})),
        "500 on poll": ("get", TASK, lambda m: m.get(TASK, status=500, body="Internal Server Error")),
        "503 on poll": ("get", TASK, lambda m: m.get(TASK, status=503)),
        "poll cannot connect": ("get", TASK, lambda m: m.get(TASK, body=requests.ConnectTimeout())),
        "task not json": ("get", TASK, lambda m: m.get(TASK, body="{nope")),
        "result missing": ("get", TASK, lambda m: _finished(m, "Not Found", status=404)),
        "result lacks a column": ("get", TASK, lambda m: _finished(m, HEADER.replace(" uJy", "") + "\n")),
        "altdata gone bad": ("get", TASK, {}),
        "not submitted": ("get", None, lambda m: None),
        "cancel queued": ("delete", TASK, lambda m: (m.get(TASK, json={"url": TASK, "queuepos": 2}), m.delete(TASK, status=204))),
        "delete finished": ("delete", TASK, lambda m: (_finished(m), m.delete(TASK, status=204))),
        "delete failed task": (
            "delete",
            TASK,
            lambda m: (m.get(TASK, json={"url": TASK, "finishtimestamp": "x", "error_msg": "No data returned"}), m.delete(TASK, status=204)),
        ),
        "delete gone": ("delete", TASK, lambda m: m.get(TASK, status=404)),
        "delete unsubmitted": ("delete", None, lambda m: None),
        "delete refused": (
            "delete",
            TASK,
            lambda m: (m.get(TASK, json={"url": TASK}), m.delete(TASK, status=403, json={"detail": "You do not have permission to perform this action."})),
        ),
        "delete with expired results": ("delete", TASK, lambda m: (_finished(m, "Not Found", status=404), m.delete(TASK, status=204))),
        "delete without results for now": ("delete", TASK, lambda m: _finished(m, "Server Error", status=500)),
        "delete answered by a page": (
            "delete",
            TASK,
            lambda m: (m.get(TASK, json={"url": TASK}), m.delete(TASK, status=200, body=MAINTENANCE, content_type="text/html")),
        ),
        "result is a page": ("get", TASK, lambda m: _finished(m, MAINTENANCE)),
        "found after an interruption": (
            "find",
            None,
            lambda m: m.get(f"{ATLAS_BASE}/queue/?ordering=-id&pagesize=100", json={"next": None, "results": [{**FOUND, "url": TASK}]}),
        ),
    }


def _status_spans() -> set[str]:
    text = (DOCS / "facilities" / "atlas.md").read_text()
    section = text[text.index("(atlas-statuses)=") : text.index("(atlas-photometry)=")]
    return {re.sub(r"\d+", "N", span) for span in re.findall(r"`([^`]+)`", section)}


@pytest.mark.parametrize("scenario", list(_atlas_scenarios()))
def test_every_atlas_status_is_documented(scenario):
    from facility_apis.core.interface import Allocation, FollowupRequest, Target
    from facility_apis.core.operations import perform
    from facility_apis.core.transport import Transport
    from facility_apis.facilities.atlas import ATLASFacility

    operation, remote_id, setup = _atlas_scenarios()[scenario]
    altdata = {"api_token": "0123456789abcdef0123456789abcdef01234567"}
    payload = {"start_date": "2026-10-01", "end_date": "2026-10-31"}
    if isinstance(setup, dict):  # bad input: the dict replaces the altdata or the payload
        altdata, payload = (setup, payload) if "end_date" not in setup else (altdata, setup)
        setup = lambda mock: None  # noqa: E731
    attempted_at = 1_795_255_200.0  # 2026-11-21T10:00:00Z
    request = FollowupRequest(1, Target("ZTF26x", 150.0, -20.0), Allocation(1, altdata), payload, remote_id=remote_id, attempted_at=attempted_at)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        setup(mock)
        with Transport(backoff=0, retries=1) as transport:
            status = perform(ATLASFacility(), operation, request, transport).status
    assert re.sub(r"\d+", "N", status) in _status_spans(), f"{scenario}: {status!r} is not in docs/facilities/atlas.md"


def test_an_internal_error_status_is_documented(monkeypatch):
    from facility_apis.core.interface import Allocation, FollowupRequest, Target
    from facility_apis.core.operations import perform
    from facility_apis.core.transport import Transport
    from facility_apis.facilities.atlas import ATLASFacility

    def broken(self, request):
        raise KeyError("x")

    monkeypatch.setattr(ATLASFacility, "prepare", broken)
    request = FollowupRequest(1, Target("x", 1.0, 2.0), Allocation(1, {"api_token": "t0ken-abc"}), {})
    status = perform(ATLASFacility(), "submit", request, Transport()).status
    assert status in _status_spans()


# -- the Sphinx build ------------------------------------------------------------------------


@pytest.mark.slow
def test_sphinx_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    atlas = (out / "facilities" / "atlas.html").read_text(encoding="utf-8")
    assert "api_token" in atlas and "snr_threshold" in atlas
    assert "30 days before today" in atlas
    assert "Authorization: ***" in atlas
    assert "<base" not in atlas.replace("&lt;base", "")
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "forced_photometry" in index
    adding = (out / "adding-a-facility.html").read_text(encoding="utf-8")
    assert "class ${class_name}(Facility)" in adding and "echo_scope" in adding and "conformance_suite" in adding


def test_the_deleted_here_only_status_is_documented_as_the_gateway_writes_it():
    from facility_apis.gateway.policy import deleted_here_only

    assert f"| `{deleted_here_only('<facility title>')}` |" in (DOCS / "gateway.md").read_text()


def test_no_facility_page_gives_the_gateway_a_fixed_wait_after_a_failure():
    """The gateway retries a transient failure after its own backoff (``backoff_base_seconds``,
    doubling), not after the 60 s an outcome advises a direct driver: pages say so."""
    from facility_apis.gateway.policy import Schedule

    assert Schedule().backoff_base == 30.0
    for page in sorted((DOCS / "facilities").glob("*.md")):
        for line in page.read_text().splitlines():
            if "gateway" in line.lower() and re.search(r"(again|retried|tries again|queries again) after 60 s", line):
                raise AssertionError(f"{page.name}: {line[:160]}")
