"""Row-level security, composite foreign keys, and the two functions the runtime role may call.

The policy compares ``account_id`` with ``(SELECT nullif(current_setting('app.account_id',
true), '')::bigint)``:
- ``current_setting(..., true)`` is NULL when the setting was never made, and ``''`` once a
  transaction that set it has ended; ``nullif`` turns both into NULL, and ``account_id = NULL``
  is never true, so with no tenant a query sees no rows and can write none;
- the scalar sub-select is an InitPlan: evaluated once per statement, and its result can be
  compared with the ``account_id`` index, instead of calling current_setting() for every row.
"""

from django.db import migrations

TENANT_TABLES = ["tracker_user", "tracker_project", "tracker_task", "tracker_subtask"]
CURRENT_ACCOUNT = "(SELECT nullif(current_setting('app.account_id', true), '')::bigint)"


def policy(table: str, column: str) -> tuple[str, str]:
    forward = f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON {table}
            USING ({column} = {CURRENT_ACCOUNT})
            WITH CHECK ({column} = {CURRENT_ACCOUNT});
    """
    backward = f"""
        DROP POLICY tenant_isolation ON {table};
        ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;
        ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;
    """
    return forward, backward


COMPOSITE_FOREIGN_KEYS = """
    ALTER TABLE tracker_task ADD CONSTRAINT task_project_same_account
        FOREIGN KEY (account_id, project_id) REFERENCES tracker_project (account_id, id)
        DEFERRABLE INITIALLY DEFERRED;
    ALTER TABLE tracker_subtask ADD CONSTRAINT subtask_task_same_account
        FOREIGN KEY (account_id, task_id) REFERENCES tracker_task (account_id, id)
        DEFERRABLE INITIALLY DEFERRED;
"""
DROP_COMPOSITE_FOREIGN_KEYS = """
    ALTER TABLE tracker_subtask DROP CONSTRAINT subtask_task_same_account;
    ALTER TABLE tracker_task DROP CONSTRAINT task_project_same_account;
"""

# SECURITY DEFINER: they run as their owner (the owner role, which bypasses row-level
# security), so the runtime role can resolve a Host and list the tenant index, and nothing else.
FUNCTIONS = """
    CREATE FUNCTION tracker_account_by_slug(p_slug text)
        RETURNS TABLE (id bigint, slug varchar, name varchar)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$ SELECT a.id, a.slug, a.name FROM tracker_account a WHERE a.slug = p_slug $$;
    CREATE FUNCTION tracker_accounts()
        RETURNS TABLE (id bigint, slug varchar, name varchar)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$ SELECT a.id, a.slug, a.name FROM tracker_account a ORDER BY a.slug $$;
"""
DROP_FUNCTIONS = """
    DROP FUNCTION tracker_accounts();
    DROP FUNCTION tracker_account_by_slug(text);
"""


class Migration(migrations.Migration):
    dependencies = [("tracker", "0001_initial")]

    operations = [
        migrations.RunSQL(COMPOSITE_FOREIGN_KEYS, DROP_COMPOSITE_FOREIGN_KEYS),
        migrations.RunSQL(*policy("tracker_account", "id")),
        *(migrations.RunSQL(*policy(table, "account_id")) for table in TENANT_TABLES),
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
    ]
