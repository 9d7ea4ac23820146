"""Managers that refuse to run a query that is not scoped to the current tenant.

A queryset made while a tenant is active is filtered to that tenant and remembers it. Every
way of running SQL checks, at that moment, that the same tenant is still active; a queryset
made with no tenant, or evaluated under another one, raises ``TenantScopeError`` instead of
quietly reading everyone's rows. ``cross_tenant()`` is the one deliberate way out: it runs on
the privileged connection, which is where cross-tenant work belongs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import F
from django.db.models.constants import LOOKUP_SEP
from django.db.models.query import RawQuerySet

from shared.db import OWNER_ALIAS
from shared.tenancy import TenantLike, get_current_tenant

CROSS_TENANT = "cross-tenant"


class TenantScopeError(Exception):
    pass


# A queryset's scope: the account id it was built for, CROSS_TENANT, or None (no tenant).
Scope = Any


def require_scope(
    model: type[models.Model] | None, scope: Scope, action: str, db: str | None = None
) -> None:
    # The privileged connection is the explicit cross-tenant path; everything else needs a tenant.
    if scope == CROSS_TENANT or db == OWNER_ALIAS:
        return
    name = model.__name__ if model is not None else "raw"
    tenant = get_current_tenant()
    if tenant is None:
        problem = "no tenant is active"
    elif scope is None:
        problem = f"the query was built while no tenant was active (now {tenant.slug})"
    elif scope != tenant.pk:
        problem = f"the query was built for account {scope} but {tenant.slug} is active"
    else:
        return
    raise TenantScopeError(
        f"{name}.{action}() refused: {problem}. Run it inside shared.tenancy.activate(tenant), "
        f"or use {name}.objects.cross_tenant() for deliberate cross-tenant work "
        f"(it runs on the privileged '{OWNER_ALIAS}' connection)."
    )


class TenantRawQuerySet(RawQuerySet):
    tenant_scope: Scope = None

    def iterator(self) -> Iterator[Any]:
        require_scope(self.model, self.tenant_scope, "raw", self.db)
        return super().iterator()


# Every QuerySet method that sends SQL without going through _fetch_all() (bulk_create, which
# also fills in the account, is defined below). The async variants (acount, aget, aupdate, ...)
# call these in a thread that inherits the ContextVar; aiterator is the exception and is listed.
GUARDED = (
    "iterator",
    "aiterator",
    "count",
    "exists",
    "contains",
    "aggregate",
    "explain",
    "update",
    "_update",
    "delete",
    "_raw_delete",
    "in_bulk",
    "bulk_update",
    "_insert",
    "get_or_create",
    "update_or_create",
)


def _guard(name: str) -> Callable[..., Any]:
    method = getattr(models.QuerySet, name)

    @functools.wraps(method)
    def guarded(self: TenantQuerySet, *args: Any, **kwargs: Any) -> Any:
        db = kwargs.get("using") or self.db
        require_scope(self.model, self._tenant_scope, name.lstrip("_"), db)
        return method(self, *args, **kwargs)

    return guarded


class TenantQuerySet(models.QuerySet):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tenant_scope: Scope = None

    def _clone(self) -> TenantQuerySet:
        clone: TenantQuerySet = super()._clone()  # type: ignore[misc]  # private: not in stubs
        clone._tenant_scope = self._tenant_scope
        return clone

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            require_scope(self.model, self._tenant_scope, "fetch", self.db)
        super()._fetch_all()

    def scoped_to(self, tenant: TenantLike) -> TenantQuerySet:
        clone = self.filter(**{self.model.tenant_field: tenant.pk})
        clone._tenant_scope = tenant.pk
        return clone

    def cross_tenant(self) -> TenantQuerySet:
        clone = self.using(OWNER_ALIAS)
        clone._tenant_scope = CROSS_TENANT
        return clone

    # A value read across a relation (``task__project__name``) is read from rows of the same
    # account: the joined rows' account is the row's own. The composite foreign keys make that
    # true already; saying it lets Citus send the query to the one shard holding the account,
    # where it would otherwise refuse a join that is not on the distribution column (rls.citus).
    def values(self, *fields: Any, **expressions: Any) -> Any:
        return super(TenantQuerySet, self._joins_in_account(fields)).values(*fields, **expressions)

    def values_list(self, *fields: Any, **kwargs: Any) -> Any:
        return super(TenantQuerySet, self._joins_in_account(fields)).values_list(*fields, **kwargs)

    def _joins_in_account(self, fields: Iterable[Any]) -> TenantQuerySet:
        if self.model.tenant_field != "account":  # Account itself
            return self
        paths = set()
        for name in fields:
            if not isinstance(name, str):
                continue
            parts = name.split(LOOKUP_SEP)
            model = self.model
            for depth, part in enumerate(parts[:-1], start=1):
                try:
                    field = model._meta.get_field(part)
                except FieldDoesNotExist:
                    break
                related = field.related_model
                # A required foreign key only: the filter makes its join an inner one, which
                # would drop rows across a reverse relation or a nullable key.
                if not (
                    field.many_to_one
                    and field.concrete
                    and not field.null
                    and isinstance(related, type)
                    and issubclass(related, TenantModel)
                ):
                    break
                paths.add(LOOKUP_SEP.join(parts[:depth]))
                model = related
        if not paths:
            return self
        return self.filter(**{f"{path}__account": F("account") for path in sorted(paths)})

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        require_scope(self.model, self._tenant_scope, "bulk_create", self.db)
        objs = list(objs)
        if self._tenant_scope not in (None, CROSS_TENANT):
            for obj in objs:
                if getattr(obj, "account_id", False) is None:
                    obj.account_id = self._tenant_scope
        return super().bulk_create(objs, *args, **kwargs)

    def raw(
        self,
        raw_query: Any,
        params: Any = (),
        translations: dict[str, str] | None = None,
        using: str | None = None,
    ) -> TenantRawQuerySet:
        qs = TenantRawQuerySet(
            raw_query,
            model=self.model,
            params=params,
            translations=translations,
            using=using or self.db,
        )
        qs.tenant_scope = self._tenant_scope
        return qs


for _name in GUARDED:
    setattr(TenantQuerySet, _name, _guard(_name))


_TenantManagerBase = models.Manager.from_queryset(TenantQuerySet)


class TenantManager(_TenantManagerBase):
    def get_queryset(self) -> TenantQuerySet:
        queryset = cast(TenantQuerySet, super().get_queryset())
        tenant = get_current_tenant()
        return queryset if tenant is None else queryset.scoped_to(tenant)


class TenantModel(models.Model):
    """Base for the tenant tables: ``account`` is filled in from the current tenant, and
    ``save()``/``delete()`` refuse to run without one (they go through the scoped manager)."""

    tenant_field = "account"

    objects = TenantManager()

    class Meta:
        abstract = True
        base_manager_name = "objects"

    account_id: Any

    def save(self, *args: Any, **kwargs: Any) -> None:
        tenant = get_current_tenant()
        if self.account_id is None and tenant is not None:
            self.account_id = tenant.pk
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        require_scope(type(self), self.account_id, "delete", kwargs.get("using") or self._state.db)
        return super().delete(*args, **kwargs)
