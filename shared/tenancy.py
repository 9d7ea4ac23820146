"""The current tenant, held in a ContextVar so that threads and asyncio tasks each see their own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, cast

from django.apps import apps


class TenantLike(Protocol):
    """What every strategy's tenant offers: rls's and schemas' Account, multidb's catalogue
    Tenant."""

    pk: Any
    slug: str
    name: str


class _Activation(Protocol):
    def activation(self, tenant: TenantLike | None) -> AbstractContextManager[object]: ...


_current: ContextVar[TenantLike | None] = ContextVar("current_tenant", default=None)


def get_current_tenant() -> TenantLike | None:
    return _current.get()


@contextmanager
def activate(tenant: TenantLike | None) -> Iterator[TenantLike | None]:
    """Make ``tenant`` current inside the block (``None``: no tenant), and run the strategy's own
    activation. Blocks nest; leaving one restores whatever was current before it."""
    token = _current.set(tenant)
    try:
        # The strategy, through the app registry: this module stays free of the strategies.
        with cast(_Activation, apps.get_app_config("shared")).activation(tenant):
            yield tenant
    finally:
        _current.reset(token)
