from django.apps import AppConfig
from django.core import checks


class TrackerConfig(AppConfig):
    name = "rls.tracker"
    label = "tracker"
    verbose_name = "Task tracker (row-level security)"

    def ready(self):
        from rls.checks import check_row_level_security

        checks.register(check_row_level_security, checks.Tags.database)
