"""PgBouncer in transaction mode in front of the coordinator: the tenant, set per transaction
(SET LOCAL in rls, search_path in schemas), still reaches the worker that holds its rows."""

from __future__ import annotations

import html
import shutil
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

import tests.pgbouncer
from bench.server import get, gunicorn
from shared.cluster import url
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.pages import ACCOUNT_CELL
from tests.citus.conftest import served_env


def test_pages_through_pgbouncer_show_each_tenant_its_own_rows(
    live_db, strategy, one_per_worker, citus_cluster
):
    if tests.pgbouncer.find() is None:
        pytest.fail("PgBouncer is NOT INSTALLED (Debian: apt-get install pgbouncer)")
    runtime, owner = settings.DATABASES[RUNTIME_ALIAS], settings.DATABASES[OWNER_ALIAS]
    workdir = Path(tempfile.mkdtemp(prefix="tenancy-pgbouncer-"))
    workdir.chmod(0o755)  # PgBouncer runs as another OS user when we are root
    bouncer = tests.pgbouncer.PgBouncer(
        workdir / "pgbouncer",
        "127.0.0.1",
        citus_cluster.coordinator.port,
        {runtime["USER"]: runtime["PASSWORD"], owner["USER"]: owner["PASSWORD"]},
    )
    bouncer.start()
    try:
        env = served_env(
            RUNTIME_DATABASE_URL=url(
                runtime["USER"], runtime["PASSWORD"], "127.0.0.1", bouncer.port, runtime["NAME"]
            ),
            RUNTIME_DATABASE_POOLING="transaction",
        )
        tenants = list(one_per_worker.values())
        with gunicorn(f"{strategy.name}.wsgi", env, workers=2) as (port, _):
            for _ in range(10):  # more requests than PgBouncer has server connections
                for tenant in tenants:
                    status, body = get(port, f"{tenant.slug}.localhost", "/subtasks/")
                    assert status == 200
                    assert {html.unescape(c) for c in ACCOUNT_CELL.findall(body)} == {tenant.name}
    finally:
        bouncer.stop()
        shutil.rmtree(workdir, ignore_errors=True)
