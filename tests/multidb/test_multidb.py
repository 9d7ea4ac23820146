"""What only the database-per-tenant strategy promises."""

from __future__ import annotations

import io
import json

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import ProgrammingError, connections, transaction
from django.http import HttpResponse
from django.test import Client, override_settings

from multidb.catalogue.models import Tenant
from multidb.middleware import TenantAtomicRequests
from multidb.routing import NoTenantError, alias_for
from shared.cluster import free_port
from shared.tenancy import activate

LATEST = "tracker.0003_progress"  # the newest migration of the tenant databases


def tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in cursor.fetchall()}


def test_the_catalogue_holds_only_the_catalogue(live_db, tenant_a):
    # Where tenants are, and the records of erased ones: no tenant's rows.
    assert tables("owner") == {
        "catalogue_tenant",
        "shared_erasure",
        "django_tasks_database_dbtaskresult",  # the task queue (shared.tasks)
        "django_migrations",
    }
    assert tables(alias_for(tenant_a.tenant, owner=True)) == {
        "tracker_user",
        "tracker_project",
        "tracker_task",
        "tracker_subtask",
        "django_migrations",
    }


def test_the_catalogue_records_where_and_what(live_db, tenant_a):
    row = Tenant.objects.get(slug=tenant_a.slug)
    assert row.state == Tenant.State.READY
    assert row.db_name == f"{settings.DATABASES['owner']['NAME']}_{tenant_a.slug}"
    assert row.migration == LATEST
    assert row.error == "" and row.migration_error == ""


def test_a_tenant_model_outside_a_tenant_is_an_error(live_db, strategy, two_tenants):
    with pytest.raises(NoTenantError, match="no tenant is active"):
        strategy.model("subtask").objects.count()


def test_an_object_from_one_tenant_cannot_be_saved_under_another(
    live_db, strategy, tenant_a, tenant_b
):
    with activate(tenant_a.tenant):
        project = strategy.model("project").objects.first()
    with activate(tenant_b.tenant), pytest.raises(NoTenantError, match="was loaded from"):
        project.save()


def test_the_runtime_role_reads_the_catalogue_and_changes_nothing(live_db, tenant_a):
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)
        with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
            cursor.execute("UPDATE catalogue_tenant SET name = 'x'")
        with pytest.raises(ProgrammingError, match="permission denied"):
            cursor.execute("CREATE DATABASE planted")
    with activate(tenant_a.tenant), connections[alias_for(tenant_a.tenant)].cursor() as cursor:
        cursor.execute(
            "SELECT current_user, count(*) FROM pg_class WHERE relowner = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
        )
        # The tenant database's own role (multidb.provisioning), owning nothing.
        assert cursor.fetchone() == (tenant_a.tenant.db_name, 0)
        with (
            pytest.raises(ProgrammingError, match="permission denied"),
            transaction.atomic(using=alias_for(tenant_a.tenant)),
        ):
            cursor.execute("CREATE TABLE planted (id int)")


def test_the_runtime_role_cannot_open_the_template(live_db, tenant_a):
    conf = settings.DATABASES["default"]
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(
            host=conf["HOST"],
            port=conf["PORT"],
            user=conf["USER"],
            password=conf["PASSWORD"],
            dbname=f"{conf['NAME']}_template",
        ).close()


def test_a_request_is_atomic_on_the_tenants_database(live_db, rf, strategy, tenant_a):
    project = strategy.model("project")

    def view(request):
        project.objects.create(name="half-done")
        raise RuntimeError("the view fails after writing")

    request = rf.get("/")
    request.tenant = tenant_a.tenant
    with activate(tenant_a.tenant):
        with pytest.raises(RuntimeError):
            TenantAtomicRequests(lambda r: HttpResponse()).process_view(request, view, (), {})
        assert not project.objects.filter(name="half-done").exists()


def test_failed_provisioning_is_recorded_and_a_retry_finishes(cleanup, strategy):
    cleanup.append("tenant-790")
    down = free_port()  # nothing listens there: the server "is down"
    with pytest.raises(psycopg.OperationalError):
        strategy.create_tenant("tenant-790", "Unlucky", host="127.0.0.1", port=down)
    row = Tenant.objects.get(slug="tenant-790")
    assert row.state == Tenant.State.FAILED
    assert "connection" in row.error.lower()
    assert strategy.get_tenant("tenant-790") is None
    # The server is back (here: the tenant is placed on the main server) and the retry finishes.
    Tenant.objects.using("owner").filter(slug="tenant-790").update(db_host="", db_port=None)
    strategy.create_tenant("tenant-790", "Unlucky")
    assert Tenant.objects.get(slug="tenant-790").state == Tenant.State.READY
    assert Client().get("/subtasks/", headers={"host": "tenant-790.localhost"}).status_code == 200


