"""The SECURITY DEFINER functions behind Host routing and the index search pg_temp last.

A function's search_path that does not name pg_temp searches it first for tables: a session
that may create temporary tables could then put its own `tracker_account` in front of the real
one (or a view that calls a function of its own), and the function, running as the owner,
would read it with the owner's rights. The runtime role has no
TEMPORARY right on the bootstrap's databases, but a database made another way may grant it to
PUBLIC; naming pg_temp last closes it whatever the database grants.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tracker", "0003_runtime_rights")]

    operations = [
        migrations.RunSQL(
            """
            ALTER FUNCTION tracker_account_by_slug(text)
                SET search_path = pg_catalog, public, pg_temp;
            DO $$ BEGIN
                IF to_regprocedure('public.tracker_accounts()') IS NOT NULL THEN
                    ALTER FUNCTION tracker_accounts() SET search_path = pg_catalog, public, pg_temp;
                END IF;
            END $$;
            """,
            migrations.RunSQL.noop,
        )
    ]
