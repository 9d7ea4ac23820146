"""A login role per tenant database (multidb.provisioning), for the tenants that exist.

Each gets its role, the only one that may connect to its database besides the owner, and the
rights to serve it; the runtime role loses CONNECT there. Tenant databases drop the runtime
role's remaining table rights in tracker.0002 (``migratetenants``).
"""

from django.db import migrations, models


def give_existing_tenants_roles(apps, schema_editor):
    from multidb import provisioning
    from multidb.routing import alias_for, forget

    tenant_model = apps.get_model("catalogue", "Tenant")
    for tenant in tenant_model.objects.using(schema_editor.connection.alias).filter(state="ready"):
        with provisioning.server_connection(tenant.db_host, tenant.db_port) as conn:
            provisioning.set_role(conn, tenant.db_name, tenant.role_generation)
            provisioning.restrict_connect(conn, tenant.db_name, role=tenant.db_name)
        try:
            provisioning.grant_tenant_role(alias_for(tenant, owner=True))
        finally:
            forget(tenant)


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="role_generation",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.RunPython(give_existing_tenants_roles, migrations.RunPython.noop),
    ]
