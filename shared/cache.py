"""Cache keys carry the active tenant, so one tenant's cached value is never another's."""

from __future__ import annotations

from shared.tenancy import get_current_tenant


def tenant_key(key: str, key_prefix: str, version: int) -> str:
    tenant = get_current_tenant()
    # The tenant's permanent id, not its slug: a slug dropped and created again is another
    # tenant, which must not find the old one's values. "~" is no tenant.
    scope = "~" if tenant is None else f"t{tenant.pk}"
    return f"{key_prefix}:{version}:{scope}:{key}"
