"""Behind PgBouncer in transaction mode (tests.run's second pass): why a tenant must never live
in the database session, and proof that this strategy's never does."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from django.conf import settings
from django.db import connections

from shared.cluster import url
from shared.db import RUNTIME_ALIAS
from shared.tenancy import activate

PGBOUNCER_PORT = os.environ.get("TENANCY_PGBOUNCER_PORT")
if not PGBOUNCER_PORT:
    raise RuntimeError("tests/pooler runs through PgBouncer only: use `python -m tests.run`")


def bouncer_url() -> str:
    conf = settings.DATABASES[RUNTIME_ALIAS]
    return url(conf["USER"], conf["PASSWORD"], "127.0.0.1", int(PGBOUNCER_PORT), conf["NAME"])


def test_the_runtime_role_really_goes_through_pgbouncer(runtime_cursor):
    conf = settings.DATABASES[RUNTIME_ALIAS]
    assert conf["PORT"] == PGBOUNCER_PORT
    runtime_cursor.execute("SELECT inet_server_port()")
    assert str(runtime_cursor.fetchone()[0]) != PGBOUNCER_PORT  # the server behind it
    assert conf["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert conf["OPTIONS"]["prepare_threshold"] is None


def test_clients_share_server_connections(live_db):
    clients = [psycopg.connect(bouncer_url(), autocommit=True) for _ in range(4)]
    try:
        pids = [
            {c.execute("SELECT pg_backend_pid()").fetchone()[0] for _ in range(5)} for c in clients
        ]
    finally:
        for c in clients:
            c.close()
    everyone = set().union(*pids)
    # Four clients, at most two server connections between them.
    assert len(everyone) <= 2, pids


def test_a_session_setting_reaches_another_client(live_db, strategy, tenant_a, tenant_b):
    """The leak the per-transaction design prevents: with only one free server connection,
    what one client SETs for its session, the next client's statement runs under."""
    holder = psycopg.connect(bouncer_url())  # holds the other server connection in a transaction
    first = psycopg.connect(bouncer_url(), autocommit=True)
    second = psycopg.connect(bouncer_url(), autocommit=True)
    try:
        holder.execute("SELECT 1")
        first.execute("SELECT set_config('app.demo', 'first', false)")
        assert second.execute("SELECT current_setting('app.demo', true)").fetchone()[0] == "first"
        if strategy.name == "rls":
            # Had the tenant been set for the session, B's next statement would read A's rows.
            first.execute(
                "SELECT set_config('app.account_id', %s, false)", [str(tenant_a.tenant.pk)]
            )
            names = {r[0] for r in second.execute("SELECT name FROM tracker_subtask")}
            assert names and names <= tenant_a.subtask_names
    finally:
        for c in (holder, first, second):
            c.close()


def test_the_stock_django_pgschemas_backend_leaks_here(live_db, strategy, tenant_a, tenant_b):
    """django-pgschemas 1.1.1 sets search_path for the session when a cursor opens. Two
    clients, one free server connection: A's cursor runs its query under B's schema."""
    if strategy.name != "schemas":
        return
    from django_pgschemas.postgresql.base import DatabaseWrapper

    holder = psycopg.connect(bouncer_url())
    conf = {**connections[RUNTIME_ALIAS].settings_dict, "OPTIONS": {"prepare_threshold": None}}
    first, second = DatabaseWrapper(dict(conf), "stock-1"), DatabaseWrapper(dict(conf), "stock-2")
    try:
        holder.execute("SELECT 1")
        with activate(tenant_a.tenant):
            cursor_a = first.cursor()  # SET search_path = tenant_901, public
        with activate(tenant_b.tenant):
            second.cursor().close()  # SET search_path = tenant_902, public, same server connection
        with activate(tenant_a.tenant):
            cursor_a.execute("SELECT name FROM tracker_subtask")
            names = {r[0] for r in cursor_a.fetchall()}
        assert names and names <= tenant_b.subtask_names  # A's request read B's rows
        cursor_a.close()
        # This project's backend, the same steps: A reads A's rows.
        with activate(tenant_a.tenant):
            cursor_a = connections[RUNTIME_ALIAS].cursor()
        with activate(tenant_b.tenant):
            second.cursor().close()
        with activate(tenant_a.tenant):
            cursor_a.execute("SELECT name FROM tracker_subtask")
            assert {r[0] for r in cursor_a.fetchall()} == tenant_a.subtask_names
        cursor_a.close()
    finally:
        holder.close()
        first.close()
        second.close()


def load_app(tmp_path, strategy: str, *changes: str) -> subprocess.CompletedProcess:
    """Load the strategy's WSGI application, as gunicorn does, with settings changed."""
    (tmp_path / "changed_settings.py").write_text(
        f"from {strategy}.settings import *  # noqa\n" + "\n".join(changes) + "\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "changed_settings",
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "RUNTIME_DATABASE_URL": bouncer_url(),
    }
    code = f"import {strategy}.wsgi"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )


def test_this_strategy_starts_behind_pgbouncer(tmp_path, live_db, strategy):
    result = load_app(tmp_path, strategy.name)
    assert result.returncode == 0, result.stderr


def test_a_session_level_backend_refuses_to_start(tmp_path, live_db, strategy):
    stock = {"rls": "django.db.backends.postgresql", "schemas": "django_pgschemas.postgresql"}
    if strategy.name == "multidb":
        # Its tenant is a database, not a setting: Django's own backend holds nothing in the
        # session, and serving with it is allowed.
        result = load_app(
            tmp_path, "multidb", 'DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"'
        )
        assert result.returncode == 0, result.stderr
        return
    result = load_app(
        tmp_path, strategy.name, f'DATABASES["default"]["ENGINE"] = "{stock[strategy.name]}"'
    )
    assert result.returncode != 0
    assert "refusing to serve; tenants could leak" in result.stderr
    assert "tenancy.E003" in result.stderr
    assert "keeps the tenant in the database session" in result.stderr


def test_server_side_cursors_refuse_to_start(tmp_path, live_db, strategy):
    result = load_app(
        tmp_path, strategy.name, 'DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = False'
    )
    assert result.returncode != 0
    assert "tenancy.E002: server-side cursors are enabled behind a transaction pooler" in (
        result.stderr
    )


def test_an_unknown_pooling_mode_is_one_clear_error(tmp_path, live_db, strategy):
    result = load_app(tmp_path, strategy.name, 'TENANCY_RUNTIME_POOLING = "statement"')
    assert result.returncode != 0
    assert "tenancy.E001: RUNTIME_DATABASE_POOLING is 'statement'" in result.stderr


def test_tenant_databases_are_reached_through_pgbouncer_too(live_db, strategy, tenant_a):
    """multidb: each tenant's connections (its own role, its own database) pass through
    PgBouncer as well, which pools them per database and role."""
    if strategy.name != "multidb":
        return
    from multidb.routing import alias_for

    with activate(tenant_a.tenant):
        alias = alias_for(tenant_a.tenant)
        assert connections[alias].settings_dict["PORT"] == PGBOUNCER_PORT
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT current_user, current_database(), inet_server_port()")
            role, database, port = cursor.fetchone()
        names = set(strategy.model("subtask").objects.values_list("name", flat=True))
    assert role == database == tenant_a.tenant.db_name
    assert str(port) != PGBOUNCER_PORT
    assert names == tenant_a.subtask_names
