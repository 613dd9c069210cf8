"""The built wheel ships every schema and works from a fresh virtual environment."""

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from facility_apis.core.schemas import available_schemas

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_schemas_and_loads_them_in_a_fresh_venv(tmp_path):
    pytest.importorskip("build")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("facility_apis-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("facility_apis/schemas/")}
        entry_points = archive.read(next(n for n in archive.namelist() if n.endswith("entry_points.txt"))).decode()
    assert {f"facility_apis/schemas/{name}.json" for name in available_schemas()} <= shipped
    assert "facility-apis = facility_apis.cli:main" in entry_points

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, capture_output=True)
    check = (
        "from facility_apis.core.schemas import available_schemas, load_schema, load_document\n"
        "names = available_schemas()\n"
        "[load_document(n) if n.endswith('/ui') else load_schema(n) for n in names]\n"
        "print(len(names))\n"
    )
    out = subprocess.run([str(python), "-c", check], check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert int(out) == len(available_schemas())
    listing = subprocess.run([str(env_dir / "bin" / "facility-apis"), "list", "--json"], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert '"name": "atlas"' in listing.stdout
