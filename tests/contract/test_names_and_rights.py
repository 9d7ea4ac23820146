"""Names that could map onto something that is not a tenant's, and what the runtime role may
touch beyond its own tenant's rows: the careless operator's and the hostile tenant's cases."""

from __future__ import annotations

import html
import json
import re
import secrets
import subprocess
import sys
import threading
from dataclasses import replace

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections, router, transaction
from django.test import Client, override_settings

from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.env import ROOT
from shared.slugs import SlugRefused
from shared.strategy import TenantExists
from shared.tenancy import activate
from shared.testdata import Volumes, generate_tenant
from tests.contract.test_faults import app_env

NEW = "tenant-778"
TINY = Volumes(users=(1, 1), projects=(1, 1), tasks=(1, 1), subtasks=(1, 2))


def runtime_slug() -> str:
    return settings.DATABASES[RUNTIME_ALIAS]["USER"].replace("_", "-")


def owner_slug() -> str:
    return settings.DATABASES[OWNER_ALIAS]["USER"].replace("_", "-")


def refused_names() -> list[str]:
    return [
        "public",  # schemas: would drop the tenant registry
        "reference",  # schemas: would drop the clone reference
        "template",  # multidb: would be the template every tenant is copied from
        "information-schema",
        "pg-catalog",
        "pg-toast",
        "postgres",
        "template0",
        "template1",
        runtime_slug(),  # schemas: on the runtime role's default search_path
        owner_slug(),
        "37signals",  # schemas: django-pgschemas refuses the schema name
        "Tenant-9",
        "a_b",
        "-a",
        "a-",
        "a" * 64,
        "",
        "a.b",
        "public\n",  # "$" in a pattern matches before a final newline
        "acme\n",
    ]


def server_state(strategy) -> dict:
    """Everything a refused create could have touched, read as the owner."""
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute("SELECT array_agg(nspname ORDER BY nspname) FROM pg_namespace")
        schemas = cursor.fetchone()[0]
        cursor.execute("SELECT array_agg(datname ORDER BY datname) FROM pg_database")
        databases = cursor.fetchone()[0]
        cursor.execute("SELECT array_agg(rolname ORDER BY rolname) FROM pg_roles")
        roles = cursor.fetchone()[0]
    return {
        "schemas": schemas,
        "databases": databases,
        "roles": roles,
        "tenants": [t.slug for t in strategy.list_tenants()],
        "rows": strategy.row_counts(),
    }


def alias_for(strategy, tenant) -> str:
    with activate(tenant):
        return router.db_for_write(strategy.model("subtask"))


def snapshot(strategy, tenant) -> dict[str, set]:
    with activate(tenant):
        return {
            name: set(strategy.model(name).objects.values_list("name", flat=True))
            for name in ("project", "task", "subtask")
        }


# -- reserved-slugs ------------------------------------------------------------------------


@pytest.mark.case("reserved-slugs")
def test_reserved_and_unsafe_names_are_refused_before_anything_is_created(
    live_db, strategy, tenant_a
):
    before = server_state(strategy)
    for slug in refused_names():
        with pytest.raises(SlugRefused):
            strategy.create_tenant(slug, "Refused")
        with pytest.raises(SlugRefused):
            strategy.load_tenant(replace(generate_tenant(5, volumes=TINY), slug=slug))
    assert server_state(strategy) == before
    # The tenants that were there are served as before.
    response = Client().get("/subtasks/", headers={"host": tenant_a.host})
    assert response.status_code == 200


@pytest.mark.case("reserved-slugs")
@pytest.mark.parametrize("slug", ["public", "reference", "template", "tenancy-app", "37signals"])
def test_createtenant_refuses_in_one_line(live_db, strategy, tenant_a, slug):
    before = server_state(strategy)
    with pytest.raises(CommandError) as refused:
        call_command("createtenant", slug)
    message = str(refused.value)
    assert "\n" not in message
    assert "refused" in message and "nothing was changed" in message
    assert server_state(strategy) == before
    assert Client().get("/subtasks/", headers={"host": tenant_a.host}).status_code == 200


@pytest.mark.case("reserved-slugs")
def test_the_runtime_role_finds_nothing_of_its_own_name_on_its_search_path(live_db):
    with connections[RUNTIME_ALIAS].cursor() as cursor:
        cursor.execute("SELECT current_schemas(false)::text[], current_setting('search_path')")
        schemas, path = cursor.fetchone()
    assert "$user" not in path
    assert settings.DATABASES[RUNTIME_ALIAS]["USER"] not in schemas


# -- create-existing -----------------------------------------------------------------------


