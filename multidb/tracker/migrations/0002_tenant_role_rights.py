"""Tenant tables serve the database's own role, not the runtime role every tenant shares.

0001 gave the runtime role rights on every table by default. Here, in the template and in
every tenant database, those defaults and rights go; the role named like the database (a
tenant's own, multidb.provisioning) gets what serving needs, and gets it again after every
later migration (``migratetenants``).
"""

from django.db import migrations

from shared.db.grants import runtime_role

DEFAULTS = (
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE "
    "ON TABLES FROM {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM {role}",
    "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
    "REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}",
)


def to_the_databases_own_role(apps, schema_editor):
    from multidb.provisioning import grant_tenant_role

    role = schema_editor.quote_name(runtime_role())
    with schema_editor.connection.cursor() as cursor:
        for statement in DEFAULTS:
            cursor.execute(statement.format(role=role))
    grant_tenant_role(schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("tracker", "0001_initial")]

    operations = [migrations.RunPython(to_the_databases_own_role, migrations.RunPython.noop)]
