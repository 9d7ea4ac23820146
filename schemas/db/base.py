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

from django.conf import settings
from django_pgschemas.postgresql import base
from django_pgschemas.postgresql.base import get_search_path
from django_pgschemas.schema import get_current_schema

from shared.db.per_transaction import PerTransactionSetting

# What the statement that sets the path also sets, from the tenant's row ``a``.
LIMITS = (
    ", set_config('statement_timeout', a.statement_timeout::text, true)"
    ", set_config('application_name', a.slug, true)"
)


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
        sql = _checked_sql(settings.TENANCY_TENANT_LIMITS)
        return sql, [value, name, getattr(schema, "pk", None)]


@functools.cache
def _checked_sql(limits: bool) -> str:
    # Built once, on first use: the model is not importable while the backend module loads.
    from schemas.customers.models import Account

    # With the path, the tenant's own statement timeout and its name in application_name
    # (pg_stat_activity), for this transaction only.
    return (
        f"SELECT set_config('search_path', %s, true){LIMITS if limits else ''} FROM pg_namespace "
        f"JOIN public.{Account._meta.db_table} AS a ON a.schema_name = nspname "
        "WHERE nspname = %s AND a.id = %s"
    )
