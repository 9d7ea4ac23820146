"""Cache keys carry the active tenant, so one tenant's cached value is never another's."""

from __future__ import annotations

from shared.tenancy import get_current_tenant


def tenant_key(key: str, key_prefix: str, version: int) -> str:
    tenant = get_current_tenant()
    # Slugs are [a-z0-9-] (shared.hosts), so neither can fake the other's prefix; "~" is none.
    scope = "~" if tenant is None else tenant.slug
    return f"{key_prefix}:{version}:{scope}:{key}"
