from contextlib import AbstractContextManager

from django.apps import AppConfig
from django.core import checks

from shared.strategy import get_strategy
from shared.tenancy import TenantLike


class SharedConfig(AppConfig):
    name = "shared"
    verbose_name = "Shared tenancy core"

    def ready(self) -> None:
        from shared.checks import check_pooling

        checks.register(check_pooling)

    def activation(self, tenant: TenantLike | None) -> AbstractContextManager[object]:
        """What the configured strategy does when ``tenant`` is activated
        (``shared.tenancy.activate``)."""
        return get_strategy().activation(tenant)
