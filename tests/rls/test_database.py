"""What PostgreSQL itself enforces for the runtime role, on a raw psycopg connection: no Django
manager, no backend wrapper, only the roles and the policies."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from rls import checks

TENANT_TABLES = ["tracker_user", "tracker_project", "tracker_task", "tracker_subtask"]
ALL_TABLES = ["tracker_account", *TENANT_TABLES]
CURRENT = "(SELECT nullif(current_setting('app.account_id', true), '')::bigint)"
SHORT = {
    "tracker_user": "user",
    "tracker_project": "project",
    "tracker_task": "task",
    "tracker_subtask": "subtask",
}


def connect(alias: str = "default") -> psycopg.Connection:
    conf = settings.DATABASES[alias]
    return psycopg.connect(
        dbname=conf["NAME"],
        user=conf["USER"],
        password=conf["PASSWORD"],
        host=conf["HOST"],
        port=conf["PORT"],
    )


@pytest.fixture
def runtime(live_db, two_tenants):
    with connect() as conn:
        yield conn
        conn.rollback()


def count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def set_account(conn, account_id) -> None:
    conn.execute("SELECT set_config('app.account_id', %s, true)", [str(account_id)])


def test_the_runtime_role_is_least_privileged(runtime):
    role = runtime.execute(
        "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles "
        "WHERE rolname = current_user"
    ).fetchone()
    assert role == (False, False, False, False)
    owned = runtime.execute(
        "SELECT count(*) FROM pg_class WHERE relowner = "
        "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
    ).fetchone()[0]
    assert owned == 0
    owners = runtime.execute(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname = ANY(%s)",
        [ALL_TABLES],
    ).fetchall()
    assert owners == [(settings.DATABASES["owner"]["USER"],)]


@pytest.mark.parametrize("table", ALL_TABLES)
def test_with_no_tenant_set_every_table_is_empty(runtime, table):
    assert count(runtime, table) == 0


@pytest.mark.parametrize("table", ALL_TABLES)
def test_an_empty_setting_means_no_rows_not_an_error(runtime, table):
    # What an earlier SET LOCAL leaves behind in the session once its transaction ended.
    set_account(runtime, 1)
    runtime.commit()
    assert runtime.execute("SELECT current_setting('app.account_id')").fetchone()[0] == ""
    assert count(runtime, table) == 0
    runtime.execute("SET app.account_id = ''")
    assert count(runtime, table) == 0


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_with_a_tenant_set_only_its_rows(runtime, tenant_a, tenant_b, table):
    for fixture in (tenant_a, tenant_b):
        set_account(runtime, fixture.tenant.pk)
        assert count(runtime, table) == len(fixture.ids[SHORT[table]])
        others = runtime.execute(
            f"SELECT count(*) FROM {table} WHERE account_id <> %s", [fixture.tenant.pk]
        ).fetchone()[0]
        assert others == 0
        assert count(runtime, "tracker_account") == 1
        runtime.rollback()


def test_the_setting_ends_with_the_transaction(runtime, tenant_a):
    set_account(runtime, tenant_a.tenant.pk)
    assert count(runtime, "tracker_subtask") == len(tenant_a.ids["subtask"])
    runtime.commit()
    assert count(runtime, "tracker_subtask") == 0


def test_no_tenant_can_write_nothing(runtime, tenant_a):
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        runtime.execute(
            "INSERT INTO tracker_project (account_id, name, details) VALUES (%s, 'x', '')",
            [tenant_a.tenant.pk],
        )
    runtime.rollback()
    assert runtime.execute("UPDATE tracker_project SET name = 'x'").rowcount == 0
    assert runtime.execute("DELETE FROM tracker_project").rowcount == 0


def test_insert_into_another_account_is_refused(runtime, tenant_a, tenant_b):
    set_account(runtime, tenant_b.tenant.pk)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        runtime.execute(
            "INSERT INTO tracker_project (account_id, name, details) VALUES (%s, 'x', '')",
            [tenant_a.tenant.pk],
        )


def test_update_that_moves_a_row_to_another_account_is_refused(runtime, tenant_a, tenant_b):
    set_account(runtime, tenant_b.tenant.pk)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        runtime.execute(
            "UPDATE tracker_subtask SET account_id = %s WHERE id = %s",
            [tenant_a.tenant.pk, tenant_b.ids["subtask"][0]],
        )


def test_a_subtask_under_another_accounts_task_is_refused(runtime, tenant_a, tenant_b):
    set_account(runtime, tenant_b.tenant.pk)
    runtime.execute(
        "INSERT INTO tracker_subtask (account_id, task_id, name, is_complete, details) "
        "VALUES (%s, %s, 'planted', false, '')",
        [tenant_b.tenant.pk, tenant_a.ids["task"][0]],
    )
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="subtask_task_same_account"):
        runtime.commit()


def test_even_the_owner_cannot_mix_accounts(live_db, tenant_a, tenant_b):
    with connect("owner") as owner:
        owner.execute(
            "INSERT INTO tracker_task (account_id, project_id, name, is_complete, details) "
            "VALUES (%s, %s, 'planted', false, '')",
            [tenant_b.tenant.pk, tenant_a.ids["project"][0]],
        )
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="task_project_same_account"):
            owner.commit()


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("ALTER TABLE tracker_subtask DISABLE ROW LEVEL SECURITY", "must be owner"),
        ("DROP POLICY tenant_isolation ON tracker_subtask", "must be owner"),
        ("TRUNCATE tracker_subtask", "permission denied"),
        ("CREATE TABLE planted (id int)", "permission denied"),
        ("SET ROLE tenancy_owner", "permission denied"),
        ("SELECT * FROM django_migrations", "permission denied"),
    ],
)
def test_the_runtime_role_cannot_loosen_anything(runtime, statement, error):
    with pytest.raises(psycopg.Error, match=error):
        runtime.execute(statement)


def test_the_runtime_role_resolves_a_slug_and_nothing_more(runtime, tenant_a):
    rows = runtime.execute(
        "SELECT id, slug FROM tracker_account_by_slug(%s)", [tenant_a.slug]
    ).fetchall()
    assert rows == [(tenant_a.tenant.pk, tenant_a.slug)]
    assert runtime.execute("SELECT * FROM tracker_account_by_slug('nope')").fetchall() == []


def test_the_policy_is_evaluated_once_per_statement(runtime, tenant_a):
    set_account(runtime, tenant_a.tenant.pk)
    plan = "\n".join(
        r[0]
        for r in runtime.execute(
            "EXPLAIN SELECT * FROM tracker_subtask ORDER BY name LIMIT 10"
        ).fetchall()
    )
    assert "InitPlan" in plan
    assert "current_setting" not in plan.split("InitPlan")[0]


# -- the system check ----------------------------------------------------------------------


def test_the_system_check_passes_for_the_runtime_role(live_db, two_tenants):
    assert checks.problems() == []
    checks.refuse_unsafe_database()


def test_the_system_check_catches_a_privileged_role(live_db, two_tenants):
    # The owner role has BYPASSRLS and owns the tables: exactly what the app must not use.
    ids = {error.id for error in checks.problems("owner")}
    assert {"rls.E002", "rls.E003"} <= ids


@pytest.mark.parametrize(
    ("loosen", "restore", "error"),
    [
        (
            "ALTER TABLE tracker_task NO FORCE ROW LEVEL SECURITY",
            "ALTER TABLE tracker_task FORCE ROW LEVEL SECURITY",
            "rls.E006",
        ),
        (
            "ALTER TABLE tracker_task DISABLE ROW LEVEL SECURITY",
            "ALTER TABLE tracker_task ENABLE ROW LEVEL SECURITY",
            "rls.E005",
        ),
        (
            "ALTER POLICY tenant_isolation ON tracker_task RENAME TO loose; "
            "DROP POLICY loose ON tracker_task",
            f"CREATE POLICY tenant_isolation ON tracker_task "
            f"USING (account_id = {CURRENT}) WITH CHECK (account_id = {CURRENT})",
            "rls.E007",
        ),
    ],
)
def test_the_system_check_refuses_a_loosened_table(live_db, two_tenants, loosen, restore, error):
    with connect("owner") as owner:
        owner.execute(loosen)
        owner.commit()
        try:
            assert error in {e.id for e in checks.problems()}
            with pytest.raises(ImproperlyConfigured, match=error):
                checks.refuse_unsafe_database()
        finally:
            owner.execute(restore)
            owner.commit()
    connections["default"].close()
    assert checks.problems() == []


def test_migration_commands_use_the_owner_role(live_db, two_tenants):
    import io

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("showmigrations", "tracker", stdout=out)
    assert "[X] 0002_row_level_security" in out.getvalue()
    with pytest.raises(CommandError, match="the runtime role, which cannot change the schema"):
        call_command("migrate", database="default", verbosity=0)
