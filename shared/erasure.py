"""Erasing a tenant: every row, schema or database of it, with a record that proves what went.

The record (shared.models.Erasure) is written in the same transaction that removes the
tenant from the catalogue: in rls and schemas that transaction also removes the rows or the
schema, so the record exists exactly when the tenant is gone. In multidb the database is
dropped first (DROP DATABASE cannot run in a transaction): if the record cannot be written
then, the catalogue still names the tenant, and erasing again finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import transaction

from shared import digest
from shared.db import OWNER_ALIAS
from shared.models import Erasure

if TYPE_CHECKING:
    from shared.strategy import Strategy
    from shared.tenancy import TenantLike


class TenantChanged(Exception):
    pass


def erase_tenant(
    strategy: Strategy, tenant: TenantLike, progress: Callable[[str], None]
) -> tuple[Erasure, list[str]]:
    """Erase ``tenant``; return the record and what a scan still finds of it (nothing).

    The digest is read just before the rows go: a write that lands in between is erased with
    them but not in the record's digest (stop writing to a tenant before erasing it)."""
    with strategy.tenant_lock(tenant.slug):
        # Looked up again under the lock: it may have moved (multidb) since, or been dropped,
        # or been dropped and made again (another tenant, which nobody confirmed erasing).
        fresh = strategy.get_tenant(tenant.slug)
        if fresh is None or fresh.pk != tenant.pk:
            raise TenantChanged(f"{tenant.slug} was dropped or replaced meanwhile; nothing erased")
        tenant = fresh
        progress("computing the digest of the rows to erase")
        with strategy.tenant_alias(tenant) as alias:
            erased = digest.of_tenant(strategy, tenant, using=alias)
        progress("erasing")
        with transaction.atomic(using=OWNER_ALIAS):
            strategy.drop_tenant(tenant.slug)
            record = Erasure.objects.using(OWNER_ALIAS).create(
                slug=tenant.slug, counts=erased.counts(), digest=erased.value
            )
    progress("reclaiming the space of deleted rows")
    strategy.reclaim()
    progress("scanning for anything left")
    return record, strategy.remains(tenant)


def erasures(slug: str, digest: str) -> list[Erasure]:
    """Erasures of that slug, or of those very rows under any slug."""
    records = Erasure.objects.using(OWNER_ALIAS)
    return list(records.filter(slug=slug) | records.filter(digest=digest))
