"""PostgreSQL backend for the runtime role: every transaction carries ``app.account_id``, the
value row-level security reads (see shared.db.per_transaction for why per transaction)."""

from django.db.backends.postgresql import base

from shared.db.per_transaction import PerTransactionSetting
from shared.tenancy import get_current_tenant


class DatabaseWrapper(PerTransactionSetting, base.DatabaseWrapper):
    setting = "app.account_id"
    value_when_unset = ""  # no tenant: the policies read an unset or empty value as "no rows"

    def value_for_current_tenant(self) -> str:
        tenant = get_current_tenant()
        return "" if tenant is None else str(tenant.pk)
