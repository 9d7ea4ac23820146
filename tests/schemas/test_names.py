"""schemas: a schema that is no tenant's is never taken over, and the runtime role gets rights
schema by schema, never by default."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections, transaction

from schemas.customers.models import Account
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.slugs import SlugRefused


@pytest.fixture
def stray_schema(live_db):
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute("CREATE SCHEMA stray_thing")
        cursor.execute("CREATE TABLE stray_thing.notes (body text)")
        cursor.execute("INSERT INTO stray_thing.notes VALUES ('keep me')")
    yield "stray_thing"
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute("DROP SCHEMA stray_thing CASCADE")


def test_a_schema_that_is_no_tenants_is_never_dropped_or_taken_over(stray_schema, strategy):
    with pytest.raises(SlugRefused, match="reserved"):
        strategy.create_tenant("stray-thing", "Stray")
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("createtenant", "stray-thing")
    assert not Account.objects.using(OWNER_ALIAS).filter(slug="stray-thing").exists()
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute("SELECT body FROM stray_thing.notes")
        assert cursor.fetchall() == [("keep me",)]


def test_a_schema_the_owner_makes_gives_the_runtime_role_nothing(stray_schema):
    with transaction.atomic(), connections[RUNTIME_ALIAS].cursor() as cursor:
        with pytest.raises(DatabaseError, match="permission denied"):
            cursor.execute("SELECT body FROM stray_thing.notes")
        transaction.set_rollback(True)


def test_what_one_runtime_role_for_every_schema_still_shows(live_db, tenant_a, tenant_b):
    """The limits README.md's security table states for schemas, so that it stays true: the
    runtime role serves every schema, so it can name another tenant's schema in raw SQL, and
    the catalogue shows every schema's name and row counts."""
    a_schema = tenant_a.tenant.schema_name
    from shared.tenancy import activate

    with activate(tenant_b.tenant), transaction.atomic():
        with connections[RUNTIME_ALIAS].cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {a_schema}.tracker_subtask")
            assert cursor.fetchone()[0] == len(tenant_a.ids["subtask"])
            cursor.execute(
                "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = %s", [a_schema]
            )
            assert cursor.fetchone()[0] > 0
        transaction.set_rollback(True)
