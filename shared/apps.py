from django.apps import AppConfig
from django.core import checks


class SharedConfig(AppConfig):
    name = "shared"
    verbose_name = "Shared tenancy core"

    def ready(self):
        from shared.checks import check_pooling

        checks.register(check_pooling)
