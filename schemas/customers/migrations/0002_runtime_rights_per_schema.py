"""The runtime role's rights, schema by schema instead of by default.

0001 let the runtime role use every schema the owner creates, the reference schema and each
schema's django_migrations included: a row it wrote into the reference would have been
copied into every tenant cloned afterwards. From here on provisioning grants each tenant
schema exactly what serving needs (schemas.provisioning.grant_serving) and the reference
nothing; this migration does the same for the schemas that exist already.
"""

from django.conf import settings
from django.db import migrations

from schemas.provisioning import grant_serving, revoke_all
from shared.db.grants import stop_granting_runtime_role_in_new_schemas


def narrow_existing(apps, schema_editor):
    account = apps.get_model("customers", "Account")
    alias = schema_editor.connection.alias
    reference = settings.TENANTS["default"]["CLONE_REFERENCE"]
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [reference])
        if cursor.fetchone():
            revoke_all(cursor, reference)
        for schema_name in account.objects.using(alias).values_list("schema_name", flat=True):
            cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema_name])
            if cursor.fetchone():
                grant_serving(cursor, schema_name)


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]

    operations = [
        stop_granting_runtime_role_in_new_schemas(),
        migrations.RunPython(narrow_existing, migrations.RunPython.noop),
    ]
