"""Refuse to run when the database would not enforce tenant isolation for the runtime role."""

from collections.abc import Sequence

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.utils import OperationalError

from rls import citus
from shared.db import RUNTIME_ALIAS

ROLE_SQL = "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
TABLES_SQL = """
SELECT t.name,
       c.oid IS NOT NULL,
       coalesce(c.relrowsecurity, false),
       coalesce(c.relforcerowsecurity, false),
       coalesce(pg_has_role(current_user, c.relowner, 'MEMBER'), false),
       EXISTS (SELECT FROM pg_policy p
               WHERE p.polrelid = c.oid AND p.polcmd = '*'
                 AND p.polqual IS NOT NULL AND p.polwithcheck IS NOT NULL)
FROM unnest(%s::text[]) AS t(name)
LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)
"""
OWNED_SQL = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_temp%%'
"""


def tenant_tables() -> list[str]:
    return [model._meta.db_table for model in apps.get_app_config("tracker").get_models()]


def problems(alias: str = RUNTIME_ALIAS) -> list[checks.Error]:
    errors = []
    with connections[alias].cursor() as cursor:
        cursor.execute(ROLE_SQL)
        role, superuser, bypassrls = cursor.fetchone()
        if superuser:
            errors.append(checks.Error(f"the runtime role {role} is a superuser", id="rls.E001"))
        if bypassrls:
            errors.append(checks.Error(f"the runtime role {role} has BYPASSRLS", id="rls.E002"))
        cursor.execute(OWNED_SQL)
        if owned := cursor.fetchone()[0]:
            errors.append(
                checks.Error(f"the runtime role {role} owns {owned} relations", id="rls.E003")
            )
        cursor.execute("SELECT to_regprocedure('public.tracker_accounts()') IS NOT NULL")
        if cursor.fetchone()[0] and not settings.TENANCY_INDEX:
            errors.append(
                checks.Error(
                    "tracker_accounts() lets the runtime role list every account, and "
                    "TENANCY_INDEX is off",
                    hint="Run manage.py migrate: it drops the function (rls.index).",
                    id="rls.E008",
                )
            )
        distributed = citus.distributed_tables(cursor)
        cursor.execute(
            "SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL "
            "AND (has_column_privilege(t, 'id', 'INSERT') AND t <> ALL(%s) "
            "OR has_column_privilege(t, 'id', 'UPDATE'))",
            # On Citus the key is (account_id, id): an id collides with no other tenant's.
            [tenant_tables(), distributed],
        )
        for (table,) in cursor.fetchall():
            errors.append(
                checks.Error(
                    f"the runtime role {role} may write {table}.id: it could probe other "
                    "tenants' ids through duplicate keys",
                    hint="Grant a new tenant table's writes with shared.db.grants."
                    "writes_except_ids in its migration.",
                    id="rls.E009",
                )
            )
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = 'public' AND CASE WHEN c.relkind = 'S' "
            "THEN has_sequence_privilege(c.oid, 'USAGE, SELECT, UPDATE') END ORDER BY 1"
        )
        if sequences := [name for (name,) in cursor.fetchall()]:
            errors.append(
                checks.Error(
                    f"the runtime role {role} has rights on sequences every tenant shares "
                    f"({', '.join(sequences)}): their last_value counts every tenant's rows",
                    id="rls.E010",
                )
            )
        if distributed and not settings.TENANCY_CITUS:
            errors.append(
                checks.Error(
                    f"Citus distributes {', '.join(distributed)}, and TENANCY_CITUS is off: "
                    "the tenant would be set with set_config(), which Citus does not pass on "
                    "to its workers, so every page would be blank",
                    hint="Set TENANCY_CITUS=1 (make up CLUSTER=citus writes it into .env).",
                    id="rls.E011",
                )
            )
        cursor.execute(TABLES_SQL, [tenant_tables()])
        for table, exists, enabled, forced, owner, policy in cursor.fetchall():
            if not exists:
                errors.append(
                    checks.Error(
                        f"table {table} is missing", hint="Run manage.py migrate.", id="rls.E004"
                    )
                )
                continue
            if owner:
                errors.append(
                    checks.Error(
                        f"the runtime role {role} owns {table} or is a member of its owner",
                        id="rls.E003",
                    )
                )
            if not enabled:
                errors.append(
                    checks.Error(f"{table} does not enable row-level security", id="rls.E005")
                )
            if not forced:
                errors.append(
                    checks.Error(f"{table} does not FORCE row-level security", id="rls.E006")
                )
            if not policy:
                errors.append(
                    checks.Error(
                        f"{table} has no policy with both USING and WITH CHECK", id="rls.E007"
                    )
                )
    return errors


def check_row_level_security(
    app_configs: object = None, databases: Sequence[str] | None = None, **kwargs: object
) -> Sequence[checks.CheckMessage]:
    if not databases or RUNTIME_ALIAS not in databases:
        return []
    try:
        return problems()
    except OperationalError as exc:
        return [checks.Error(f"cannot connect as the runtime role: {exc}", id="rls.E000")]


def refuse_unsafe_database() -> None:
    """Called when the WSGI/ASGI application loads: no server starts on an unsafe database."""
    try:
        errors = problems()
    finally:
        # And its pool: a server that forks its workers after loading the application
        # (gunicorn --preload, uWSGI) would otherwise hand them all the same sessions.
        runtime = connections[RUNTIME_ALIAS]
        runtime.close()
        if close_pool := getattr(runtime, "close_pool", None):  # psycopg's pool, when used
            close_pool()
    if errors:
        lines = "\n".join(f"  {e.id}: {e.msg}" for e in errors)
        raise ImproperlyConfigured(f"refusing to serve; tenant isolation is not enforced:\n{lines}")
