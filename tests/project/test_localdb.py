"""The project-local cluster behind `make up`: idempotent, and clear when it cannot start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from shared.env import read_env_file
from shared.localdb import free_port

ROOT = Path(__file__).resolve().parents[2]


def localdb(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.localdb", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture
def tmp_path():
    # pytest's own temporary folders are private to this user; the server may run as another.
    path = Path(tempfile.mkdtemp(prefix="tenancy-localdb-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cluster_dir(tmp_path):
    base = tmp_path / "pgdata"
    yield base
    localdb("down", "--dir", str(base))


def test_up_is_idempotent_and_writes_env(cluster_dir, tmp_path):
    port = str(free_port())
    env_file = tmp_path / ".env"
    args = ("--dir", str(cluster_dir), "--port", port, "--env-file", str(env_file))

    first = localdb("up", *args)
    assert first.returncode == 0, first.stderr
    assert "created and started on 127.0.0.1:" + port in first.stdout
    values = read_env_file(env_file)
    assert values["RUNTIME_DATABASE_URL"].startswith("postgresql://tenancy_app:")
    assert f"@127.0.0.1:{port}/" in values["OWNER_DATABASE_URL"]

    second = localdb("up", *args)
    assert second.returncode == 0, second.stderr
    assert "reusing the local cluster" in second.stdout
    assert read_env_file(env_file) == values  # same passwords, so other shells keep working

    import psycopg

    url = values["RUNTIME_DATABASE_URL"] + "tenancy_rls"
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False)
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"

    down = localdb("down", "--dir", str(cluster_dir))
    assert "stopped (data kept)" in down.stdout
    again = localdb("up", *args)
    assert again.returncode == 0, again.stderr
    assert "started on" in again.stdout and "created" not in again.stdout


def test_without_postgresql_binaries_one_clear_line(tmp_path):
    result = localdb(
        "up",
        "--dir",
        str(tmp_path / "pg"),
        "--port",
        str(free_port()),
        "--env-file",
        str(tmp_path / ".env"),
        env={"PATH": "/nonexistent", "LOCALDB_PG_GLOB": str(tmp_path / "none")},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: no PostgreSQL server binaries found")
    assert "install PostgreSQL" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_reported(cluster_dir, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = localdb(
            "up", "--dir", str(cluster_dir), "--port", port, "--env-file", str(tmp_path / ".env")
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another OS account")
def test_a_folder_the_server_account_cannot_reach_is_reported(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    result = localdb(
        "up",
        "--dir",
        str(private / "pg"),
        "--port",
        str(free_port()),
        "--env-file",
        str(tmp_path / ".env"),
    )
    assert result.returncode == 1
    assert "OS account that runs PostgreSQL cannot reach" in result.stderr
