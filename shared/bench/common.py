"""A private PostgreSQL cluster for benchmarks: default, durable settings, removed afterwards."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.env import ROOT
from shared.localdb import Cluster, bootstrap, free_port, url


@contextmanager
def private_cluster() -> Iterator[tuple[Cluster, dict[str, str]]]:
    workdir = Path(tempfile.mkdtemp(prefix="tenancy-bench-"))
    workdir.chmod(0o755)  # the server may run as another OS user
    cluster = Cluster(workdir / "pg", free_port())
    try:
        cluster.init()
        cluster.start()
        owner_password, runtime_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        bootstrap(cluster.admin_url(), owner_password, runtime_password)
        yield (
            cluster,
            {
                **os.environ,
                "OWNER_DATABASE_URL": url(
                    "tenancy_owner", owner_password, "127.0.0.1", cluster.port
                ),
                "RUNTIME_DATABASE_URL": url(
                    "tenancy_app", runtime_password, "127.0.0.1", cluster.port
                ),
                "TENANCY_ENV_FILE": os.devnull,
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            },
        )
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run(main) -> int:
    """Run a benchmark's main(); Ctrl-C is a clean stop (the context managers have stopped every
    server and cluster by the time it arrives here), said in one line."""
    try:
        return main()
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every server and cluster this run started is stopped", file=sys.stderr
        )
        return 130


def manage(strategy: str, env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(ROOT / strategy / "manage.py"), *args],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": f"{strategy}.settings"},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"error: manage.py {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result


def fresh_database(cluster: Cluster, strategy: str, env: dict) -> None:
    """An empty, migrated database for the strategy (and none of its tenants' databases)."""
    import psycopg
    from psycopg import sql

    name = f"tenancy_{strategy}"
    with psycopg.connect(cluster.admin_url(), autocommit=True) as admin:
        for (each,) in admin.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
            [name, name.replace("_", r"\_") + r"\_%"],
        ).fetchall():
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(each)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER tenancy_owner").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
        admin.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO tenancy_app").format(sql.Identifier(name))
        )
    manage(strategy, env, "migrate", "--verbosity", "0")


def rows_created(output: str) -> int:
    return int(re.search(r"^Created:.*rows ([\d,]+)$", output, re.M).group(1).replace(",", ""))
