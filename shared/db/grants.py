"""Migration operations that give the runtime role exactly the rights it needs."""

from collections.abc import Callable
from typing import Any

from django.apps.registry import Apps
from django.conf import settings
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from shared.db import RUNTIME_ALIAS

# What RunPython calls, forwards or backwards.
Operation = Callable[[Apps, BaseDatabaseSchemaEditor], None]


def runtime_role() -> str:
    return str(settings.DATABASES[RUNTIME_ALIAS]["USER"])


def _default_privileges(action: str, tables: str) -> Operation:
    def run(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        quote = schema_editor.quote_name
        role = quote(runtime_role())
        to_from = "TO" if action == "GRANT" else "FROM"
        statements = [
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public {action} {tables} "
            f"ON TABLES {to_from} {role}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public {action} "
            f"USAGE, SELECT ON SEQUENCES {to_from} {role}",
            # Functions are executable by PUBLIC unless said otherwise: only the runtime role.
            f"ALTER DEFAULT PRIVILEGES {'REVOKE' if action == 'GRANT' else 'GRANT'} "
            f"EXECUTE ON FUNCTIONS {'FROM' if action == 'GRANT' else 'TO'} PUBLIC",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public {action} "
            f"EXECUTE ON FUNCTIONS {to_from} {role}",
        ]
        with schema_editor.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    return run


DML = "SELECT, INSERT, UPDATE, DELETE"


def grant_runtime_role_by_default(tables: str = DML) -> migrations.RunPython:
    """Every table, sequence and function the migrating (owner) role creates from here on gets
    ``tables`` rights (DML unless told otherwise), sequence and execute rights for the runtime
    role, and nothing else."""
    return migrations.RunPython(
        _default_privileges("GRANT", tables), _default_privileges("REVOKE", tables)
    )


def _everywhere(action: str) -> Operation:
    def run(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        role = schema_editor.quote_name(runtime_role())
        to_from = "TO" if action == "GRANT" else "FROM"
        with schema_editor.connection.cursor() as cursor:
            for statement in (
                f"ALTER DEFAULT PRIVILEGES {action} USAGE ON SCHEMAS {to_from} {role}",
                f"ALTER DEFAULT PRIVILEGES {action} {DML} ON TABLES {to_from} {role}",
                f"ALTER DEFAULT PRIVILEGES {action} USAGE, SELECT ON SEQUENCES {to_from} {role}",
            ):
                cursor.execute(statement)

    return run


def grant_runtime_role_in_new_schemas() -> migrations.RunPython:
    """Every schema the migrating (owner) role creates from here on, and every table and
    sequence in it, is usable by the runtime role (USAGE and DML), and nothing more."""
    return migrations.RunPython(_everywhere("GRANT"), _everywhere("REVOKE"))


def stop_granting_runtime_role_in_new_schemas() -> migrations.RunPython:
    """Undo ``grant_runtime_role_in_new_schemas`` from here on: new schemas, tables and
    sequences give the runtime role nothing until it is granted explicitly."""
    return migrations.RunPython(_everywhere("REVOKE"), _everywhere("GRANT"))


def grant_select(*tables: str) -> migrations.RunPython:
    """Read-only access for the runtime role to tables that already exist."""

    def run(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        role = schema_editor.quote_name(runtime_role())
        names = ", ".join(schema_editor.quote_name(t) for t in tables)
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"GRANT SELECT ON {names} TO {role}")

    def reverse(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        role = schema_editor.quote_name(runtime_role())
        names = ", ".join(schema_editor.quote_name(t) for t in tables)
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"REVOKE SELECT ON {names} FROM {role}")

    return migrations.RunPython(run, reverse)


def has_citus(cursor: Any) -> bool:
    cursor.execute("SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')")
    return bool(cursor.fetchone()[0])


def distributed_by_citus(cursor: Any, tables: list[str]) -> list[str]:
    """Those of ``tables`` that Citus distributes in this database (none without Citus). Its
    coordinator fills in an identity column itself and sends the value to the worker, so the
    runtime role needs INSERT on ``id`` there. That gives nothing away: the key is
    (account_id, id) on a distributed table (rls.citus), so a chosen id can only ever collide
    with the tenant's own rows."""
    if not has_citus(cursor):
        return []
    cursor.execute(
        "SELECT logicalrelid::regclass::text FROM pg_dist_partition "
        "WHERE logicalrelid::regclass::text = ANY(%s) ORDER BY 1",
        [tables],
    )
    return [name for (name,) in cursor.fetchall()]


def _id_writes(action: str, tables: tuple[str, ...]) -> Operation:
    def run(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        role = schema_editor.quote_name(runtime_role())
        with schema_editor.connection.cursor() as cursor:
            for table in tables:
                name = schema_editor.quote_name(table)
                if action == "REVOKE":
                    cursor.execute(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = current_schema() AND table_name = %s "
                        "AND column_name <> 'id' ORDER BY ordinal_position",
                        [table],
                    )
                    columns = ", ".join(schema_editor.quote_name(c) for (c,) in cursor.fetchall())
                    cursor.execute(f"REVOKE INSERT, UPDATE ON {name} FROM {role}")
                    cursor.execute(
                        f"GRANT INSERT ({columns}), UPDATE ({columns}) ON {name} TO {role}"
                    )
                    if distributed_by_citus(cursor, [table]):
                        cursor.execute(f"GRANT INSERT (id) ON {name} TO {role}")
                else:
                    cursor.execute(f"GRANT INSERT, UPDATE ON {name} TO {role}")

    return run


def writes_except_ids(*tables: str) -> migrations.RunPython:
    """The runtime role may insert and update every column of ``tables`` but ``id``: ids come
    from the sequence, never from the client. A migration that adds a column to one of these
    tables runs this again, or the runtime role cannot write the new column."""
    return migrations.RunPython(_id_writes("REVOKE", tables), _id_writes("GRANT", tables))


QUEUE = "django_tasks_database_dbtaskresult"  # django-tasks-db's table (shared.tasks)


# What a task enqueued by the runtime role may look like (shared.tasks): ready, never run, no
# result or error of its own, recording either no tenant (a cross-tenant task) or exactly
# ``tenant`` (SQL giving the row's expected {id, slug}: the transaction's tenant; None where
# the database cannot tell, as in multidb's catalogue). Anything else (a forged failure, a run
# already claimed) is for the worker, through the owner.
def queue_insert_policy(role: str, tenant: str | None) -> str:
    recorded = "true" if tenant is None else (
        f"args_kwargs -> 'tenant' = 'null'::jsonb OR args_kwargs -> 'tenant' = ({tenant})"
    )  # fmt: skip
    return (
        f"CREATE POLICY task_of_own_tenant ON {QUEUE} FOR INSERT TO {role} WITH CHECK ("
        "status = 'READY' AND started_at IS NULL AND finished_at IS NULL "
        "AND return_value IS NULL AND exception_class_path = '' AND traceback = '' "
        f"AND worker_ids = '[]'::jsonb AND ({recorded}))"
    )


def queue_insert_check(tenant: str | None) -> migrations.RunPython:
    """Row-level security on the task queue for the runtime role's inserts
    (``queue_insert_policy``); not FORCEd: the worker claims every tenant's tasks through
    the owner's connection."""

    def forward(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        role = schema_editor.quote_name(runtime_role())
        schema_editor.execute(f"ALTER TABLE {QUEUE} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(queue_insert_policy(role, tenant))

    def backward(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        schema_editor.execute(f"DROP POLICY task_of_own_tenant ON {QUEUE}")
        schema_editor.execute(f"ALTER TABLE {QUEUE} DISABLE ROW LEVEL SECURITY")

    return migrations.RunPython(forward, backward)
