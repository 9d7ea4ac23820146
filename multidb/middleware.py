from django.db import transaction

from multidb.routing import alias_for


class TenantAtomicRequests:
    """ATOMIC_REQUESTS for the tenant's database: Django's own setting only covers the aliases
    that exist when a request starts, and would open a transaction on every one of them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        tenant = getattr(request, "tenant", None)
        if tenant is None or getattr(view_func, "_non_atomic_requests", ()):
            return None
        atomic = transaction.atomic(using=alias_for(tenant))
        return atomic(view_func)(request, *view_args, **view_kwargs)