@pytest.mark.case("create-existing")
def test_creating_an_existing_tenant_changes_nothing(live_db, strategy, tenant_a):
    before, rows = server_state(strategy), snapshot(strategy, tenant_a.tenant)
    with pytest.raises(TenantExists):
        strategy.create_tenant(tenant_a.slug, "Taken Over")
    with pytest.raises(TenantExists):
        strategy.load_tenant(generate_tenant(901, volumes=TINY))
    with pytest.raises(CommandError, match="exists already; nothing was changed"):
        call_command("createtenant", tenant_a.slug)
    assert server_state(strategy) == before
    assert snapshot(strategy, tenant_a.tenant) == rows
    assert strategy.get_tenant(tenant_a.slug).name == tenant_a.tenant.name


@pytest.mark.case("create-existing")
def test_the_registry_decides_even_after_the_base_domain_changes(live_db, strategy, tenant_a):
    rows = snapshot(strategy, tenant_a.tenant)
    with override_settings(TENANCY_BASE_DOMAIN="example.test"), pytest.raises(TenantExists):
        strategy.create_tenant(tenant_a.slug, "Taken Over")
    assert snapshot(strategy, tenant_a.tenant) == rows


@pytest.mark.case("create-existing")
def test_two_concurrent_creates_of_one_slug_make_one_tenant(live_db, strategy):
    if strategy.get_tenant(NEW):
        strategy.drop_tenant(NEW)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create(name: str) -> None:
        try:
            barrier.wait(10)
            strategy.create_tenant(NEW, name)
            outcomes.append("created")
        except TenantExists:
            outcomes.append("exists")
        except Exception as exc:  # anything else is a failure of this test
            outcomes.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(n,)) for n in ("First", "Second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert sorted(outcomes) == ["created", "exists"]
        assert [t.slug for t in strategy.list_tenants()].count(NEW) == 1
        assert Client().get("/subtasks/", headers={"host": f"{NEW}.localhost"}).status_code == 200
    finally:
        strategy.drop_tenant(NEW)


# -- shared-objects-read-only --------------------------------------------------------------


def shared_objects(strategy, tenant) -> list[tuple[str, str]]:
    """(connection alias, statement) pairs: objects that are not the tenant's own rows, or that
    other tenants are made from. Each must be refused to the runtime role."""
    own = alias_for(strategy, tenant)
    if strategy.name == "rls":
        return [
            (own, f"UPDATE tracker_account SET slug = 'taken-over' WHERE id = {tenant.pk}"),
            (own, f"UPDATE tracker_account SET name = 'Someone Else' WHERE id = {tenant.pk}"),
            (own, "INSERT INTO tracker_account (slug, name) VALUES ('planted', 'Planted')"),
            (own, f"DELETE FROM tracker_account WHERE id = {tenant.pk}"),
            (own, "SELECT last_value FROM tracker_subtask_id_seq"),
            (own, "SELECT last_value FROM tracker_account_id_seq"),
            (own, "SELECT pg_sequence_last_value('tracker_subtask_id_seq')"),
            (own, "SELECT count(*) FROM django_migrations"),
        ]
    if strategy.name == "schemas":
        schema = tenant.schema_name
        return [
            (own, "SELECT count(*) FROM reference.tracker_subtask"),
            (own, "INSERT INTO reference.tracker_project (name, details) VALUES ('planted', '')"),
            (own, f"SELECT count(*) FROM {schema}.django_migrations"),
            (
                own,
                f"INSERT INTO {schema}.django_migrations (app, name, applied) "
                "VALUES ('tracker', '9999_planted', now())",
            ),
            (own, f"DELETE FROM {schema}.django_migrations"),
            (own, "UPDATE public.customers_account SET name = 'Someone Else'"),
            (own, "UPDATE public.customers_domain SET domain = 'taken.localhost'"),
            (own, "SELECT count(*) FROM public.django_migrations"),
        ]
    return [  # multidb
        (
            own,
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('tracker', '9999_planted', now())",
        ),
        (own, "DELETE FROM django_migrations"),
        (RUNTIME_ALIAS, "UPDATE catalogue_tenant SET name = 'Someone Else'"),
        (RUNTIME_ALIAS, "UPDATE catalogue_tenant SET db_name = 'tenancy_multidb_template'"),
        (RUNTIME_ALIAS, "INSERT INTO catalogue_tenant (slug) VALUES ('planted')"),
    ]


@pytest.mark.case("shared-objects-read-only")
def test_the_runtime_role_cannot_write_what_other_tenants_share(live_db, strategy, tenant_b):
    allowed = []
    with activate(tenant_b.tenant):
        for alias, statement in shared_objects(strategy, tenant_b.tenant):
            with transaction.atomic(using=alias):
                try:
                    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                        cursor.execute(statement)
                    allowed.append(statement)
                except DatabaseError as exc:
                    assert getattr(exc.__cause__, "sqlstate", None) == "42501", (statement, exc)
                transaction.set_rollback(True, using=alias)
    assert allowed == []


@pytest.mark.case("shared-objects-read-only")
def test_a_tenant_created_later_starts_from_nothing_the_runtime_role_wrote(
    live_db, strategy, tenant_b
):
    if strategy.get_tenant(NEW):
        strategy.drop_tenant(NEW)
    created = strategy.create_tenant(NEW, "Later")
    try:
        with activate(created):
            for name in ("user", "project", "task", "subtask"):
                assert strategy.model(name).objects.count() == 0
        assert strategy.row_counts([NEW]) == dict.fromkeys(
            ("account", "user", "project", "task", "subtask"), 0
        ) | {"account": 1}
    finally:
        strategy.drop_tenant(NEW)


# -- key-probes ------------------------------------------------------------------------------


def _insert_outcome(strategy, tenant, pk) -> tuple:
    subtask, task = strategy.model("subtask"), strategy.model("task")
    alias = alias_for(strategy, tenant)
    with transaction.atomic(using=alias), activate(tenant):
        own_task = task.objects.order_by("pk").first()
        try:
            with transaction.atomic(using=alias):
                subtask.objects.create(pk=pk, task=own_task, name="probe")
                connections[alias].check_constraints()
        except DatabaseError as exc:
            return type(exc).__name__, getattr(exc.__cause__, "sqlstate", None)
        finally:
            transaction.set_rollback(True, using=alias)
    return (None, None)


@pytest.mark.case("key-probes")
def test_a_primary_key_of_another_tenant_tells_nothing(live_db, strategy, tenant_a, tenant_b):
    """B inserts a row with one of A's ids and with an id nobody has: the answers must be the
    same, or B could map A's live ids (and see A delete them)."""
    only_a = sorted(set(tenant_a.ids["subtask"]) - set(tenant_b.ids["subtask"]))
    if strategy.name == "rls":
        assert only_a, "one sequence for all tenants: A's ids are not B's"
    if only_a:
        for pk in only_a[:3]:
            assert _insert_outcome(strategy, tenant_b.tenant, pk) == _insert_outcome(
                strategy, tenant_b.tenant, 10**12
            )
    else:  # separate sequences: every id of A's is one of B's own rows, reaching B's only
        assert set(tenant_a.ids["subtask"]) <= set(tenant_b.ids["subtask"])


# -- statistics-views ------------------------------------------------------------------------


@pytest.mark.case("statistics-views")
def test_another_tenants_query_values_are_not_in_pg_stat_activity(
    live_db, strategy, tenant_a, tenant_b
):
    probe = f"probe-{secrets.token_hex(8)}"
    ran, release = threading.Event(), threading.Event()

    def a_queries() -> None:
        # A request of A's in progress (requests are atomic): its last query stays on show.
        try:
            alias = alias_for(strategy, tenant_a.tenant)
            with activate(tenant_a.tenant), transaction.atomic(using=alias):
                strategy.model("subtask").objects.filter(name=probe).exists()
                ran.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=a_queries)
    thread.start()
    try:
        assert ran.wait(30)
        with activate(tenant_b.tenant):
            alias = alias_for(strategy, tenant_b.tenant)
            with connections[alias].cursor() as cursor:
                cursor.execute(
                    "SELECT coalesce(string_agg(query, ' | '), '') FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid()"
                )
                shown = cursor.fetchone()[0]
    finally:
        release.set()
        thread.join(30)
    assert probe not in shown
    # Nor the value that selects A's rows.
    assert not re.search(r"set_config\('(app\.account_id|search_path)',\s*'", shown), shown


