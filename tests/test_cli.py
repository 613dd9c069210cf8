"""The command line: list, schema, validate, submit --dry-run, a closed output."""

import argparse
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facility_apis.cli import build_parser, main
from facility_apis.core.timeutil import DATE_RULE

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
    assert main(["schema", "nope"]) == 2  # the input was refused
    assert "known facilities: atlas, " in capsys.readouterr().err


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
        "altdata $.base_url: must be an https URL without a user name or password (plain http only to a loopback address)",
        f"payload $.start_date: must be {DATE_RULE}",
    ]


@pytest.mark.parametrize(
    ("content", "error"),
    [("{nope", "is not JSON"), ("[1]", "must hold a JSON object"), (None, "cannot read altdata file /does/not/exist.json")],
)
@pytest.mark.parametrize("command", [["validate", "atlas"], ["submit", "atlas", "--ra", "1", "--dec", "1", "--dry-run"]])
def test_unreadable_files_are_invalid_input_exit_2(files, capsys, content, error, command):
    path = files("a.json", content) if content is not None else "/does/not/exist.json"
    assert main([*command, "--altdata", path]) == 2
    assert error in capsys.readouterr().err


def test_invalid_payload_exits_2_in_validate_and_in_a_dry_run_alike(capsys, files):
    """One meaning per exit code: a payload the package's rules refuse is 2 whether ``validate``,
    the dry run's form check or the facility's own rules in ``prepare`` refuse it."""
    altdata = files("a.json", {"user_email": "pi@example.org", "user_key": "k3y-0042", "programid": "GN-2026B-Q-101", "template_ids": "1,2"})
    bad_form = files("p.json", {"template_ids": "1;2"})
    not_allowed = files("q.json", {"template_ids": "3"})
    assert main(["validate", "gemini", "--altdata", altdata, "--payload", bad_form]) == 2
    assert main(["submit", "gemini", "--ra", "1", "--dec", "1", "--altdata", altdata, "--payload", bad_form, "--dry-run"]) == 2
    assert main(["submit", "gemini", "--ra", "1", "--dec", "1", "--altdata", altdata, "--payload", not_allowed, "--dry-run"]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "payload $.template_ids: template 3 is not one this allocation may trigger (1, 2)"


def test_a_submission_the_package_rejects_exits_2_and_a_failed_one_1(capsys, files, monkeypatch):
    altdata = files("a.json", {"user_email": "pi@example.org", "user_key": "k3y-0042", "programid": "GN-2026B-Q-101", "template_ids": "1,2"})
    not_allowed = files("q.json", {"template_ids": "3"})
    args = ["submit", "gemini", "--ra", "1", "--dec", "1", "--altdata", altdata]
    assert main([*args, "--payload", not_allowed]) == 2  # refused before any call
    assert capsys.readouterr().out.startswith("rejected: invalid payload: $.template_ids: template 3")
    config = files("c.json", {"north_url": "https://127.0.0.1:9"})  # nothing listens there
    allowed = files("r.json", {"template_ids": "1"})
    assert main([*args, "--payload", allowed, "--config", config, "--allow", "https://127.0.0.1:9"]) == 1
    assert capsys.readouterr().out.startswith("failed to submit: ")


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


def test_submit_reports_every_failing_field_coordinates_altdata_and_payload_alike(capsys, files):
    altdata, payload = files("a.json", {"api_token": 5}), files("p.json", {"start_date": "nope"})
    assert main(["submit", "atlas", "--ra", "360", "--dec", "-91", "--altdata", altdata, "--payload", payload, "--dry-run"]) == 2
    assert capsys.readouterr().out.splitlines() == [
        "payload $.ra: must be a finite number in [0, 360)",
        "payload $.dec: must be a finite number in [-90, 90]",
        "altdata $.api_token: must be of type string",
        f"payload $.start_date: must be {DATE_RULE}",
    ]


def test_submit_with_bad_coordinates(capsys, files):
    assert main(["submit", "atlas", "--ra", "400", "--dec", "0", "--altdata", files("a.json", {"api_token": TOKEN}), "--dry-run"]) == 2
    assert capsys.readouterr().out == "payload $.ra: must be a finite number in [0, 360)\n"


# -- docs/cli.md's examples are outputs of the code ---------------------------------------------

CLI_DOCS = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()


def test_the_documented_list_line_is_the_output(capsys):
    main(["list"])
    documented = re.search(r"^atlas .*$", CLI_DOCS, re.M).group(0)
    assert documented in capsys.readouterr().out.splitlines()


def test_the_documented_unknown_facility_error_is_the_output(capsys):
    main(["schema", "nope"])
    documented = re.search(r"^error: no facility named 'nope'; known facilities: (.*), \.\.\.$", CLI_DOCS, re.M)
    assert capsys.readouterr().err.startswith(documented.group(0).removesuffix(", ..."))


@pytest.mark.parametrize("extra", [["--config", "swift-config"], ["--base-url", "https://x.example.org"]])
def test_the_documented_settings_errors_are_the_output(capsys, files, extra):
    extra = [files("c.json", {"base_url": "https://x.example.org"}) if arg == "swift-config" else arg for arg in extra]
    main(["submit", "swift", "--ra", "1", "--dec", "1", "--altdata", files("a.json", {}), *extra, "--dry-run"])
    error = capsys.readouterr().err.strip()
    assert f"`{error}`" in CLI_DOCS.replace("\n", " ")


def test_submit_takes_the_allocations_pi_and_the_requester_that_ztf_triggering_sends(capsys, files):
    """Without them a ZTF trigger is refused before anything is sent (a newcomer could never
    submit one from the CLI); with them the dry run carries both (Kowalski's program_pi, user)."""
    common = ["submit", "ztf_trigger", "--ra", "210.5", "--dec", "12.25", "--altdata", files("a.json", {"access_token": "kowalski-t0ken"})]
    assert main(common) == 2  # refused before any call: nothing is reachable here
    assert "needs the allocation's PI or the requester's name" in capsys.readouterr().out
    assert main([*common, "--pi", "Kasliwal", "--requester", "observer", "--dry-run"]) == 0
    body = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert body["user"] == "observer" and {t["program_pi"] for t in body["targets"]} == {"Kasliwal/observer"}


def test_a_closed_output_ends_the_command_quietly_with_exit_1(tmp_path):
    """``facility-apis schema atlas | head -1``: the reader has gone, so every write fails."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "facility_apis", "schema", "atlas"], stdout=write_end, stderr=subprocess.PIPE, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr.decode()) == (1, "")


def test_a_stdout_whose_write_raises_broken_pipe_is_exit_1_without_a_trace(monkeypatch, capsys):
    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["list"]) == 1
    assert capsys.readouterr().err == ""


def _verbs(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(verb path, its long options) for every runnable verb of the parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _verbs(sub, (*path, name))
            return
    yield " ".join(path), [o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"]


def _usage_blocks() -> list[str]:
    return re.findall(r"```text\n(facility-apis .*?)```", CLI_DOCS, re.S)


def _section(verb: str) -> str:
    """The prose of the verb's section (a gateway verb's with the options its parent section shares)."""
    parts = re.split(r"^(#{2,3} .*)$", CLI_DOCS, flags=re.M)
    index = next(i for i, part in enumerate(parts) if i % 2 and f"`{verb}`" in part)  # the odd parts are the headings
    text = parts[index + 1]
    if parts[index].startswith("### "):
        text += next(parts[i + 1] for i in range(index, 0, -2) if parts[i].startswith("## "))
    return re.sub(r"```.*?```", "", text, flags=re.S)


@pytest.mark.parametrize(("verb", "options"), list(_verbs(build_parser())), ids=lambda v: v if isinstance(v, str) else "")
def test_cli_md_gives_every_verbs_usage_with_every_option_and_explains_each(verb, options):
    (usage,) = [block for block in _usage_blocks() if re.match(rf"facility-apis {verb}( |\n|$)", block)]
    prose = _section(verb)
    for option in options:
        assert re.search(rf"\[?{option}\b", usage), f"{option} is not in the usage of {verb}"
        assert re.search(rf"`{option}[` ]", prose), f"{option} of {verb} is not explained"


def test_cli_md_describes_remote_validation_once():
    assert CLI_DOCS.count("With `--remote-validate`") == 1
