"""Per-tenant limits in the catalogue (applied to each tenant's role by provisioning), and a
check on the task queue here (shared.tasks): a task the runtime role enqueues must be fresh.
Which tenant it records the catalogue cannot check (no tenant per transaction here); the
worker runs a task only in the tenant whose slug and id it records."""

from django.db import migrations, models

from shared.db.grants import queue_insert_check


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
        queue_insert_check(None),
    ]
