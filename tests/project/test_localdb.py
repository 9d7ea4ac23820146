"""The project-local cluster behind `make up`: idempotent, and clear when it cannot start."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from shared.cluster import free_port
from shared.env import ROOT, read_env_file


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
    assert len(values["DJANGO_SECRET_KEY"]) >= 40
    # It holds the owner's password: its owner alone may read it, also when it was wider.
    assert env_file.stat().st_mode & 0o777 == 0o600
    env_file.chmod(0o644)

    second = localdb("up", *args)
    assert second.returncode == 0, second.stderr
    assert "reusing the local cluster" in second.stdout
    assert read_env_file(env_file) == values  # same passwords, so other shells keep working
    assert env_file.stat().st_mode & 0o777 == 0o600

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


def test_free_ports_lie_below_the_ones_outgoing_connections_take(monkeypatch):
    # A port from the kernel's ephemeral range can be taken by any client connection before
    # the server binds it: the server then fails to start, now and then.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(20):
        first = free_port(3)
        assert first >= 10_000 and first + 2 < low
    # A run of ports one of which is taken is passed over.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + 1))
        taken.listen()
        draws = iter([first, first + 2])
        monkeypatch.setattr("shared.cluster.random.randrange", lambda *args: next(draws))
        assert free_port(3) == first + 2


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


def test_bootstrap_keeps_every_password_off_the_command_line(monkeypatch):
    """`ps` shows every process's arguments to every user of the machine."""
    import shared.cluster

    admin_url = os.environ["TENANCY_TEST_ADMIN_URL"]
    seen: list[list[str]] = []
    real_run = subprocess.run

    def spy(args, *rest, **kwargs):
        seen.append([str(a) for a in args])
        return real_run(args, *rest, **kwargs)

    monkeypatch.setattr(shared.cluster.subprocess, "run", spy)
    owner, runtime = "owner-pw-" + os.urandom(6).hex(), "runtime-pw-" + os.urandom(6).hex()
    superuser_password = admin_url.split(":")[2].split("@")[0]
    try:
        shared.cluster.bootstrap(admin_url, shared.cluster.Credentials(owner, runtime))
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        server = conninfo_to_dict(admin_url)
        with psycopg.connect(
            host=server["host"],
            port=server["port"],
            user="tenancy_app",
            password=runtime,
            dbname="tenancy_rls",
        ) as conn:  # the password from the environment took
            assert conn.execute("SELECT current_user").fetchone() == ("tenancy_app",)
    finally:
        # Put back the passwords the rest of the run uses.
        from django.conf import settings

        shared.cluster.bootstrap(
            admin_url,
            shared.cluster.Credentials(
                settings.DATABASES["owner"]["PASSWORD"], settings.DATABASES["default"]["PASSWORD"]
            ),
        )
    assert seen
    for args in seen:
        for secret in (owner, runtime, superuser_password):
            assert not any(secret in a for a in args), args


def test_a_server_older_than_15_is_refused_in_one_line():
    """Before 15 every role could create objects in public. A real old server is not at hand
    here, so the bootstrap's own check runs with an old version number in its place."""
    import psycopg

    text = (ROOT / "shared/db/bootstrap.sql").read_text()
    block = text[text.index("DO $$") : text.index("$$;", text.index("DO $$")) + 3]
    assert "current_setting('server_version_num')::int < 150000" in block
    old = block.replace("current_setting('server_version_num')::int", "140011")
    with psycopg.connect(os.environ["TENANCY_TEST_ADMIN_URL"], autocommit=True) as conn:
        conn.execute(block)  # this server passes
        with pytest.raises(psycopg.errors.RaiseException, match="PostgreSQL 15 or newer"):
            conn.execute(old)


def test_the_secret_key_outlives_every_start(tmp_path):
    """multidb derives its tenant roles' passwords from it: a new one at each `make up` with
    docker compose would lock every tenant out."""
    env_file = tmp_path / ".env"
    first = localdb("secret-key", "--env-file", str(env_file))
    second = localdb("secret-key", "--env-file", str(env_file))
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 40
    assert read_env_file(env_file)["DJANGO_SECRET_KEY"] == first.stdout.strip()
    assert env_file.stat().st_mode & 0o777 == 0o600


def test_up_with_citus_starts_a_coordinator_and_two_workers_and_down_stops_all_three(tmp_path):
    import psycopg

    from shared.citus import CitusCluster, installed

    if not installed():
        pytest.fail(
            "Citus is NOT INSTALLED: make citus-install CITUS_SOURCE=... (bash .ci/run does)"
        )
    base, env_file = tmp_path / "pgdata", tmp_path / ".env"
    port = free_port(3)
    args = ("--dir", str(base), "--port", str(port), "--env-file", str(env_file))
    try:
        up = localdb("up", "--cluster", "citus", *args)
        assert up.returncode == 0, up.stderr
        assert f"coordinator on 127.0.0.1:{port}, workers on 127.0.0.1:{port + 1}" in up.stdout
        values = read_env_file(env_file)
        assert values["TENANCY_CITUS"] == "1"
        assert f"@127.0.0.1:{port}/" in values["RUNTIME_DATABASE_URL"]
        for dbname in ("tenancy_rls", "tenancy_schemas"):
            with psycopg.connect(values["OWNER_DATABASE_URL"] + dbname) as conn:
                workers = conn.execute(
                    "SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' "
                    "AND groupid <> 0 AND isactive"
                ).fetchone()[0]
                assert workers == 2, dbname
                sharding = conn.execute(
                    "SELECT current_setting('citus.enable_schema_based_sharding')"
                ).fetchone()[0]
                assert sharding == ("on" if dbname == "tenancy_schemas" else "off")
        # The same two roles, with the same passwords, on every node.
        for node_port in (port + 1, port + 2):
            worker_url = values["RUNTIME_DATABASE_URL"].replace(f":{port}/", f":{node_port}/")
            with psycopg.connect(worker_url + "tenancy_rls") as conn:
                assert conn.execute(
                    "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
                ).fetchone() == (False, False)
        assert localdb("status", *args).stdout.strip() == "running (Citus)"
        down = localdb("down", *args)
        assert "Citus coordinator and workers" in down.stdout and "stopped" in down.stdout
        citus = CitusCluster.at(base / "citus", port)
        assert not any(node.running() for node in citus.nodes)
    finally:
        localdb("down", *args)
