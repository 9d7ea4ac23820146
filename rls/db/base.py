"""PostgreSQL backend for the runtime role: every transaction carries ``app.account_id``, the
value row-level security reads (see shared.db.per_transaction for why per transaction)."""

from typing import Any

from django.db.backends.postgresql import base

from shared.db.per_transaction import PerTransactionSetting
from shared.tenancy import get_current_tenant


class DatabaseWrapper(PerTransactionSetting, base.DatabaseWrapper):
    setting = "app.account_id"
    value_when_unset = ""  # no tenant: the policies read an unset or empty value as "no rows"

    def value_for_current_tenant(self) -> str:
        tenant = get_current_tenant()
        return "" if tenant is None else str(tenant.pk)

    def checked_setting(self, value: str) -> tuple[str, list[Any]] | None:
        # The tenant may have been found a moment ago (shared.strategy.find_tenant): set it
        # only if that account still exists under that slug, in the same round trip.
        tenant = get_current_tenant()
        if tenant is None or value == "":
            return None
        return (
            "SELECT set_config('app.account_id', %s, true) "
            "FROM tracker_account_by_slug(%s) WHERE id = %s",
            [value, tenant.slug, tenant.pk],
        )
