"""What every benchmark uses: a private cluster (PostgreSQL's default, durable settings,
removed afterwards), manage.py and modules run inside a strategy's Django, a fresh database,
the facts of the machine."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psutil
import psycopg
from psycopg import sql

from shared.citus import DATABASES, CitusCluster, temporary_citus_cluster
from shared.cluster import (
    Cluster,
    ClusterError,
    Credentials,
    bootstrap,
    create_database,
    temporary_cluster,
)
from shared.env import ROOT


@contextmanager
def private_cluster() -> Iterator[tuple[Cluster, dict[str, str]]]:
    with temporary_cluster(prefix="tenancy-bench-", settings={}) as cluster:
        credentials = Credentials.generate()
        bootstrap(cluster.admin_url(), credentials)
        yield cluster, bench_env(cluster, credentials)


@contextmanager
def private_citus_cluster() -> Iterator[tuple[CitusCluster, dict[str, str], Credentials]]:
    """A Citus coordinator and two workers, durable settings like ``private_cluster``'s, the
    roles on every node and the strategies' databases prepared; the environment of the
    projects' commands and servers on its coordinator."""
    with temporary_citus_cluster(prefix="tenancy-bench-citus-", settings={}) as citus:
        credentials = Credentials.generate()
        for node in citus.nodes:
            bootstrap(node.admin_url(), credentials)
        for dbname, schema_sharding in DATABASES.items():
            citus.prepare_database(dbname, credentials, schema_sharding=schema_sharding)
        env = {**bench_env(citus.coordinator, credentials), "TENANCY_CITUS": "1"}
        yield citus, env, credentials


def bench_env(cluster: Cluster, credentials: Credentials) -> dict[str, str]:
    """The environment of the projects' commands and servers on ``cluster``, and on nothing
    else: no .env file is read."""
    return {
        **os.environ,
        **credentials.database_urls("127.0.0.1", cluster.port),
        "TENANCY_ENV_FILE": os.devnull,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
    }


def on_private_cluster(
    measure: Callable[[Cluster, dict[str, str], argparse.Namespace], None],
    args: argparse.Namespace,
) -> int:
    """A benchmark's main: ``measure`` on a private cluster; a cluster that cannot start is
    one line and exit status 1."""
    try:
        with private_cluster() as (cluster, env):
            measure(cluster, env, args)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def run(main: Callable[[], int]) -> int:
    """Run a benchmark's main(); Ctrl-C is a clean stop (the context managers have stopped every
    server and cluster by the time it arrives here), said in one line."""
    try:
        return main()
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every server and cluster this run started is stopped", file=sys.stderr
        )
        return 130


def manage(strategy: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _in_django(strategy, env, [str(ROOT / strategy / "manage.py"), *args])


def in_django(strategy: str, env: dict[str, str], module: str, *args: str) -> Any:
    """Run ``python -m module args`` with the strategy's settings; what it printed, as JSON."""
    return json.loads(_in_django(strategy, env, ["-m", module, *args]).stdout)


def _in_django(
    strategy: str, env: dict[str, str], args: list[str]
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": f"{strategy}.settings", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result


def provision(env: dict[str, str], strategy: str, count: int) -> tuple[list[float], list[float]]:
    """Seconds to create each of ``count`` tenants (and, in schemas, to migrate up to 20
    schemas instead of cloning them): bench/provision.py."""
    times, migrated = in_django(
        strategy, env, "bench.provision", "--count", str(count), "--compare", str(min(count, 20))
    )
    return times, migrated


# The variables that name the two roles' server (and, with a path, the database).
DATABASE_URLS = ("OWNER_DATABASE_URL", "RUNTIME_DATABASE_URL")


def on_database(env: dict[str, str], name: str) -> dict[str, str]:
    """``env`` with both roles' URLs naming database ``name`` (a multidb catalogue names its
    tenants' databases after itself)."""
    return {**env, **{key: env[key].rstrip("/") + f"/{name}" for key in DATABASE_URLS}}


def fresh_database(cluster: Cluster, strategy: str, env: dict, name: str = "") -> None:
    """An empty, migrated database for the strategy (``name``: the one ``env``'s URLs name):
    none of its tenants' databases, nor the login roles multidb gives them (named like their
    databases), are left."""
    name = name or f"tenancy_{strategy}"
    pattern = name.replace("_", r"\_") + r"\_%"
    with psycopg.connect(cluster.admin_url(), autocommit=True) as admin:
        for (each,) in admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [pattern]
        ).fetchall():
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(each)))
        for (role,) in admin.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s "
            "AND pg_has_role(oid, 'tenancy_tenant', 'MEMBER')",
            [pattern],
        ).fetchall():
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    create_database(cluster, name)
    manage(strategy, env, "migrate", "--verbosity", "0")


def rows_created(output: str) -> int:
    match = re.search(r"^Created:.*rows ([\d,]+)$", output, re.M)
    if not match:
        raise SystemExit(f"error: createtestdata printed no count of rows:\n{output[-500:]}")
    return int(match.group(1).replace(",", ""))


def seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*(s|m|h)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use 90, 90s, 2m)")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def publish(document: dict[str, Any], args: argparse.Namespace) -> None:
    """Keep a run's results document (``results/<kind>-<time>.json``) and print its table;
    unless ``--no-report``, also its charts, the copy beside them that the slides read, and
    the README's table."""
    from bench.tables import TABLES, markdown, shown

    kind = document["kind"]
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    table = markdown(TABLES[kind](document))
    say("\n" + table)
    say(f"\nResults: {shown(out)}")
    if args.no_report:
        return
    from bench.report import draw

    for line in draw(document, args.figures, args.readme):
        say(line)


def say(text: str) -> None:
    print(text, flush=True)


def environment_facts(cluster: Cluster) -> dict:
    import django
    import gunicorn
    import locust

    with psycopg.connect(cluster.admin_url()) as admin:
        row = admin.execute("SHOW server_version").fetchone()
    return {
        "machine": {
            "system": f"{platform.system()} {platform.release()}",
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "versions": {
            "python": platform.python_version(),
            "django": django.get_version(),
            "psycopg": psycopg.__version__,
            "postgresql": row[0] if row else "?",
            "gunicorn": gunicorn.__version__,
            "locust": locust.__version__,
        },
    }
