"""Where tenants live on a Citus cluster, and what happens when its nodes change: one node per
tenant, one-task page plans, a stopped worker, a third worker and a rebalance under load."""

from __future__ import annotations

import html
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time

import psycopg
from django.conf import settings
from django.db import connections
from django.test import Client

from bench.server import get, gunicorn
from shared.citus import CitusCluster
from shared.cluster import Cluster, Credentials, bootstrap, create_database, free_port, url
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.env import ROOT
from shared.pages import ACCOUNT_CELL
from shared.tenancy import activate
from tests.citus.conftest import TENANT_TABLES, Load, admin, node_of, served_env, shards_of
from tests.contract.test_faults import forget_connections


def test_a_tenants_rows_all_live_on_one_worker(
    live_db, strategy, tenant_a, tenant_b, citus_cluster
):
    for me in (tenant_a, tenant_b):
        home = node_of(strategy, me.tenant, citus_cluster)
        assert home in {w.port for w in citus_cluster.workers}
        with admin(citus_cluster) as coordinator:
            shards = shards_of(strategy, me.tenant, coordinator)
        subtasks = next(name for table, name, _ in shards if table.endswith("tracker_subtask"))
        for worker in citus_cluster.workers:
            with admin(citus_cluster, worker.port) as node:
                # (Citus hides shards from pg_class listings, not from to_regclass.)
                exists = node.execute("SELECT to_regclass(%s)", [subtasks]).fetchone()[0]
                if not exists:
                    rows = 0
                elif strategy.name == "rls":  # a shard holds several accounts: count A's
                    rows = node.execute(
                        f'SELECT count(*) FROM "{subtasks}" WHERE account_id = %s', [me.tenant.pk]
                    ).fetchone()[0]
                else:  # the schema is the tenant
                    rows = node.execute(f"SELECT count(*) FROM {subtasks}").fetchone()[0]
            expected = len(me.ids["subtask"]) if worker.port == home else 0
            assert rows == expected, (me.slug, worker.port, home)


def test_the_list_page_is_a_one_task_plan_for_every_tenant(live_db, strategy, one_per_worker):
    """Every statement of the list page, EXPLAINed as the runtime role inside the tenant's
    transaction: the page with its count (one statement), and the count alone (asked for a
    page past the end). Citus sends each to one node."""
    plans: list[str] = []

    def explain_first(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT") and any(t in sql for t in TENANT_TABLES):
            execute(f"EXPLAIN {sql}", params, many, context)
            plans.append("\n".join(row[0] for row in context["cursor"].fetchall()))
        return execute(sql, params, many, context)

    for tenant in one_per_worker.values():
        plans.clear()
        with connections[RUNTIME_ALIAS].execute_wrapper(explain_first):
            host = f"{tenant.slug}.localhost"
            assert Client().get("/subtasks/", headers={"host": host}).status_code == 200
            past_the_end = Client().get("/subtasks/?page=9999", headers={"host": host})
            assert past_the_end.status_code in (200, 404)
        assert len(plans) >= 2, "the page with its count, then the count alone"
        for plan in plans:
            counts = [int(n) for n in re.findall(r"Task Count: (\d+)", plan)]
            assert counts and all(n == 1 for n in counts), f"{tenant.slug}:\n{plan}"


def test_a_stopped_worker_fails_only_its_tenants_and_they_come_back(
    live_db, strategy, one_per_worker, citus_cluster
):
    (down_port, down), (_, up) = sorted(one_per_worker.items())[:2]
    worker = next(w for w in citus_cluster.workers if w.port == down_port)
    with gunicorn(f"{strategy.name}.wsgi", served_env(), workers=2) as (port, _):
        assert get(port, f"{down.slug}.localhost", "/subtasks/")[0] == 200
        worker.stop()
        try:
            answers = []
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                answers.append(("down", get(port, f"{down.slug}.localhost", "/subtasks/")))
                answers.append(("up", get(port, f"{up.slug}.localhost", "/subtasks/")))
        finally:
            worker.start()
        assert {status for which, (status, _) in answers if which == "down"} == {503}
        served = [(status, body) for which, (status, body) in answers if which == "up"]
        assert {status for status, _ in served} == {200}
        assert all(
            {html.unescape(c) for c in ACCOUNT_CELL.findall(body)} == {up.name}
            for _, body in served
        )
        deadline = time.monotonic() + 30
        while get(port, f"{down.slug}.localhost", "/subtasks/")[0] != 200:
            assert time.monotonic() < deadline, f"{down.slug} did not come back"
            time.sleep(0.5)
    forget_connections()  # this process's connections may have met the stopped worker


def _manage(strategy: str, env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / strategy / "manage.py"), *args],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )


