"""rls on Citus: how the tenant reaches the workers, the tables as distributed, and one large
tenant moved to a shard of its own while it is served."""

from __future__ import annotations

import time

import psycopg
import pytest
from django import db
from django.conf import settings
from django.test import RequestFactory

from bench.server import gunicorn
from rls import citus
from shared import health
from shared.cluster import url
from shared.db import RUNTIME_ALIAS
from shared.db.per_transaction import shard_map_changed
from shared.views import server_error
from tests.citus.conftest import TENANT_TABLES, Load, admin, served_env


def runtime_session() -> psycopg.Connection:
    conf = settings.DATABASES[RUNTIME_ALIAS]
    return psycopg.connect(
        url(conf["USER"], conf["PASSWORD"], conf["HOST"], int(conf["PORT"]), conf["NAME"])
    )


def count_seen(connection: psycopg.Connection, account_id: int) -> int:
    return connection.execute(
        "SELECT count(*) FROM tracker_subtask WHERE account_id = %s", [account_id]
    ).fetchone()[0]


def test_set_config_alone_shows_no_rows_and_set_local_shows_the_tenants(live_db, tenant_a):
    """The fail-closed proof: set_config() stays on the coordinator, so the workers evaluate
    the policies with no tenant and return nothing. rls.db.base must use SET LOCAL."""
    account = tenant_a.tenant.pk
    with runtime_session() as connection:
        connection.execute("SELECT set_config('app.account_id', %s, true)", [str(account)])
        assert connection.execute("SELECT current_setting('app.account_id')").fetchone()[0]
        assert count_seen(connection, account) == 0
        assert connection.execute("SELECT count(*) FROM tracker_task").fetchone()[0] == 0
        connection.rollback()
        # SET LOCAL alone, without propagate_set_commands: not passed on either.
        connection.execute(f"SET LOCAL app.account_id = '{account}'")
        assert count_seen(connection, account) == 0
        connection.rollback()
        citus.set_tenant(connection, str(account))
        assert count_seen(connection, account) == len(tenant_a.ids["subtask"])
        connection.rollback()
        # And with no tenant, nothing.
        assert count_seen(connection, account) == 0


def test_every_shard_keeps_row_level_security_and_the_composite_keys(live_db, citus_cluster):
    for worker in citus_cluster.workers:
        with admin(citus_cluster, worker.port) as node:
            node.execute("SET citus.show_shards_for_app_name_prefixes = '*'")
            shards = node.execute(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                "EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid "
                "        AND p.polqual IS NOT NULL AND p.polwithcheck IS NOT NULL) "
                "FROM pg_class c WHERE c.relkind = 'r' AND c.relname ~ %s",
                [rf"^({'|'.join(TENANT_TABLES)})_\d+$"],
            ).fetchall()
            assert len(shards) >= len(TENANT_TABLES)
            assert [s for s in shards if not (s[1] and s[2] and s[3])] == []
            keys = node.execute(
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND "
                "(conname LIKE 'task_project_same_account%' "
                "OR conname LIKE 'subtask_task_same_account%')"
            ).fetchone()[0]
            tasks = sum(1 for s in shards if s[0].startswith("tracker_task_"))
            assert keys >= 2 * tasks > 0


def test_the_account_table_is_a_reference_table_and_the_rest_are_colocated(live_db, citus_cluster):
    with admin(citus_cluster) as coordinator:
        kinds = dict(
            coordinator.execute(
                "SELECT table_name::text, citus_table_type || ':' || distribution_column || ':' "
                "|| colocation_id FROM citus_tables"
            ).fetchall()
        )
    assert kinds["tracker_account"].startswith("reference:")
    tenant_tables = {kinds[t] for t in TENANT_TABLES}
    assert len(tenant_tables) == 1 and next(iter(tenant_tables)).startswith(
        "distributed:account_id:"
    )


