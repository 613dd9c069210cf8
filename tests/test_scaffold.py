"""``facility-apis new``: the copy-me start passes the shipped conformance suite as written, both
as an outside package registered through the entry-point group and in a checkout."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from facility_apis.cli import main
from facility_apis.scaffold import ScaffoldError, next_steps, scaffold

ROOT = Path(__file__).resolve().parents[1]


def _install_entry_point(site: Path) -> None:
    """Register the package as pip would: a .dist-info with its entry points, on sys.path."""
    info = site / "echoscope_facility-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echoscope-facility\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[skyportal.facility_apis]\necho_scope = echoscope_facility.facility:EchoScopeFacility\n")


@pytest.fixture
def outside_package(tmp_path):
    """EchoScope written by ``facility-apis new --package`` and installed by entry point."""
    package_dir = tmp_path / "echoscope"
    assert main(["new", "echo_scope", "--title", "EchoScope", "--package", "echoscope_facility", "--root", str(package_dir)]) == 0
    site = tmp_path / "site"
    _install_entry_point(site)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(package_dir)]))
    return package_dir, env


def test_an_outside_facility_runs_the_shipped_conformance_suite(outside_package):
    package_dir, env = outside_package
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(package_dir), str(package_dir / "tests")],
        env=env, capture_output=True, text=True, cwd=package_dir, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "failed" not in result.stdout and " passed" in result.stdout
    assert "test_faults_end_in_a_defined_state_and_leak_no_secret" not in result.stdout  # ran quietly, and passed


def test_the_entry_point_registers_it_and_the_package_tests_ignore_it(outside_package):
    """The facility appears through the entry-point group, and this package's own tests that
    once assumed ATLAS was the only facility still pass with it installed."""
    _, env = outside_package
    listing = subprocess.run([sys.executable, "-m", "facility_apis", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "echo_scope" in listing.stdout
    classes = subprocess.run(
        [sys.executable, "-c", "from facility_apis.skyportal import class_names; print(class_names()['ECHOSCOPEAPI'])"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert classes.stdout.strip() == "('echo_scope',)", classes.stderr
    ours = ["tests/test_registry.py", "tests/test_skyportal_adapter.py", "tests/test_conformance.py", "tests/test_cli.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *ours], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_in_a_checkout_it_writes_the_five_files_and_says_the_two_lines_to_add(tmp_path, capsys):
    assert main(["new", "echo_scope", "--title", "EchoScope", "--root", str(tmp_path)]) == 0
    written = {str(Path(line.removeprefix("wrote ")).relative_to(tmp_path)) for line in capsys.readouterr().out.splitlines() if line.startswith("wrote ")}
    assert written == {
        "facility_apis/facilities/echo_scope.py",
        "facility_apis/schemas/echo_scope/altdata.json",
        "facility_apis/schemas/echo_scope/request.json",
        "tests/test_echo_scope.py",
        "docs/facilities/echo_scope.md",
    }
    module = (tmp_path / "facility_apis/facilities/echo_scope.py").read_text()
    compile(module, "echo_scope.py", "exec")
    assert 'skyportal_class: ClassVar[str] = "ECHOSCOPEAPI"' in module and 'schema_package: ClassVar[str] = "facility_apis"' in module
    steps = next_steps("echo_scope")
    assert steps[0].endswith('"echo_scope": "facility_apis.facilities.echo_scope:EchoScopeFacility",')
    assert "facilities/echo_scope" in steps[1]


def test_it_never_overwrites_and_refuses_bad_names(tmp_path, capsys):
    scaffold("echo", root=tmp_path)
    before = (tmp_path / "facility_apis/facilities/echo.py").read_text()
    with pytest.raises(ScaffoldError, match="refusing to overwrite"):
        scaffold("echo", root=tmp_path)
    assert (tmp_path / "facility_apis/facilities/echo.py").read_text() == before
    for bad in ("Echo", "2echo", "echo-scope", ""):
        assert main(["new", bad, "--root", str(tmp_path)]) == 2
        assert "is not a facility name" in capsys.readouterr().err


def test_the_generated_class_is_what_the_guide_shows():
    guide = (ROOT / "docs" / "adding-a-facility.md").read_text()
    assert "facility-apis new" in guide
    assert "templates/new_facility/facility.py.tmpl" in guide
    assert "skyportal_class" in guide and "enum" in guide
