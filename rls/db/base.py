"""PostgreSQL backend that carries the current tenant into every transaction.

Row-level security reads ``app.account_id``. It is set with ``set_config(..., true)``, which
lasts until the end of the transaction, so a pooled connection (Django's psycopg pool, or
PgBouncer in transaction mode) can never hand it to another request. Before each statement
the wrapper makes sure the open transaction carries the tenant that is current in this context;
a statement outside any transaction gets a short one of its own.
"""

from django.db import transaction
from django.db.backends.postgresql import base

from shared.tenancy import get_current_tenant

SET_TENANT = "SELECT set_config('app.account_id', %s, true)"


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The value of app.account_id in the open transaction, or None when it is not known.
        self.tenant_in_transaction: str | None = None
        self.execute_wrappers.append(self._with_tenant)

    def _with_tenant(self, execute, sql, params, many, context):
        tenant = get_current_tenant()
        wanted = "" if tenant is None else str(tenant.pk)
        if not self.get_autocommit():
            if self.tenant_in_transaction != wanted:
                self._set_tenant(wanted)
            return execute(sql, params, many, context)
        if not wanted:
            # A fresh transaction starts with no tenant, which the policies read as "no rows".
            return execute(sql, params, many, context)
        with transaction.atomic(using=self.alias):
            self._set_tenant(wanted)
            return execute(sql, params, many, context)

    def _set_tenant(self, value: str) -> None:
        # Straight to psycopg, so this statement does not pass through the wrappers again.
        self.connection.execute(SET_TENANT, [value])
        self.tenant_in_transaction = value

    # Whenever the transaction, or the savepoint that may have set the tenant, ends, forget the
    # value: the next statement sets it again. Forget it *after* the statement has run:
    # ROLLBACK TO SAVEPOINT itself passes through the wrapper (which may set the tenant first)
    # and then restores whatever the setting was when the savepoint was taken.
    def _commit(self):
        try:
            return super()._commit()
        finally:
            self.tenant_in_transaction = None

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self.tenant_in_transaction = None

    def _savepoint_rollback(self, sid):
        try:
            return super()._savepoint_rollback(sid)
        finally:
            self.tenant_in_transaction = None

    def _set_autocommit(self, autocommit):
        try:
            return super()._set_autocommit(autocommit)
        finally:
            self.tenant_in_transaction = None

    def _close(self):
        try:
            return super()._close()
        finally:
            self.tenant_in_transaction = None