# -- the web server without the owner's keys -------------------------------------------------

SERVE = """
import io, json, sys
from wsgiref.util import setup_testing_defaults
from {strategy}.wsgi import application
from django.conf import settings

environ = {{"HTTP_HOST": "{host}", "PATH_INFO": "/subtasks/"}}
setup_testing_defaults(environ)
status = []
body = b"".join(application(environ, lambda s, h, *a: status.append(s)))
print(json.dumps({{"status": status[0], "aliases": sorted(settings.DATABASES),
                  "body": body.decode()}}))
"""


@pytest.mark.case("web-without-owner")
@pytest.mark.parametrize("owner_in_environment", [False, True], ids=["unset", "set"])
def test_the_web_server_serves_without_the_owner_role(
    live_db, strategy, tenant_a, owner_in_environment
):
    env = app_env()
    if not owner_in_environment:
        del env["OWNER_DATABASE_URL"]
    code = SERVE.format(strategy=strategy.name, host=tenant_a.host)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["status"].startswith("200")
    assert html.escape(tenant_a.tenant.name) in served["body"]
    # Even where the variable is set (as in .env), the web process holds no owner connection.
    assert OWNER_ALIAS not in served["aliases"]


@pytest.mark.case("web-without-owner")
def test_a_command_that_needs_the_owner_says_so_in_one_line(live_db, strategy):
    env = app_env()
    del env["OWNER_DATABASE_URL"]
    result = subprocess.run(
        [sys.executable, str(ROOT / strategy.name / "manage.py"), "createtenant", "tenant-779"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "OWNER_DATABASE_URL" in result.stderr
    assert strategy.get_tenant("tenant-779") is None


# -- the tenant index ------------------------------------------------------------------------


@pytest.mark.case("tenant-index")
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "localhost:8000"])
def test_with_the_index_off_the_bare_host_lists_nobody(live_db, tenant_a, tenant_b, host):
    with override_settings(TENANCY_INDEX=False):
        response = Client().get("/", headers={"host": host})
    assert response.status_code == 404
    body = response.content.decode()
    for tenant in (tenant_a, tenant_b):
        assert tenant.slug not in body and tenant.tenant.name not in body
    # Still on for localhost by default, so a developer sees the tenants.
    assert Client().get("/", headers={"host": host}).status_code == 200


