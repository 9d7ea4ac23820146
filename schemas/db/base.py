"""django-pgschemas' backend, with the search_path set per transaction.

django-pgschemas 1.1.1 runs ``SET search_path`` (a session setting) whenever a cursor opens.
Behind PgBouncer in transaction mode that is a leak: in autocommit mode the ``SET`` and the
next statement are two transactions that may run on different server connections, each still
carrying whatever search_path another client left there. Here the path is set with
``set_config('search_path', ..., true)`` inside the statement's own transaction instead
(shared.db.per_transaction), and nothing is set for the session.
"""

import functools
from typing import Any

from django_pgschemas.postgresql import base
from django_pgschemas.postgresql.base import get_search_path
from django_pgschemas.schema import get_current_schema

from shared.db.per_transaction import PerTransactionSetting


class DatabaseWrapper(PerTransactionSetting, base.DatabaseWrapper):
    setting = "search_path"
    # The public schema is what a session that set nothing finds ("$user" has no schema).
    value_when_unset = "public"

    def value_for_current_tenant(self) -> str:
        return get_search_path(get_current_schema())

    def _handle_search_path(self, cursor: object = None) -> None:
        pass  # the session's search_path is never set: see the module docstring

    def checked_setting(self, value: str) -> tuple[str, list[Any]] | None:
        # The tenant may have been found a moment ago (shared.strategy.find_tenant): set its
        # path only if its schema still exists, in the same round trip.
        # The same account, too: a slug dropped and made again by another process is another
        # tenant, whose schema has the same name.
        schema = get_current_schema()
        name = getattr(schema, "schema_name", "public")
        if name == "public" or value == self.value_when_unset:
            return None
        return _checked_sql(), [value, name, getattr(schema, "pk", None)]


@functools.cache
def _checked_sql() -> str:
    # Built once, on first use: the model is not importable while the backend module loads.
    from schemas.customers.models import Account

    return (
        "SELECT set_config('search_path', %s, true) FROM pg_namespace "
        f"JOIN public.{Account._meta.db_table} AS a ON a.schema_name = nspname "
        "WHERE nspname = %s AND a.id = %s"
    )
