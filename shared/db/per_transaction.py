"""A database backend mixin that carries the current tenant into every transaction.

The value (rls: ``app.account_id``; schemas: ``search_path``) is set with
``set_config(name, value, true)``, which lasts until the end of the transaction. A pooled
connection (Django's psycopg pool, or PgBouncer in transaction mode, where consecutive
transactions of one client may run on different server connections) therefore never hands it
to another request. Before each statement the wrapper makes sure the open transaction carries
the value for the tenant that is current in this context; a statement outside any transaction
gets a short one of its own, because in autocommit mode a separate ``SET`` could land on one
server connection and the statement on another.

On Citus that short transaction is tried once more if the shard map changed under it (see
``shard_map_changed``): it held nothing but the statement, so nothing is done twice.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import Http404

if TYPE_CHECKING:
    # What it is mixed into, for the type checker; at run time the concrete backend says.
    from django.db.backends.postgresql.base import DatabaseWrapper as _Wrapper
else:
    _Wrapper = object

SET_CONFIG = "SELECT set_config(%s, %s, true)"

logger = logging.getLogger(__name__)

# Citus's words when a statement was planned against a shard that is gone by the time it runs:
# splitting a shard (isolate_tenant_to_new_shard) replaces its id, and reads go on meanwhile.
# The error has no SQLSTATE of its own (XX000), so the message is what tells it apart. Shard
# ids start at 102008; "shard 0" would be a bug in Citus, to be seen as one, not retried.
SHARD_GONE = re.compile(r"could not find valid entry for shard [1-9]\d*")


def shard_map_changed(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what it wraps) says Citus changed the shard map under a statement:
    the same statement, planned again, finds the new shard."""
    while exc is not None:
        if isinstance(exc, psycopg.errors.InternalError_) and SHARD_GONE.fullmatch(
            exc.diag.message_primary or ""
        ):
            return True
        exc = exc.__cause__
    return False


class TenantGone(Http404):
    """The active tenant was dropped after it was looked up (shared.strategy.find_tenant
    remembers tenants for a moment): its request is a 404, as it would be a moment later."""


class PerTransactionSetting(ABC, _Wrapper):
    """Mix into a ``DatabaseWrapper``; define ``setting``, ``value_for_current_tenant()`` and
    ``value_when_unset``."""

    setting: str
    # The value a transaction that sets nothing already has: no need to open one for it.
    value_when_unset: str = ""

    @abstractmethod
    def value_for_current_tenant(self) -> str:
        """The value for the tenant that is current in this context."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The value in the open transaction, or None when it is not known.
        self.value_in_transaction: str | None = None
        # On Citus the outer wrapper runs _with_setting's own transaction again; one server
        # never needs it, and its statements do not pass through it.
        if settings.TENANCY_CITUS:
            self.execute_wrappers.append(self._again_if_its_shard_moved)
        self.execute_wrappers.append(self._with_setting)

    def _with_setting(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        value = self.value_for_current_tenant()
        if not self.get_autocommit():
            if self.value_in_transaction != value:
                self._apply(value)
            return execute(sql, params, many, context)
        if value == self.value_when_unset:
            return execute(sql, params, many, context)
        with transaction.atomic(using=self.alias):
            self._apply(value)
            return execute(sql, params, many, context)

    def _again_if_its_shard_moved(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        # Outside the caller's transaction the statement is a transaction of its own (or one
        # _with_setting opened for it), rolled back by the error: run once more, it does
        # nothing twice. A named cursor (iterator() in autocommit) is declared WITH HOLD, runs
        # at COMMIT and is known to psycopg by then: it is not run again; its request gets the
        # 503 page, like a statement inside a longer transaction.
        if not self.get_autocommit():
            return execute(sql, params, many, context)
        try:
            return execute(sql, params, many, context)
        except (DatabaseError, psycopg.Error) as exc:  # _apply's errors are psycopg's own
            named = isinstance(getattr(context["cursor"], "cursor", None), psycopg.ServerCursor)
            if named or not shard_map_changed(exc):
                raise
            logger.warning("Ran a statement again, Citus having moved its shard: %s", exc)
        return execute(sql, params, many, context)

    def checked_setting(self, value: str) -> tuple[str, list[Any]] | None:
        """A statement that sets ``value`` only if the active tenant still exists, returning a
        row if it did; None when there is nothing to check (no tenant)."""
        return None

    def _apply(self, value: str) -> None:
        # Straight to psycopg, so this statement does not pass through the wrappers again.
        checked = self.checked_setting(value)
        if checked is None:
            self.connection.execute(SET_CONFIG, [self.setting, value])
        elif self.connection.execute(*checked).fetchone() is None:
            raise TenantGone("This tenant no longer exists.")
        self.value_in_transaction = value

    # Whenever the transaction, or the savepoint that may have set the value, ends, forget it:
    # the next statement sets it again. Forget it *after* the statement has run: ROLLBACK TO
    # SAVEPOINT itself passes through the wrapper (which may set the value first) and then
    # restores whatever the setting was when the savepoint was taken. (These are Django's
    # private hooks, which django-stubs does not declare: hence the ignores.)
    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self.value_in_transaction = None

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self.value_in_transaction = None

    def _savepoint_rollback(self, sid: str) -> None:
        try:
            super()._savepoint_rollback(sid)  # type: ignore[misc]
        finally:
            self.value_in_transaction = None

    def _set_autocommit(self, autocommit: bool) -> None:
        try:
            super()._set_autocommit(autocommit)  # type: ignore[misc]
        finally:
            self.value_in_transaction = None

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self.value_in_transaction = None
