"""docs/skyportal.md's install and ACL steps, run as the guide gives them where they can run here
(issue 9, item 5).

What runs: the documented `uv pip install --python <skyportal>/.venv/bin/python <path>` into a
fresh uv-built environment without pip, then the documented bridge module and `APIS`/`LISTENERS`
tuples inside a stand-in `skyportal.facility_apis` package (SkyPortal itself is not installed
here), imported by that environment's Python; and the documented token snippet, run with
stand-ins for the three SkyPortal functions it calls (`load_env`, `init_db`, `add_user`,
`create_token`, whose signatures are SkyPortal's). What cannot run here: SkyPortal's own start-up
(`refresh_enums`, `setup_permissions`) and its database.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from facility_apis.skyportal import FacilityMessageListener

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "skyportal.md"

#: SkyPortal's `skyportal/facility_apis/interface.py`, reduced to what the bridge needs (written
#: here: SkyPortal is not installed).
INTERFACE = '''
class _Base:
    @classmethod
    def implements(cls):
        return {}


class FollowUpAPI(_Base):
    form_json_schema = None
    form_json_schema_forced_photometry = None


class Listener:
    schema = {}
'''


def guide_block(needle: str, language: str) -> str:
    """The guide's fenced ``language`` block that contains ``needle``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    (block,) = [block for block in blocks if needle in block]
    return block


def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(found).exists():
        pytest.skip("uv is not installed (it comes with the test extra)")
    return found


@pytest.mark.slow
def test_the_guides_install_command_works_in_an_environment_without_pip_and_skyportal_imports_the_classes(tmp_path):
    skyportal = tmp_path / "skyportal"
    venv = skyportal / ".venv"
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    assert subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True).returncode != 0, "uv's environments have no pip"

    command = guide_block("uv pip install", "sh").strip()
    command = command.replace("<skyportal>", str(skyportal)).replace("<path to a facility_apis checkout or wheel>", str(ROOT))
    argv = shlex.split(command)
    assert argv[:4] == ["uv", "pip", "install", "--python"]
    installed = subprocess.run([uv(), *argv[1:]], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr

    package = skyportal / "skyportal" / "facility_apis"
    package.mkdir(parents=True)
    (skyportal / "skyportal" / "__init__.py").write_text("")
    (package / "interface.py").write_text(INTERFACE)
    (package / "facility_apis_bridge.py").write_text(guide_block("bind(FollowUpAPI, Listener)", "python"))
    (package / "__init__.py").write_text(guide_block("LISTENERS = (", "python"))
    check = (
        "import skyportal.facility_apis as apis\n"
        "from skyportal.facility_apis.interface import FollowUpAPI, Listener\n"
        "assert 'ATLASAPI' in apis.APIS and apis.LISTENERS[-1] == 'FacilityMessageListener'\n"
        "assert issubclass(apis.ATLASAPI, FollowUpAPI) and issubclass(apis.FacilityMessageListener, Listener)\n"
        "assert apis.ATLASAPI.implements()['submit'] and apis.ATLASAPI.form_json_schema_forced_photometry['properties']\n"
        "print(apis.FacilityMessageListener.get_acl_id())\n"
    )
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    ran = subprocess.run([str(python), "-c", check], cwd=skyportal, capture_output=True, text=True, env=environment, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "Post from FacilityMessageListener"
    # A configuration mistake must not stop SkyPortal at import: the gateway URL without its token.
    broken = subprocess.run(
        [str(python), "-c", check], cwd=skyportal, capture_output=True, text=True, timeout=120,
        env={**environment, "FACILITY_APIS_GATEWAY_URL": "https://gw.example.org"},
    )  # fmt: skip
    assert broken.returncode == 0, broken.stderr
    assert "the gateway needs both a URL and a token" in broken.stderr  # logged, once


def test_the_guides_token_snippet_asks_skyportal_for_the_acls_the_gateway_needs(monkeypatch):
    made: dict = {}

    def load_env():
        return {}, {"database": {"database": "skyportal", "host": "localhost"}}

    def init_db(**database):
        made["database"] = database

    def add_user(username, roles=(), auth=False, first_name=None, last_name=None):  # SkyPortal's signature
        made["user"] = username
        return types.SimpleNamespace(id=42, username=username)

    def create_token(ACLs, user_id, name):  # SkyPortal's parameter names
        made["token"] = (list(ACLs), user_id, name)
        return "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"

    modules = {
        "baselayer": types.ModuleType("baselayer"),
        "baselayer.app": types.ModuleType("baselayer.app"),
        "baselayer.app.env": types.SimpleNamespace(load_env=load_env),
        "skyportal": types.ModuleType("skyportal"),
        "skyportal.models": types.SimpleNamespace(init_db=init_db),
        "skyportal.model_util": types.SimpleNamespace(add_user=add_user, create_token=create_token),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(guide_block("create_token(", "python"), "docs/skyportal.md", "exec"), {})
    acls, user_id, _ = made["token"]
    assert FacilityMessageListener.get_acl_id() in acls  # what POST /api/facility checks
    assert "Upload data" in acls  # what SkyPortal's PUT /api/photometry needs
    assert user_id == 42 and made["database"] == {"database": "skyportal", "host": "localhost"}
    assert printed.getvalue().strip() == "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def test_the_guide_names_no_pip_install_no_apis_dict_and_no_migration_step():
    text = GUIDE.read_text(encoding="utf-8")
    assert "pip install facility-apis" not in text and "_APIS = {" not in text and "_LISTENERS = {" not in text
    assert "op.execute(" not in text, "SkyPortal adds enum values itself; a migration forks its history"
