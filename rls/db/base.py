"""PostgreSQL backend for the runtime role: every transaction carries ``app.account_id``, the
value row-level security reads (see shared.db.per_transaction for why per transaction)."""

from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base

from shared.db.per_transaction import PerTransactionSetting
from shared.tenancy import get_current_tenant

# What the statement that sets the tenant also sets, from the tenant's row ``a``.
LIMITS = (
    ", set_config('statement_timeout', a.statement_timeout::text, true)"
    ", set_config('application_name', a.slug, true)"
)


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
        return (
            f"SELECT set_config('app.account_id', %s, true){limits} "
            "FROM tracker_account_by_slug(%s) AS a WHERE a.id = %s",
            [value, tenant.slug, tenant.pk],
        )
