"""The runtime role's rights, narrowed to what serving needs.

- The account table: read only. With UPDATE on its own row, a tenant could change its slug
  and take over another host name, or show another customer's name in the index.
- Sequences: nothing. The ids are identity columns, whose inserts need no right on their
  sequence; with USAGE or SELECT, last_value (also through pg_sequences and
  pg_sequence_last_value) counts every tenant's inserts.
- Ids: never chosen by the client. With INSERT on the id column, tenant B could insert a row
  with one of A's ids and learn from the duplicate-key error that A has that row (and, later,
  that A deleted it). Inserts and updates are granted on every other column only.
"""

from django.db import migrations

from shared.db.grants import runtime_role, writes_except_ids

TENANT_TABLES = ("tracker_user", "tracker_project", "tracker_task", "tracker_subtask")


def sequences(action: str):
    def run(apps, schema_editor):
        role = schema_editor.quote_name(runtime_role())
        to_from = "TO" if action == "GRANT" else "FROM"
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                f"{action} USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public {to_from} {role}"
            )
            cursor.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA public {action} USAGE, SELECT ON SEQUENCES "
                f"{to_from} {role}"
            )

    return run


class Migration(migrations.Migration):
    dependencies = [("tracker", "0002_row_level_security")]

    operations = [
        migrations.RunPython(
            lambda apps, editor: editor.execute(
                f"REVOKE INSERT, UPDATE, DELETE ON tracker_account FROM "
                f"{editor.quote_name(runtime_role())}"
            ),
            lambda apps, editor: editor.execute(
                f"GRANT INSERT, UPDATE, DELETE ON tracker_account TO "
                f"{editor.quote_name(runtime_role())}"
            ),
        ),
        migrations.RunPython(sequences("REVOKE"), sequences("GRANT")),
        writes_except_ids(*TENANT_TABLES),
    ]
