"""multidb's limits are its tenant role's: they bind the tenant's sessions, never the owner's
(migrations, moves, digests), and what a tenant sets for itself shows in the health report."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from multidb import provisioning
from multidb.catalogue.models import DEFAULT_CONNECTION_LIMIT, Tenant
from multidb.credentials import role_password
from shared.db import OWNER_ALIAS, connect_directly
from shared.models import DEFAULT_STATEMENT_TIMEOUT_MS
from tests.multidb.test_tenant_roles import login


@pytest.fixture
def limited(live_db, strategy, tenant_a):
    """Tenant A at 100 ms and 2 sessions, put back afterwards."""
    strategy.set_limits(tenant_a.slug, statement_timeout=100, connection_limit=2)
    yield Tenant.objects.using(OWNER_ALIAS).get(slug=tenant_a.slug)
    strategy.set_limits(
        tenant_a.slug,
        statement_timeout=DEFAULT_STATEMENT_TIMEOUT_MS,
        connection_limit=DEFAULT_CONNECTION_LIMIT,
    )


def as_tenant(tenant: Tenant) -> psycopg.Connection:
    return login(
        tenant.db_name, role_password(tenant.db_name, tenant.role_generation), tenant.db_name,
        autocommit=True,
    )  # fmt: skip


def test_the_tenants_sessions_are_bound_and_the_owners_are_not(limited):
    with as_tenant(limited) as mine:
        assert mine.execute("SHOW statement_timeout").fetchone()[0] == "100ms"
        with pytest.raises(psycopg.errors.QueryCanceled):
            mine.execute("SELECT pg_sleep(0.5)")
    with connect_directly(OWNER_ALIAS, dbname=limited.db_name, autocommit=True) as owner:
        owner.execute("SELECT pg_sleep(0.3)")  # a migration or a move's COPY runs on


def test_the_connection_limit_counts_the_tenants_sessions_only(limited):
    with as_tenant(limited), as_tenant(limited):
        with pytest.raises(psycopg.OperationalError, match="too many connections"):
            as_tenant(limited)
        with connect_directly(OWNER_ALIAS, dbname=limited.db_name) as owner:
            owner.execute("SELECT 1")


def test_what_a_tenant_sets_for_itself_is_reported_and_undone(limited, strategy):
    with as_tenant(limited) as mine:
        mine.execute(
            sql.SQL("ALTER ROLE CURRENT_USER IN DATABASE {} SET statement_timeout = 0").format(
                sql.Identifier(limited.db_name)
            )
        )
    limits = strategy.limits(limited, privileged=True)
    assert limits["server_applies"] == {"statement_timeout_ms": 0, "connection_limit": 2}
    strategy.set_limits(limited.slug, statement_timeout=100)
    assert "server_applies" not in strategy.limits(limited, privileged=True)
    with as_tenant(limited) as mine:
        assert mine.execute("SHOW statement_timeout").fetchone()[0] == "100ms"


def test_a_rotated_role_keeps_its_limits(live_db, strategy):
    from io import StringIO

    from django.core.management import call_command

    slug = "tenant-783"  # its own: rotating gives the role a password the fixtures do not know
    if strategy.get_tenant(slug):
        strategy.drop_tenant(slug)
    strategy.create_tenant(slug, "Rotated with limits")
    try:
        strategy.set_limits(slug, statement_timeout=100, connection_limit=2)
        call_command("rotatetenantroles", slug, stdout=StringIO())
        rotated = Tenant.objects.using(OWNER_ALIAS).get(slug=slug)
        with provisioning.server_connection() as conn:
            assert provisioning.role_limits(conn, rotated.db_name) == (100, 2)
    finally:
        strategy.drop_tenant(slug)
