"""Per-tenant limits and the progress the recompute_progress task writes.

- ``statement_timeout``: the statement that sets a transaction's tenant (rls/db/base.py)
  reads it through tracker_account_by_slug, which therefore returns it now.
- ``progress``: a new column of tracker_project, which the runtime role may write (its
  writes are granted column by column, shared.db.grants.writes_except_ids).
- The task queue (shared.tasks): row-level security checks that a task the runtime role
  enqueues is fresh and records the account its transaction is set to (id and slug), or none
  (a cross-tenant task). Not FORCEd: the worker claims every tenant's tasks through the
  owner's connection.
"""

from django.db import migrations, models

from shared.db.grants import queue_insert_check, writes_except_ids

FUNCTION = """
    DROP FUNCTION tracker_account_by_slug(text);
    CREATE FUNCTION tracker_account_by_slug(p_slug text)
        RETURNS TABLE (id bigint, slug varchar, name varchar, statement_timeout integer)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
            SELECT a.id, a.slug, a.name, a.statement_timeout
            FROM tracker_account a WHERE a.slug = p_slug
        $$;
"""
OLD_FUNCTION = """
    DROP FUNCTION tracker_account_by_slug(text);
    CREATE FUNCTION tracker_account_by_slug(p_slug text)
        RETURNS TABLE (id bigint, slug varchar, name varchar)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ SELECT a.id, a.slug, a.name FROM tracker_account a WHERE a.slug = p_slug $$;
"""


# The account the transaction is set to, as the runtime role sees it (its own row only).
OWN_ACCOUNT = (
    "SELECT jsonb_build_object('id', a.id, 'slug', a.slug) FROM tracker_account a "
    "WHERE a.id::text = current_setting('app.account_id', true)"
)


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0004_definer_search_path"),
        ("shared", "0002_task_queue_rights"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="statement_timeout",
            field=models.PositiveIntegerField(db_default=5000, default=5000),
        ),
        migrations.AddField(
            model_name="project",
            name="progress",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.RunSQL(FUNCTION, OLD_FUNCTION),
        writes_except_ids("tracker_project"),
        queue_insert_check(OWN_ACCOUNT),
    ]
