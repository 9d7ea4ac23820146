from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Model, QuerySet, Value
from django_pgschemas.schema import get_default_schema

from schemas import provisioning
from schemas.activation import active_schema
from schemas.customers.models import Account, Domain
from shared.copy import load_contained
from shared.db import OWNER_ALIAS
from shared.migrating import Result, Unit
from shared.slugs import SlugRefused, identifier
from shared.strategy import TABLES, Strategy, TenantExists
from shared.tenancy import TenantLike, get_current_tenant
from shared.testdata import TenantData

if TYPE_CHECKING:
    from shared.strategy import Verify


def schema_name_for(slug: str) -> str:
    return identifier(slug)


def domain_for(slug: str) -> str:
    return f"{slug}.{settings.TENANCY_BASE_DOMAIN}"


class SchemaPerTenant(Strategy):
    name = "schemas"

    def model(self, name: str) -> type[Model]:
        return apps.get_model("tracker", name)

    def tenant_model(self) -> type[Account]:
        return Account

    def recorded_error(self, slug: str) -> str:
        found = Account.objects.using(OWNER_ALIAS).filter(slug=slug).first()
        return f"migration: {found.migration_error}" if found and found.migration_error else ""

    def get_tenant(self, slug: str) -> Account | None:
        domain = (
            Domain.objects.select_related("tenant")
            .filter(domain=domain_for(slug), folder="")
            .first()
        )
        return None if domain is None else cast(Account, domain.tenant)

    def activation(self, tenant: TenantLike | None) -> AbstractContextManager[None]:
        # django-pgschemas' own ContextVar, set and reset with a token (also when the block
        # raises): the schema cannot outlive the activation, and with no tenant it is public,
        # never the last one used.
        return active_schema(cast(Account, tenant) if tenant is not None else get_default_schema())

    def list_tenants(self) -> list[Account]:
        return list(Account.objects.order_by("slug"))

    def slug_taken(self, slug: str) -> bool:
        # A schema that is no tenant's: provisioning never takes one over or drops it.
        if super().slug_taken(slug):
            return True
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT FROM pg_namespace WHERE replace(nspname, '-', '_') = %s "
                f"AND nspname NOT IN (SELECT schema_name FROM public.{Account._meta.db_table}))",
                [schema_name_for(slug)],
            )
            row = cursor.fetchone()
            return bool(row and row[0])

    def create_tenant(
        self, slug: str, name: str, *, host: str = "", port: int | None = None
    ) -> Account:
        self.refuse_server(host, port)
        return self._create(slug, name)

    def _create(
        self,
        slug: str,
        name: str,
        fill: Callable[[Account], None] | None = None,
        commit: bool = True,
    ) -> Account:
        """Record the tenant, clone its schema and ``fill`` it, all in one transaction on the
        owner's connection (DDL is transactional in PostgreSQL). The registry's unique slug
        decides whether the tenant exists, also between concurrent creates; a failure or a
        killed process leaves nothing behind, so nothing ever needs dropping here."""
        self.check_slug(slug)
        schema_name = schema_name_for(slug)
        provisioning.prepare_clone()
        with transaction.atomic(using=OWNER_ALIAS):
            try:
                with transaction.atomic(using=OWNER_ALIAS):
                    tenant = Account.objects.using(OWNER_ALIAS).create(
                        slug=slug, name=name, schema_name=schema_name
                    )
            except IntegrityError:
                raise TenantExists(f"tenant {slug} exists already") from None
            if provisioning.schema_exists(schema_name):
                raise SlugRefused(
                    f"{slug!r} is refused: a schema {schema_name!r} exists and is no tenant's"
                )
            if provisioning.schema_sharding():
                provisioning.migrate_new(tenant)
            else:
                provisioning.clone(schema_name)
            Domain.objects.using(OWNER_ALIAS).create(tenant=tenant, domain=domain_for(slug))
            if fill is not None:
                fill(tenant)
            if not commit:
                transaction.set_rollback(True, using=OWNER_ALIAS)
        return tenant

    def drop_tenant(self, slug: str) -> None:
        self.forget_tenant(slug)
        tenant = Account.objects.using(OWNER_ALIAS).filter(slug=slug).first()
        if tenant is not None:
            with transaction.atomic(using=OWNER_ALIAS):
                Domain.objects.using(OWNER_ALIAS).filter(tenant=tenant).delete()
                Account.objects.using(OWNER_ALIAS).filter(pk=tenant.pk).delete()
            provisioning.drop(tenant.schema_name)

    def remains(self, tenant: TenantLike) -> list[str]:
        schema_name = schema_name_for(tenant.slug)
        found = [f"schema {schema_name}"] if provisioning.schema_exists(schema_name) else []
        if Account.objects.using(OWNER_ALIAS).filter(slug=tenant.slug).exists():
            found.append("its account")
        if Domain.objects.using(OWNER_ALIAS).filter(domain=domain_for(tenant.slug)).exists():
            found.append("its domain")
        return found

    def load_tenant(
        self, data: TenantData, *, commit: bool = True, verify: Verify | None = None
    ) -> Account:
        def fill(tenant: Account) -> None:
            with active_schema(tenant):
                with connections[OWNER_ALIAS].cursor() as cursor:
                    load_contained(cursor, data)
                if verify is not None:
                    verify(tenant, OWNER_ALIAS)

        return self._create(data.slug, data.name, fill, commit=commit)

    def subtask_list(self) -> QuerySet[Any]:
        tenant = get_current_tenant()
        assert tenant is not None, "the subtask list is a tenant's"
        return (
            self.model("subtask")
            ._default_manager.select_related("task__project")
            .annotate(account_name=Value(tenant.name))
            .order_by("name", "id")
        )

    def row_counts(self, slugs: Sequence[str] | None = None) -> dict[str, int]:
        tenants = Account.objects.using(OWNER_ALIAS).all()
        if slugs is not None:
            tenants = tenants.filter(slug__in=list(slugs))
        counts = dict.fromkeys(("account", *TABLES), 0)
        with connections[OWNER_ALIAS].cursor() as cursor:
            for tenant in tenants:
                counts["account"] += 1
                for name in TABLES:
                    cursor.execute(f'SELECT count(*) FROM "{tenant.schema_name}".tracker_{name}')
                    (count,) = cursor.fetchone() or (0,)
                    counts[name] += count
        return counts

    def migration_units(
        self, *, only: set[str] | None = None, retry_failed: bool = False
    ) -> tuple[list[Unit], list[Unit]]:
        tenants = Account.objects.using(OWNER_ALIAS).order_by("slug")
        if only:
            tenants = tenants.filter(slug__in=only)
        if retry_failed:
            tenants = tenants.exclude(migration_error="")
        before = (
            [provisioning.reference_unit()]
            if provisioning.schema_exists(provisioning.reference().schema_name)
            else []
        )
        units = [provisioning.tenant_unit(t, partial(_record, t.slug)) for t in tenants]
        return before, units


def _record(slug: str, result: Result) -> None:
    Account.objects.using(OWNER_ALIAS).filter(slug=slug).update(migration_error=result.error)
