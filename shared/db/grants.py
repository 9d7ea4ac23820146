"""Migration operations that give the runtime role exactly the rights it needs."""

from django.conf import settings
from django.db import migrations

from shared.db import RUNTIME_ALIAS


def runtime_role() -> str:
    return settings.DATABASES[RUNTIME_ALIAS]["USER"]


def _default_privileges(action: str, tables: str):
    def run(apps, schema_editor):
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


def _everywhere(action: str):
    def run(apps, schema_editor):
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


def grant_select(*tables: str) -> migrations.RunPython:
    """Read-only access for the runtime role to tables that already exist."""

    def run(apps, schema_editor):
        role = schema_editor.quote_name(runtime_role())
        names = ", ".join(schema_editor.quote_name(t) for t in tables)
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"GRANT SELECT ON {names} TO {role}")

    def reverse(apps, schema_editor):
        role = schema_editor.quote_name(runtime_role())
        names = ", ".join(schema_editor.quote_name(t) for t in tables)
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"REVOKE SELECT ON {names} FROM {role}")

    return migrations.RunPython(run, reverse)
