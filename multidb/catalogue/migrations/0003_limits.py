"""Per-tenant limits in the catalogue (applied to each tenant's role by provisioning), and a
check on the task queue here (shared.tasks): a task the runtime role enqueues must be fresh.
Which tenant it records the catalogue cannot check (no tenant per transaction here); the
worker runs a task only in the tenant whose slug and id it records."""

from django.db import migrations, models

from shared.db.grants import QUEUE, queue_insert_policy, runtime_role


def queue_policy(apps, schema_editor):
    role = schema_editor.quote_name(runtime_role())
    schema_editor.execute(f"ALTER TABLE {QUEUE} ENABLE ROW LEVEL SECURITY")
    schema_editor.execute(queue_insert_policy(role, None))


def drop_queue_policy(apps, schema_editor):
    schema_editor.execute(f"DROP POLICY task_of_own_tenant ON {QUEUE}")
    schema_editor.execute(f"ALTER TABLE {QUEUE} DISABLE ROW LEVEL SECURITY")


class Migration(migrations.Migration):
    dependencies = [
        ("catalogue", "0002_tenant_roles"),
        ("shared", "0002_task_queue_rights"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="connection_limit",
            field=models.IntegerField(db_default=-1, default=-1),
        ),
        migrations.AddField(
            model_name="tenant",
            name="statement_timeout",
            field=models.PositiveIntegerField(db_default=5000, default=5000),
        ),
        migrations.RunPython(queue_policy, drop_queue_policy),
    ]
