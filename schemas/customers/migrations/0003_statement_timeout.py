"""A per-tenant statement timeout, which the statement that sets a transaction's search_path
applies (schemas/db/base.py); and, on the task queue in public (shared.tasks), a check in the
database that a task the runtime role enqueues is fresh and records the tenant whose schema
its transaction is set to (id and slug), or none (a cross-tenant task). Not FORCEd: the worker
claims every tenant's tasks through the owner's connection."""

from django.db import migrations, models

from shared.db.grants import queue_insert_check

# The account whose schema the transaction's search_path starts with.
OWN_ACCOUNT = (
    "SELECT jsonb_build_object('id', a.id, 'slug', a.slug) FROM public.customers_account a "
    "WHERE a.schema_name = current_schema()"
)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_runtime_rights_per_schema"),
        ("shared", "0002_task_queue_rights"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="statement_timeout",
            field=models.PositiveIntegerField(db_default=5000, default=5000),
        ),
        queue_insert_check(OWN_ACCOUNT),
    ]