def test_a_third_worker_and_a_rebalance_under_load(live_db, strategy, citus_cluster, tmp_path):
    """A database of its own, eight tenants served under load while a third worker joins and
    Citus moves shards onto it: no request fails, no page shows another tenant's rows."""
    runtime, owner = settings.DATABASES[RUNTIME_ALIAS], settings.DATABASES[OWNER_ALIAS]
    credentials = Credentials(owner["PASSWORD"], runtime["PASSWORD"])
    name = f"{runtime['NAME']}_rebalance"
    coordinator = citus_cluster.coordinator
    third = Cluster(
        coordinator.base.parent / f"worker-{secrets.token_hex(3)}",
        free_port(),
        coordinator.settings,
    )
    grown = CitusCluster(coordinator, [*citus_cluster.workers, third])
    third.init(coordinator.superuser_password)
    third.start()
    try:
        bootstrap(third.admin_url(), credentials)
        for node in grown.nodes:
            create_database(node, name)
        with admin(citus_cluster) as connection:
            # Fewer shards than the default 32: as many moves, done sooner.
            connection.execute(f'ALTER DATABASE "{name}" SET citus.shard_count = 8')
        citus_cluster.prepare_database(
            name, credentials, schema_sharding=strategy.name == "schemas"
        )
        env = served_env(dbname=name)
        _manage(strategy.name, env, "migrate", "--verbosity", "0")
        _manage(strategy.name, env, "createtestdata", "--accounts", "8")
        with psycopg.connect(coordinator.admin_url(name), autocommit=True) as connection:
            table = "tracker_account" if strategy.name == "rls" else "customers_account"
            names = dict(connection.execute(f"SELECT slug || '.localhost', name FROM {table}"))
        with gunicorn(f"{strategy.name}.wsgi", env, workers=2) as (port, _):
            load = Load(port, names)
            with load.running():
                time.sleep(1)
                grown.prepare_node(third, name, credentials)
                with psycopg.connect(coordinator.admin_url(name), autocommit=True) as connection:
                    grown.add_worker(connection, third)
                    connection.execute("SELECT citus_rebalance_start()")
                    connection.execute("SELECT citus_rebalance_wait()")
                    moved = connection.execute(
                        "SELECT count(*) FROM citus_shards WHERE nodeport = %s", [third.port]
                    ).fetchone()[0]
                time.sleep(1)
        print(f"rebalance onto a third worker ({moved} shards moved there): {load.summary()}")
        assert moved > 0
        assert len(load.answers) > 50
        assert not load.failed(), load.failed()[:5]
        assert not load.wrong(), load.wrong()[:5]
    finally:
        grown.drop_database(name)
        third.stop()
        shutil.rmtree(third.base, ignore_errors=True)


def test_another_tenants_values_never_show_in_activity_views(
    live_db, strategy, tenant_a, citus_cluster
):
    """A tenant's query, watched from another session of the runtime role (which serves every
    tenant) on every node: the coordinator shows $1 where the value was, the workers, to which
    Citus sends the values bound into the text, show the runtime role's sessions no text."""
    secret = f"needle-{secrets.token_hex(4)}"
    subtask = strategy.model("subtask")
    done, errors = threading.Event(), []

    def victim() -> None:
        try:
            with activate(tenant_a.tenant):
                rows = subtask.objects.exclude(name__contains=secret)
                list(rows.extra(select={"nap": "pg_sleep(0.05)"}))  # a while on the worker
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()
            done.set()

    runtime = settings.DATABASES[RUNTIME_ALIAS]
    nodes = [citus_cluster.coordinator, *citus_cluster.workers]
    watchers = [
        psycopg.connect(
            url(runtime["USER"], runtime["PASSWORD"], "127.0.0.1", n.port, runtime["NAME"]),
            autocommit=True,
        )
        for n in nodes
    ]
    seen: list[str] = []
    thread = threading.Thread(target=victim)
    thread.start()
    try:
        while not done.is_set():
            for watcher in watchers:
                seen += [
                    query or ""
                    for (query,) in watcher.execute(
                        "SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                        "UNION ALL SELECT query FROM citus_stat_activity "
                        "WHERE global_pid <> citus_backend_gpid()"
                    )
                ]
            time.sleep(0.05)
    finally:
        thread.join()
        for watcher in watchers:
            watcher.close()
    assert not errors, errors
    assert any("pg_sleep" in query for query in seen), "the victim's query was never seen"
    assert [query for query in seen if secret in query] == []
