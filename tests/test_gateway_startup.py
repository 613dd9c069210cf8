"""Start-up failures of the gateway's processes are one error line on stderr and exit status 1,
never a traceback: a PostgreSQL database that does not exist, SQLite on a read-only disk, a data
directory that cannot be made, a port already taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from facility_apis.gateway.crypto import KEY_ENV, generate_key

POSTGRES_URL = os.environ.get("FACILITY_APIS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def start(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{KEY_ENV: generate_key()})
    return subprocess.run([sys.executable, "-m", "facility_apis", *arguments], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def one_error_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and all(text in lines[0] for text in expected), lines[0]
    return lines[0]


@pytest.fixture
def read_only_disk(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.postgres
@pytest.mark.parametrize("verb", [["serve", "--port", "0"], ["worker"], ["client", "add", "someone"]])
def test_a_postgresql_database_that_does_not_exist_is_one_error_line(tmp_path, verb):
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/missing_{uuid.uuid4().hex[:8]}"
    one_error_line(start(*verb, "--database-url", url, cwd=tmp_path), "cannot open the database", "does not exist")


@pytest.mark.parametrize("verb", [["serve", "--port", "0"], ["worker"], ["client", "add", "someone"]])
def test_sqlite_on_a_read_only_disk_is_one_error_line(read_only_disk, verb):
    one_error_line(start(*verb, "--data-dir", str(read_only_disk), cwd=read_only_disk.parent), "cannot open the database", "Read-only file system")
    one_error_line(start(*verb, "--data-dir", str(read_only_disk / "sub"), cwd=read_only_disk.parent), "cannot create the data directory")


def test_a_taken_port_is_one_error_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_error_line(start("serve", "--data-dir", str(tmp_path), "--port", str(port), cwd=tmp_path), f"cannot listen on 127.0.0.1:{port}")