@pytest.mark.case("tenant-index")
@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"TENANCY_BASE_DOMAIN": "localhost"}, True),
        ({"TENANCY_BASE_DOMAIN": "tasks.example.com"}, False),
        ({"TENANCY_BASE_DOMAIN": "tasks.example.com", "TENANCY_INDEX": "on"}, True),
        ({"TENANCY_BASE_DOMAIN": "localhost", "TENANCY_INDEX": "off"}, False),
    ],
)
def test_the_index_is_on_by_default_only_for_localhost(strategy, environment, expected):
    env = {**app_env(), **environment}
    code = f"import {strategy.name}.settings as s; print(s.TENANCY_INDEX)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.stdout.strip() == str(expected), result.stderr


# -- state keyed by the tenant's permanent id --------------------------------------------------


@pytest.mark.case("cache-keys")
def test_a_slug_created_again_is_another_tenant_to_the_cache(live_db, strategy):
    if strategy.get_tenant(NEW):
        strategy.drop_tenant(NEW)
    first = strategy.create_tenant(NEW, "First")
    try:
        with activate(first):
            cache.set("greeting", "first's", 60)
        strategy.drop_tenant(NEW)
        second = strategy.create_tenant(NEW, "Second")
        assert second.pk != first.pk
        with activate(strategy.get_tenant(NEW)):
            assert cache.get("greeting") is None
    finally:
        cache.clear()
        if strategy.get_tenant(NEW):
            strategy.drop_tenant(NEW)


# -- small ones ------------------------------------------------------------------------------


def test_settings_refuse_to_load_without_a_secret_key_unless_debugging(strategy):
    env = {k: v for k, v in app_env().items() if k != "DJANGO_SECRET_KEY"}
    manage = [sys.executable, str(ROOT / strategy.name / "manage.py"), "diffsettings"]
    result = subprocess.run(manage, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: DJANGO_SECRET_KEY is not set (it must be when DJANGO_DEBUG is off): run "
        "`make up` (it writes one into .env), or see .env.example"
    )
    debugging = subprocess.run(
        manage, capture_output=True, text=True, env={**env, "DJANGO_DEBUG": "1"}, timeout=60
    )
    assert debugging.returncode == 0, debugging.stderr


def test_a_server_older_than_15_stops_the_web_server_in_one_line(live_db):
    from shared.checks import server_problems

    assert server_problems() == []  # the server under test
    (error,) = server_problems((140011, False))
    assert error.id == "tenancy.E004"
    assert "\n" not in error.msg and "PostgreSQL 14 is too old" in error.msg


@pytest.mark.case("roles")
def test_a_runtime_role_that_may_create_temporary_tables_stops_the_web_server(live_db):
    from shared.checks import server_facts, server_problems

    (error,) = server_problems((150000, True))
    assert error.id == "tenancy.E005"
    name = connections[RUNTIME_ALIAS].settings_dict["NAME"]
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute(f'GRANT TEMPORARY ON DATABASE "{name}" TO PUBLIC')
    try:
        server_facts.cache_clear()  # read once per process; this test changes the answer
        assert [e.id for e in server_problems()] == ["tenancy.E005"]
    finally:
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(f'REVOKE TEMPORARY ON DATABASE "{name}" FROM PUBLIC')
        server_facts.cache_clear()
    assert server_problems() == []


@pytest.mark.case("pooled-backend-a-then-b")
def test_the_start_up_checks_leave_no_session_for_forked_workers(live_db, strategy):
    """gunicorn --preload and uWSGI load the application, then fork: a connection (or a pool)
    the start-up checks left open would be one PostgreSQL session shared by every worker."""
    code = (
        "import os\n"
        f"import {strategy.name}.wsgi\n"
        "from django.db import connections\n"
        "c = connections['default']\n"
        "print(c.connection is None, getattr(c, '_connection_pools', {}) == {})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=app_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