def test_createtenant_and_droptenant_commands(cleanup, strategy):
    out = io.StringIO()
    call_command("createtenant", "tenant-791", "--name", "Seven Nine One", stdout=out)
    assert "Created tenant-791 (Seven Nine One)." in out.getvalue()
    assert Client().get("/", headers={"host": "tenant-791.localhost"}).status_code == 302
    with pytest.raises(CommandError, match="exists already"):
        call_command("createtenant", "tenant-791")
    with pytest.raises(CommandError, match="not a valid slug"):
        call_command("createtenant", "Bad_Slug")
    with pytest.raises(CommandError, match="pass --yes"):
        call_command("droptenant", "tenant-791")
    call_command("droptenant", "tenant-791", "--yes", stdout=io.StringIO())
    assert Client().get("/", headers={"host": "tenant-791.localhost"}).status_code == 404
    with pytest.raises(CommandError, match="there is no tenant tenant-791"):
        call_command("droptenant", "tenant-791", "--yes")


@override_settings(TENANCY_TENANT_CONNECTIONS=8)  # small, so that 200 tenants go past it
def test_open_connections_stay_bounded_across_200_tenants(cleanup, strategy):
    slugs = [f"tenant-{n}" for n in range(501, 701)]
    cleanup.extend(slugs)
    for slug in slugs:
        strategy.create_tenant(slug, slug)
    client = Client()
    for slug in slugs:
        assert client.get("/subtasks/", headers={"host": f"{slug}.localhost"}).status_code == 200
    for slug in slugs:  # and outside requests, as a command would
        with activate(strategy.get_tenant(slug)):
            strategy.model("subtask").objects.count()
    conf = settings.DATABASES["default"]
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            # Each tenant database is served by its own role, named like it.
            "SELECT count(*) FROM pg_stat_activity WHERE usename = datname AND datname LIKE %s",
            [f"{conf['NAME']}\\_tenant-%"],
        )
        open_tenant_connections = cursor.fetchone()[0]
    print(
        f"\nopen runtime connections to tenant databases after 200 tenants: "
        f"{open_tenant_connections} (budget {settings.TENANCY_TENANT_CONNECTIONS})"
    )
    assert 1 <= open_tenant_connections <= settings.TENANCY_TENANT_CONNECTIONS


def test_migratetenants_carries_on_past_a_failure_and_retries_it(cleanup, strategy, tmp_path):
    slugs = ["tenant-801", "tenant-802", "tenant-803"]
    cleanup.extend(slugs)
    for slug in slugs:
        tenant = strategy.create_tenant(slug, slug)
        call_command(
            "migrate", "tracker", "zero", database=alias_for(tenant, owner=True), verbosity=0
        )
    broken = alias_for(
        strategy.get_tenant("tenant-802") or Tenant.objects.get(slug="tenant-802"), owner=True
    )
    with connections[broken].cursor() as cursor:
        cursor.execute("CREATE TABLE tracker_project (id int)")  # 0001 will collide with it

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
    assert "tenant-802: failed" in out.getvalue()
    assert Tenant.objects.get(slug="tenant-802").migration_error
    assert Tenant.objects.get(slug="tenant-801").migration == LATEST

    with connections[broken].cursor() as cursor:
        cursor.execute("DROP TABLE tracker_project")
    call_command("migratetenants", "--retry-failed", "--report", str(report), stdout=io.StringIO())
    results = {r["name"]: r for r in json.loads(report.read_text())["results"]}
    assert results["tenant-802"]["status"] == "migrated"
    assert "tenant-801" not in results  # only the failed one was retried
    assert Tenant.objects.get(slug="tenant-802").migration_error == ""

    call_command("migratetenants", "--report", str(report), stdout=io.StringIO())
    summary = json.loads(report.read_text())["summary"]
    assert summary["failed"] == summary["migrated"] == 0 and summary["current"] >= 4
