"""On a Citus database, distribute the tables (rls.citus); anywhere else, nothing.

A later migration that adds a tenant table distributes it the same way, colocated with
``tracker_user``; one that adds a column with a constraint works on Citus through the owner's
backend (shared.db.schema_editor).
"""

from django.db import migrations

from rls import citus
from shared.db.grants import has_citus, runtime_role


def forward(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if has_citus(cursor):
            citus.distribute(cursor, runtime_role())


def backward(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if citus.distributed_tables(cursor):
            # Citus cannot undistribute a table with an identity column (every table here).
            raise RuntimeError("the tables are distributed by Citus: this cannot be undone")


class Migration(migrations.Migration):
    dependencies = [("tracker", "0005_limits_and_progress")]

    operations = [migrations.RunPython(forward, backward)]
