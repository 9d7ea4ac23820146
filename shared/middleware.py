from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponseBase

from shared.checks import refuse_unsafe_configuration
from shared.hosts import tenant_slug
from shared.strategy import get_strategy
from shared.tenancy import TenantLike, activate


class TenantRequest(HttpRequest):
    """A request that has passed TenantMiddleware: ``tenant`` is its tenant, or None on the
    bare host."""

    tenant: TenantLike | None


class TenantMiddleware:
    """Resolves the tenant from the Host and keeps it current for exactly this request.

    The bare host runs with no tenant at all (``activate(None)``), so nothing left over from
    another request or an outer context can apply to it.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        # Runs once, as the server loads its handler: refuse to start rather than leak.
        refuse_unsafe_configuration()
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def resolve(self, request: TenantRequest) -> TenantLike | None:
        # get_host() validates against ALLOWED_HOSTS first: a foreign Host is a 400 already.
        slug = tenant_slug(request.get_host(), settings.TENANCY_BASE_DOMAIN)
        tenant = None if slug is None else get_strategy().find_tenant(slug)
        if slug is not None and tenant is None:
            raise Http404(f"There is no tenant called “{slug}”.")
        request.tenant = tenant
        return tenant

    def __call__(self, request: TenantRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self.__acall__(request)
        with activate(self.resolve(request)):
            response: HttpResponseBase = self.get_response(request)
            return response

    async def __acall__(self, request: TenantRequest) -> HttpResponseBase:
        tenant = await sync_to_async(self.resolve)(request)
        with activate(tenant):
            response: HttpResponseBase = await self.get_response(request)
            return response
