from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Not here: run `manage.py runworker`, which runs each task in its tenant."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs="*")

    def handle(self, *args: Any, **options: Any) -> None:
        # django-tasks-db's own worker runs every task with no tenant active: each tenant task
        # would fail (or, in a strategy that did not refuse, run in no tenant at all).
        raise CommandError(
            "db_worker runs tasks with no tenant; run `manage.py runworker` (make worker), "
            "which runs each task in the tenant it was enqueued in"
        )
