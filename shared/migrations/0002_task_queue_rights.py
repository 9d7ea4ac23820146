"""The task queue (django-tasks-db's table, shared.tasks): the runtime role may add tasks and
do nothing else with them. It cannot read the queue, so no tenant reads another's task
arguments or results, nor change or delete a task once enqueued; the worker reads and updates
the queue through the privileged connection."""

from django.db import migrations

from shared.db.grants import QUEUE, runtime_role


def insert_only(apps, schema_editor):
    role = schema_editor.quote_name(runtime_role())
    # Whatever rights new tables get by default here (rls and multidb grant some).
    schema_editor.execute(f"REVOKE ALL ON {QUEUE} FROM {role}")
    schema_editor.execute(f"GRANT INSERT ON {QUEUE} TO {role}")


def revoke(apps, schema_editor):
    schema_editor.execute(f"REVOKE ALL ON {QUEUE} FROM {schema_editor.quote_name(runtime_role())}")


class Migration(migrations.Migration):
    dependencies = [
        ("shared", "0001_erasure"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(insert_only, revoke)]