def test_a_large_tenant_moves_to_a_shard_of_its_own_while_served(
    live_db, strategy, one_per_worker, tenant_a, citus_cluster, tmp_path
):
    """Both tenants, one after the other, each while both are served. Citus gives the tenant's
    rows a new shard id; a statement planned against the old one just before is refused, and
    run again by shared.db.per_transaction: no request may fail."""
    tenants = list(one_per_worker.values())
    assert tenant_a.tenant in tenants
    names = {f"{t.slug}.localhost": t.name for t in tenants}
    log = tmp_path / "gunicorn.log"
    alone = []
    with gunicorn("rls.wsgi", served_env(), workers=2, log=log) as (port, _):
        load = Load(port, names)
        with load.running(), admin(citus_cluster) as coordinator:
            for tenant in tenants:
                time.sleep(1)
                coordinator.execute(
                    "SELECT isolate_tenant_to_new_shard('tracker_user', %s, 'CASCADE')",
                    [tenant.pk],
                )
                alone += coordinator.execute(
                    "SELECT shardminvalue = shardmaxvalue FROM pg_dist_shard WHERE shardid = "
                    "get_shard_id_for_distribution_column('tracker_subtask', %s)",
                    [tenant.pk],
                ).fetchone()
            time.sleep(1)
    served = log.read_text()
    print(
        f"isolate_tenant_to_new_shard under load: {load.summary()}; "
        f"{served.count('Ran a statement again')} statements run again"
    )
    assert alone == [True, True], "a tenant's shard covers other hash values too"
    assert len(load.answers) > 40
    assert not load.failed(), (load.failed()[:5], served[-3000:])
    assert not load.wrong(), load.wrong()[:5]
    assert "Traceback" not in served, served[-3000:]


def test_a_gone_shard_is_told_apart_and_is_a_503_where_it_cannot_be_run_again(
    live_db, citus_cluster, tenant_a, monkeypatch
):
    """The retry above knows Citus's error by its words: this fails if a Citus upgrade
    changes them. Inside a transaction of the view's own, the statement cannot be run again
    alone, and the page says to try again."""
    with admin(citus_cluster) as coordinator, pytest.raises(psycopg.errors.InternalError_) as gone:
        coordinator.execute("SELECT get_colocated_shard_array(%s)", [9_999_999])
    assert shard_map_changed(gone.value)
    monkeypatch.setattr(health, "_errors", {})  # what the 503 page records stays in this test
    request = RequestFactory().get("/subtasks/", HTTP_HOST=f"{tenant_a.slug}.localhost")
    request.tenant = tenant_a.tenant  # type: ignore[attr-defined]
    try:
        raise db.InternalError(str(gone.value)) from gone.value  # as Django wraps it
    except db.InternalError:
        response = server_error(request)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert f"The data of “{tenant_a.slug}” was being moved" in response.content.decode()


def test_an_id_a_tenant_chose_never_makes_dropping_it_delete_anothers_rows(
    live_db, strategy, tenant_a
):
    """On Citus the runtime role may write an id (rls.citus); an attacker's rows carrying the
    ids of A's rows must not take A's rows with them when the attacker's tenant is dropped."""
    from shared.testdata import Volumes, generate_tenant

    attacker = strategy.load_tenant(
        generate_tenant(971, volumes=Volumes((1, 1), (1, 1), (1, 1), (1, 1)))
    )
    a_task, a_subtask = tenant_a.ids["task"][0], tenant_a.ids["subtask"][0]
    try:
        with runtime_session() as connection:
            citus.set_tenant(connection, str(attacker.pk))
            project = connection.execute("SELECT id FROM tracker_project").fetchone()[0]
            connection.execute(
                "INSERT INTO tracker_task (id, account_id, project_id, name, is_complete, "
                "details) VALUES (%s, %s, %s, 'copy', false, '')",
                [a_task, attacker.pk, project],
            )
            connection.execute(
                "INSERT INTO tracker_subtask (id, account_id, task_id, name, is_complete, "
                "details) VALUES (%s, %s, %s, 'copy', false, '')",
                [a_subtask, attacker.pk, a_task],
            )
            connection.commit()
    finally:
        strategy.drop_tenant(attacker.slug)
    assert strategy.remains(attacker) == []
    with runtime_session() as connection:
        citus.set_tenant(connection, str(tenant_a.tenant.pk))
        tasks = connection.execute("SELECT count(*) FROM tracker_task").fetchone()[0]
        subtasks = connection.execute("SELECT count(*) FROM tracker_subtask").fetchone()[0]
    assert (tasks, subtasks) == (len(tenant_a.ids["task"]), len(tenant_a.ids["subtask"]))


def test_the_task_worker_refuses_to_start_where_pages_would_be_blank():
    """rls.E011 binds the worker as it binds the web server: with TENANCY_CITUS off, a task
    would run on blank tables and report success."""
    import os
    import subprocess
    import sys

    from shared.env import ROOT
    from tests.citus.conftest import served_env

    done = subprocess.run(
        [sys.executable, str(ROOT / "rls" / "manage.py"), "runworker", "--batch"],
        env={**served_env(), "TENANCY_CITUS": "0", "DJANGO_SETTINGS_MODULE": "rls.settings"},
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "rls.E011" in done.stderr and "Traceback" not in done.stderr
    assert os.environ.get("TENANCY_CITUS") == "1"  # the pass itself runs with it on
