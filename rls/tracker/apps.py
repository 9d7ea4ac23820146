from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


class TrackerConfig(AppConfig):
    name = "rls.tracker"
    label = "tracker"
    verbose_name = "Task tracker (row-level security)"

    def ready(self) -> None:
        from rls.checks import check_row_level_security
        from rls.index import after_migrate

        checks.register(check_row_level_security, checks.Tags.database)
        post_migrate.connect(after_migrate, sender=self)
