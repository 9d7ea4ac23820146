"""``rls`` on Citus: the tenant tables distributed by ``account_id``, and the tenant set so
that every worker sees it.

Distribution (migration 0006, as the owner, on the coordinator; nothing happens where the
database has no Citus):

- ``tracker_account`` becomes a *reference table*, a copy on every node: its slug must stay
  unique, and Citus refuses a unique constraint without the distribution column on a table
  distributed by ``id``; every tenant table has a foreign key to it, which Citus allows from a
  distributed table only towards a reference table or a table of the same colocation group.
- The tenant tables are distributed by ``account_id`` in one colocation group: a tenant's
  users, projects, tasks and subtasks share a shard number, so they sit on one worker, the
  composite foreign keys hold there, and the list page is a single-shard ("router") query.
- Citus wants every primary key to include the distribution column: ``(account_id, id)``
  replaces ``(id)``. Ids still come from one identity sequence, on the coordinator.
- The policies lose their scalar sub-select (Citus refuses sub-queries in a distributed
  table's policy); ``current_setting`` is stable, so the index still serves the comparison.
  ENABLE, FORCE and the policies travel to every shard with the table.

At run time (``rls.db.base``): ``set_config('app.account_id', ..., true)`` stays on the
coordinator, and the workers, which evaluate the policies, would see no tenant and return no
rows. ``SET LOCAL`` under ``citus.propagate_set_commands = 'local'`` is passed on to every
worker connection the transaction opens.

Each ``SET LOCAL`` goes in a message of its own: Citus passes on the whole text of the message
a ``SET`` came in, so a ``SET`` sent together with the query that checks the tenant would make
every worker run that query too (and refuse it: a distributed query inside a shard's).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from shared.db.grants import QUEUE, distributed_by_citus, queue_insert_policy

TENANT_TABLES = ["tracker_user", "tracker_project", "tracker_task", "tracker_subtask"]
ACCOUNT_TABLE = "tracker_account"
OWN_ACCOUNT_FUNCTION = """
    CREATE FUNCTION tracker_own_account() RETURNS jsonb
        LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp
        AS $$
            SELECT jsonb_build_object('id', a.id, 'slug', a.slug) FROM tracker_account a
            WHERE a.id::text = current_setting('app.account_id', true)
        $$
"""
CURRENT_ACCOUNT = "nullif(current_setting('app.account_id', true), '')::bigint"


def set_tenant(connection: psycopg.Connection[Any], account_id: str) -> None:
    """Set the transaction's tenant so that the workers see it too. The id is passed as a
    quoted literal (SET takes no parameters), made by psycopg from the account's own id."""
    connection.execute("SET LOCAL citus.propagate_set_commands = 'local'")
    connection.execute(sql.SQL("SET LOCAL app.account_id = {}").format(sql.Literal(account_id)))


def distributed_tables(cursor: Any) -> list[str]:
    """The tenant tables Citus distributes in this database (none without Citus)."""
    return distributed_by_citus(cursor, TENANT_TABLES)


def distribute(cursor: Any, runtime_role: str) -> None:
    """Distribute the tables as the module says; the caller's transaction holds it all."""
    # A reference table with foreign keys to it: one connection per node for the whole
    # transaction, or Citus refuses the later statements.
    cursor.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
    for table, column in [(ACCOUNT_TABLE, "id"), *((t, "account_id") for t in TENANT_TABLES)]:
        check = sql.SQL(f"{{column}} = {CURRENT_ACCOUNT}").format(column=sql.Identifier(column))
        cursor.execute(
            sql.SQL(
                "ALTER POLICY tenant_isolation ON {table} USING ({check}) WITH CHECK ({check})"
            ).format(table=sql.Identifier(table), check=check)
        )
    # Citus turns a table with a foreign key to a reference table into a "Citus local" table,
    # which it cannot distribute afterwards while it has an identity column: the foreign keys
    # go first and come back once every table is distributed.
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND (conrelid::regclass::text = ANY(%s) "
        "OR confrelid::regclass::text = ANY(%s)) ORDER BY conrelid::regclass::text, conname",
        [TENANT_TABLES, [*TENANT_TABLES, ACCOUNT_TABLE]],
    )
    foreign_keys = cursor.fetchall()
    for table, name, _ in foreign_keys:
        cursor.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
        )
    for table in TENANT_TABLES:
        for statement in (
            "ALTER TABLE {table} DROP CONSTRAINT {pkey}",
            "ALTER TABLE {table} ADD CONSTRAINT {pkey} PRIMARY KEY (account_id, id)",
        ):
            cursor.execute(
                sql.SQL(statement).format(
                    table=sql.Identifier(table), pkey=sql.Identifier(f"{table}_pkey")
                )
            )
    cursor.execute("SELECT create_reference_table(%s)", [ACCOUNT_TABLE])
    for table in TENANT_TABLES:
        cursor.execute(
            "SELECT create_distributed_table(%s, 'account_id', colocate_with => %s)",
            [table, "default" if table == TENANT_TABLES[0] else TENANT_TABLES[0]],
        )
    for table, name, definition in foreign_keys:
        # Checked at once: a worker checks a deferred key only when it commits, and Citus does
        # not pass SET CONSTRAINTS on, so Django's check_constraints() could not ask for it.
        immediate = definition.replace(" DEFERRABLE INITIALLY DEFERRED", "")
        cursor.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(table), sql.Identifier(name), sql.SQL(immediate)
            )
        )
    # The task queue stays a plain table on the coordinator, but its insert policy read the
    # account table in a sub-query, which Citus refuses once that is a reference table; a
    # function call reads the same row (the runtime role's own account, through its policy).
    cursor.execute(OWN_ACCOUNT_FUNCTION)
    cursor.execute(sql.SQL("DROP POLICY task_of_own_tenant ON {}").format(sql.Identifier(QUEUE)))
    role = cursor.db.ops.quote_name(runtime_role)
    cursor.execute(queue_insert_policy(role, "tracker_own_account()"))
    # The coordinator sends the id it drew to the worker (shared.db.grants.distributed_by_citus).
    for table in TENANT_TABLES:
        cursor.execute(
            sql.SQL("GRANT INSERT (id) ON {} TO {}").format(
                sql.Identifier(table), sql.Identifier(runtime_role)
            )
        )
