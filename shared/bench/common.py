"""What every benchmark uses: a private cluster (PostgreSQL's default, durable settings,
removed afterwards), manage.py, a fresh database."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from shared.cluster import (
    OWNER_ROLE,
    RUNTIME_ROLE,
    Cluster,
    Credentials,
    bootstrap,
    temporary_cluster,
)
from shared.env import ROOT


@contextmanager
def private_cluster() -> Iterator[tuple[Cluster, dict[str, str]]]:
    with temporary_cluster(prefix="tenancy-bench-", settings={}) as cluster:
        credentials = Credentials.generate()
        bootstrap(cluster.admin_url(), credentials)
        yield (
            cluster,
            {
                **os.environ,
                **credentials.database_urls("127.0.0.1", cluster.port),
                "TENANCY_ENV_FILE": os.devnull,
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            },
        )


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


def create_database(cluster: Cluster, name: str, template: str = "template1") -> None:
    """A database as the bootstrap makes them: the owner role's, the runtime role may connect,
    nobody else; an older one of the same name is dropped first."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(cluster.admin_url(), autocommit=True) as admin:
        name_, owner, runtime = map(sql.Identifier, (name, OWNER_ROLE, RUNTIME_ROLE))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name_))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                name_, sql.Identifier(template), owner
            )
        )
        admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name_))
        admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(name_, runtime))


def fresh_database(cluster: Cluster, strategy: str, env: dict) -> None:
    """An empty, migrated database for the strategy (and none of its tenants' databases)."""
    import psycopg
    from psycopg import sql

    name = f"tenancy_{strategy}"
    with psycopg.connect(cluster.admin_url(), autocommit=True) as admin:
        for (each,) in admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            [name.replace("_", r"\_") + r"\_%"],
        ).fetchall():
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(each)))
    create_database(cluster, name)
    manage(strategy, env, "migrate", "--verbosity", "0")


def rows_created(output: str) -> int:
    return int(re.search(r"^Created:.*rows ([\d,]+)$", output, re.M).group(1).replace(",", ""))
