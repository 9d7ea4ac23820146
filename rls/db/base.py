"""PostgreSQL backend for the runtime role: every transaction carries ``app.account_id``, the
value row-level security reads (see shared.db.per_transaction for why per transaction)."""

from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base

from rls import citus
from shared.db.per_transaction import PerTransactionSetting, TenantGone
from shared.tenancy import get_current_tenant

# What the statement that sets the tenant also sets, from the tenant's row ``a``.
LIMITS = (
    ", set_config('statement_timeout', a.statement_timeout::text, true)"
    ", set_config('application_name', a.slug, true)"
)
CHECKED = "SELECT {what}{limits} FROM tracker_account_by_slug(%s) AS a WHERE a.id = %s"


class DatabaseWrapper(PerTransactionSetting, base.DatabaseWrapper):
    setting = "app.account_id"
    value_when_unset = ""  # no tenant: the policies read an unset or empty value as "no rows"

    def value_for_current_tenant(self) -> str:
        tenant = get_current_tenant()
        return "" if tenant is None else str(tenant.pk)

    def checked_setting(self, value: str) -> tuple[str, list[Any]] | None:
        # The tenant may have been found a moment ago (shared.strategy.find_tenant): set it
        # only if that account still exists under that slug, in the same round trip. The
        # same statement applies the tenant's own statement timeout, read from its row, and
        # names it in application_name (pg_stat_activity), for this transaction only.
        tenant = get_current_tenant()
        if tenant is None or value == "":
            return None
        limits = LIMITS if settings.TENANCY_TENANT_LIMITS else ""
        if settings.TENANCY_CITUS:  # set beforehand (_apply)
            return CHECKED.format(what="1", limits=limits), [tenant.slug, tenant.pk]
        what = "set_config('app.account_id', %s, true)"
        return CHECKED.format(what=what, limits=limits), [value, tenant.slug, tenant.pk]

    def _apply(self, value: str) -> None:
        if not settings.TENANCY_CITUS:
            super()._apply(value)
            return
        # On Citus the tenant is set with SET LOCAL (rls.citus), and checked after it; the
        # three statements go out in one pipeline, so this is still one round trip.
        checked = self.checked_setting(value)
        with self.connection.pipeline():
            citus.set_tenant(self.connection, value)
            found = self.connection.execute(*checked) if checked else None
        if found is not None and found.fetchone() is None:
            raise TenantGone("This tenant no longer exists.")
        self.value_in_transaction = value
