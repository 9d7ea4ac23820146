"""Per-tenant health: the command's report and the bare host's token-gated endpoint. A tenant
whose schema or database is missing is reported as such, on its own line."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.test import Client
from psycopg import sql

from shared import health
from shared.db import OWNER_ALIAS
from shared.testdata import Volumes, generate_tenant

TOKEN = "a-monitor's-token"


def block(text: str, slug: str) -> str:
    """The lines the report has for ``slug``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{slug}: "))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), None)
    return "\n".join(lines[start:end])


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("tenanthealth", *args, stdout=out)
    return out.getvalue()


@pytest.mark.case("health-report")
def test_the_report_names_each_tenants_state(live_db, strategy, tenant_a, tenant_b):
    text = run(tenant_a.slug, tenant_b.slug)
    for fixture in (tenant_a, tenant_b):
        lines = block(text, fixture.slug)
        assert lines.startswith(f"{fixture.slug}: ok"), text
        assert "reachable: yes" in lines
        assert "migrations: current" in lines
        assert "statement_timeout_ms 5000" in lines
    assert "All 2 tenants are reachable and current." in text
    with pytest.raises(CommandError, match="there is no tenant tenant-nobody"):
        run("tenant-nobody")


def _remove_storage(strategy, tenant) -> None:
    """What an operator's mistake or a failed restore leaves: the tenant's schema or database
    gone while the registry still lists it (rls: its rows gone while its account stays)."""
    if strategy.name == "schemas":
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP SCHEMA {} CASCADE")
                .format(sql.Identifier(tenant.schema_name))
                .as_string(cursor.connection)
            )
    elif strategy.name == "multidb":
        from multidb import provisioning
        from multidb.routing import forget

        forget(tenant)
        with provisioning.server_connection(tenant.db_host, tenant.db_port) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(tenant.db_name))
            )
    else:
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute("ALTER TABLE tracker_subtask RENAME COLUMN details TO details_gone")


def _restore(strategy) -> None:
    if strategy.name == "rls":
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute("ALTER TABLE tracker_subtask RENAME COLUMN details_gone TO details")


@pytest.mark.case("health-report")
def test_a_tenant_with_its_storage_gone_is_reported_and_the_others_are_not(
    live_db, strategy, tenant_a, tenant_b
):
    data = generate_tenant(952, volumes=Volumes(users=(1, 1), projects=(1, 1)))
    if strategy.get_tenant(data.slug):
        strategy.drop_tenant(data.slug)
    broken = strategy.load_tenant(data)
    try:
        _remove_storage(strategy, broken)
        try:
            found = {h.slug: h for h in health.report(strategy, privileged=True)}
            web = {
                h.slug: h
                for h in health.report(strategy, privileged=False, slugs=[tenant_a.slug, data.slug])
            }
        finally:
            _restore(strategy)
        assert not found[data.slug].reachable
        assert found[data.slug].problem
        assert not web[data.slug].reachable
        if strategy.name == "rls":  # one schema for all: every tenant's page breaks alike
            assert "do not match this code" in found[data.slug].problem
        else:
            assert found[tenant_a.slug].reachable and found[tenant_b.slug].reachable
            assert found[tenant_a.slug].migrations == "current"
            assert web[tenant_a.slug].reachable
    finally:
        strategy.drop_tenant(data.slug)


@pytest.mark.case("health-report")
def test_the_endpoint_is_off_without_a_token_and_needs_it(live_db, settings, tenant_a):
    client = Client()
    settings.TENANCY_HEALTH_TOKEN = ""
    assert client.get("/health/tenants", headers={"host": "localhost"}).status_code == 404
    settings.TENANCY_HEALTH_TOKEN = TOKEN
    for given in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN[:-1]}):
        response = client.get("/health/tenants", headers={"host": "localhost", **given})
        assert response.status_code == 401
    # Not on a tenant's host: a tenant learns nothing of the others there.
    on_a = client.get(
        "/health/tenants", headers={"host": tenant_a.host, "authorization": f"Bearer {TOKEN}"}
    )
    assert on_a.status_code == 404


@pytest.mark.case("health-report")
def test_the_endpoint_reports_the_tenants_asked_for(live_db, settings, tenant_a, tenant_b):
    settings.TENANCY_HEALTH_TOKEN = TOKEN
    response = Client().get(
        f"/health/tenants?tenant={tenant_a.slug}&tenant={tenant_b.slug}",
        headers={"host": "localhost", "authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200
    tenants = {t["slug"]: t for t in response.json()["tenants"]}
    assert set(tenants) == {tenant_a.slug, tenant_b.slug}
    for each in tenants.values():
        assert each["reachable"] is True
        assert each["limits"]["statement_timeout_ms"] == 5000
    unknown = Client().get(
        "/health/tenants?tenant=tenant-nobody",
        headers={"host": "localhost", "authorization": f"Bearer {TOKEN}"},
    )
    assert unknown.status_code == 503
    assert unknown.json()["tenants"][0]["reachable"] is False
