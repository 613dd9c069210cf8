"""The command line: list, schema, validate, submit --dry-run."""

import json
import re

import pytest

from facility_apis.cli import main
from facility_apis.core.timeutil import DATE_RULE
from facility_apis.facilities.atlas import ATLASFacility

TOKEN = "cli-token-0042"


@pytest.fixture
def files(tmp_path):
    def write(name, document):
        path = tmp_path / name
        path.write_text(json.dumps(document) if not isinstance(document, str) else document)
        return str(path)

    return write


def test_list_plain_and_json(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("atlas ") for line in lines)
    kinds_at = {re.match(r"\S+\s+", line).end() for line in lines}
    assert len(kinds_at) == 1, "the kind column lines up, whatever the length of a facility's name"
    assert main(["list", "--json"]) == 0
    (row,) = [r for r in json.loads(capsys.readouterr().out) if r["name"] == "atlas"]
    implements = ["validate_altdata", "prepare", "submit", "get", "delete", "find"]
    assert row == {"name": "atlas", "title": "ATLAS forced photometry", "kind": "forced_photometry", "implements": implements}


@pytest.mark.parametrize(("flag", "key"), [([], "api_token"), (["--altdata"], "api_token"), (["--request"], "start_date"), (["--ui"], "ui:order")])
def test_schema(capsys, flag, key):
    assert main(["schema", "atlas", *flag]) == 0
    assert key in json.dumps(json.loads(capsys.readouterr().out))


def test_schema_of_unknown_facility(capsys):
    assert main(["schema", "nope"]) == 1
    assert "known facilities: atlas" in capsys.readouterr().err


def test_validate_valid(capsys, files):
    payload = files("p.json", {"start_date": "2026-01-01", "end_date": "2026-01-02"})
    assert main(["validate", "atlas", "--altdata", files("a.json", {"api_token": TOKEN}), "--payload", payload]) == 0
    assert capsys.readouterr().out == "valid\n"


def test_validate_invalid_prints_one_line_per_error_and_no_secret(capsys, files):
    altdata = files("a.json", {"api_token": 5, "base_url": "ftp://x"})
    code = main(["validate", "atlas", "--altdata", altdata, "--payload", files("p.json", {"start_date": "nope"})])
    assert code == 2
    # end_date is missing but has a default (today), so only start_date is at fault.
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "altdata $.api_token: must be of type string",
        "altdata $.base_url: does not follow its rule: " + ATLASFacility.altdata_schema()["properties"]["base_url"]["description"],
        f"payload $.start_date: must be {DATE_RULE}",
    ]


def test_validate_unreadable_files(files, capsys):
    with pytest.raises(SystemExit, match="is not JSON"):
        main(["validate", "atlas", "--altdata", files("a.json", "{nope")])
    with pytest.raises(SystemExit, match="must hold a JSON object"):
        main(["validate", "atlas", "--altdata", files("a.json", "[1]")])
    with pytest.raises(SystemExit, match="cannot read altdata file"):
        main(["validate", "atlas", "--altdata", "/does/not/exist.json"])


def test_submit_dry_run_prints_the_exact_request_masked(capsys, files):
    code = main(
        [
            "submit", "atlas", "--ra", "150.25", "--dec", "-20.5",
            "--altdata", files("a.json", {"api_token": TOKEN}),
            "--payload", files("p.json", {"start_date": "2026-01-01", "end_date": "2026-01-31"}),
            "--base-url", "https://atlas.example.org/forcedphot", "--dry-run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert TOKEN not in out
    lines = out.splitlines()
    assert lines[0] == "POST https://atlas.example.org/forcedphot/queue/"
    assert "Authorization: ***" in lines
    assert "Content-Type: application/x-www-form-urlencoded" in lines
    assert lines[-1] == "ra=150.25&dec=-20.5&mjd_min=61041.0&mjd_max=61072.0&use_reduced=false&send_email=false"


def test_submit_with_bad_coordinates(capsys, files):
    assert main(["submit", "atlas", "--ra", "400", "--dec", "0", "--altdata", files("a.json", {"api_token": TOKEN}), "--dry-run"]) == 2
    assert capsys.readouterr().out == "payload $.ra: must be a finite number in [0, 360)\n"
