from collections.abc import Callable
from typing import Any, cast

from django.db import transaction
from django.http import HttpRequest, HttpResponseBase

from multidb.catalogue.models import Tenant
from multidb.routing import alias_for


class TenantAtomicRequests:
    """ATOMIC_REQUESTS for the tenant's database: Django's own setting only covers the aliases
    that exist when a request starts, and would open a transaction on every one of them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponseBase],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        tenant = getattr(request, "tenant", None)
        if tenant is None or getattr(view_func, "_non_atomic_requests", None):
            return None
        atomic = transaction.atomic(using=alias_for(cast(Tenant, tenant)))
        response: HttpResponseBase = atomic(view_func)(request, *view_args, **view_kwargs)
        return response
