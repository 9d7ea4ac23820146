"""What only the schema-per-tenant strategy promises."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import ProgrammingError, connections, transaction
from django.test import Client
from django_pgschemas.schema import get_current_schema

from schemas.activation import active_schema as override
from schemas.customers.models import Account, Domain
from shared.db.per_transaction import TenantGone
from shared.tenancy import activate


def schemas_with(table: str) -> set[str]:
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT schemaname FROM pg_tables WHERE tablename = %s", [table])
        return {row[0] for row in cursor.fetchall()}


def test_tables_live_where_they_belong(live_db, tenant_a, tenant_b):
    assert schemas_with("customers_account") == {"public"}
    assert schemas_with("tracker_subtask") >= {"reference", "tenant_901", "tenant_902"}
    assert "public" not in schemas_with("tracker_subtask")


def test_the_runtime_role_cannot_create_anything_and_owns_nothing(live_db, tenant_a):
    with activate(tenant_a.tenant), connections["default"].cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
        )
        assert cursor.fetchone()[0] == 0
        for statement in (
            "CREATE TABLE planted (id int)",
            "CREATE TABLE public.planted (id int)",
            "CREATE SCHEMA planted",
            "UPDATE customers_account SET name = 'x'",
            "SELECT public.clone_schema('reference', 'planted', 'DATA')",
        ):
            with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
                cursor.execute(statement)


def test_new_tenants_are_cloned_not_migrated(live_db, strategy, tenant_a):
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT app, name, applied FROM reference.django_migrations ORDER BY id")
        reference = cursor.fetchall()
        cursor.execute("SELECT app, name, applied FROM tenant_901.django_migrations ORDER BY id")
        # Copied rows, timestamps included: nothing was applied again in the new schema.
        assert cursor.fetchall() == reference
        cursor.execute(
            "SELECT pg_get_userbyid(p.proowner) FROM pg_proc p WHERE p.proname = 'clone_schema'"
        )
        assert cursor.fetchone()[0] == settings.DATABASES["owner"]["USER"]


def test_the_schema_never_outlives_its_request(live_db, strategy, tenant_a, tenant_b):
    client = Client()
    assert client.get("/subtasks/", headers={"host": tenant_a.host}).status_code == 200
    assert get_current_schema().schema_name == "public"
    with connections["default"].cursor() as cursor:
        # The schemas the next statement would search: public only, whatever the setting's text.
        cursor.execute("SELECT current_schemas(false)")
        assert cursor.fetchone()[0] == ["public"]


def test_the_search_path_is_never_set_for_the_session(live_db, tenant_a):
    """Set per transaction, so PgBouncer cannot hand it to another client (schemas/db/base.py)."""
    connection = connections["default"]
    with activate(tenant_a.tenant):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_schemas(false)")
            assert cursor.fetchone()[0] == [tenant_a.tenant.schema_name, "public"]
        # Autocommit: the statement gets a transaction of its own with the path in it.
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schemas(false)")
            assert cursor.fetchone()[0] == [tenant_a.tenant.schema_name, "public"]
    # What the session itself carries, read without the backend's wrapper: the runtime role's
    # own default (shared/db/bootstrap.sql), never a tenant's schema.
    assert connection.connection.execute("SHOW search_path").fetchone()[0] == "public"


def test_a_request_that_fails_halfway_leaves_nothing_behind(live_db, strategy, tenant_a, tenant_b):
    subtask = strategy.model("subtask")
    with pytest.raises(RuntimeError), activate(tenant_a.tenant):
        assert subtask.objects.count() == len(tenant_a.ids["subtask"])
        raise RuntimeError("the view fails halfway")
    assert get_current_schema().schema_name == "public"
    with activate(tenant_b.tenant):
        assert subtask.objects.count() == len(tenant_b.ids["subtask"])
    with pytest.raises(ProgrammingError, match="does not exist"):
        subtask.objects.count()  # back in public, which has no tenant tables


def test_a_missing_schema_raises_and_never_falls_through(live_db, strategy, tenant_a):
    ghost = Account.objects.using("owner").create(slug="ghost", name="Ghost", schema_name="ghost")
    Domain.objects.using("owner").create(tenant=ghost, domain="ghost.localhost")
    try:
        with (
            activate(strategy.get_tenant("ghost")),
            pytest.raises(TenantGone),
        ):
            strategy.model("subtask").objects.count()
        # A real request for it: the statement that sets its search_path finds no schema (a
        # 404), and nothing of it remains for the next request on the same thread and pooled
        # connection.
        client = Client(raise_request_exception=False)
        assert client.get("/subtasks/", headers={"host": "ghost.localhost"}).status_code == 404
        assert get_current_schema().schema_name == "public"
        response = client.get("/subtasks/", headers={"host": tenant_a.host})
        assert response.status_code == 200
        assert f"{len(tenant_a.ids['subtask'])} subtasks" in response.content.decode()
    finally:
        strategy.drop_tenant("ghost")


@pytest.fixture
def cleanup(live_db, strategy):
    slugs = []
    yield slugs
    for slug in slugs:
        strategy.drop_tenant(slug)


def test_createtenant_serves_at_once_and_droptenant_asks(cleanup, strategy):
    cleanup.append("tenant-50")
    call_command("createtenant", "tenant-50", "--name", "Fifty", stdout=io.StringIO())
    assert Client().get("/subtasks/", headers={"host": "tenant-50.localhost"}).status_code == 200
    with pytest.raises(CommandError, match="--server does not apply"):
        call_command("createtenant", "tenant-51", "--server", "db2:5432")
    with pytest.raises(CommandError, match="pass --yes"):
        call_command("droptenant", "tenant-50")
    call_command("droptenant", "tenant-50", "--yes", stdout=io.StringIO())
    assert Client().get("/subtasks/", headers={"host": "tenant-50.localhost"}).status_code == 404
    assert schemas_with("tracker_subtask").isdisjoint({"tenant_50"})


def test_migratetenants_carries_on_past_a_failure_and_retries_it(cleanup, strategy, tmp_path):
    slugs = ["tenant-801", "tenant-802", "tenant-803"]
    cleanup.extend(slugs)
    for slug in slugs:
        tenant = strategy.create_tenant(slug, slug)
        with override(tenant):
            call_command("migrate", "tracker", "zero", verbosity=0)
    with connections["owner"].cursor() as cursor:
        cursor.execute("CREATE TABLE tenant_802.tracker_project (id int)")  # 0001 collides

    report = tmp_path / "report.json"
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"1 failed \(tenant-802\)"):
        call_command(
            "migratetenants",
            "--only",
            ",".join(slugs),
            "--parallel",
            "2",
            "--report",
            str(report),
            stdout=out,
        )
    results = {r["name"]: r for r in json.loads(report.read_text())["results"]}
    assert results["tenant-801"]["status"] == results["tenant-803"]["status"] == "migrated"
    assert results["tenant-802"]["status"] == "failed"
    assert "already exists" in results["tenant-802"]["error"]
    assert Account.objects.get(slug="tenant-802").migration_error

    with connections["owner"].cursor() as cursor:
        cursor.execute("DROP TABLE tenant_802.tracker_project")
    call_command("migratetenants", "--retry-failed", "--report", str(report), stdout=io.StringIO())
    results = {r["name"]: r for r in json.loads(report.read_text())["results"]}
    assert results["tenant-802"]["status"] == "migrated"
    assert "tenant-801" not in results
    assert Account.objects.get(slug="tenant-802").migration_error == ""
    with override(strategy.get_tenant("tenant-802")):
        assert strategy.model("subtask").objects.count() == 0  # the tables are back
