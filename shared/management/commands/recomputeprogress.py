from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shared.progress import recompute_progress
from shared.strategy import get_strategy
from shared.tenancy import activate


class Command(BaseCommand):
    help = (
        "Enqueue the task that recomputes each project's progress, once per tenant named; "
        "a worker (manage.py runworker) runs it in that tenant."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slugs", nargs="+", metavar="slug")

    def handle(self, *args: Any, slugs: list[str], **options: Any) -> None:
        strategy = get_strategy()
        found = {slug: strategy.get_tenant(slug) for slug in slugs}
        missing = [slug for slug, tenant in found.items() if tenant is None]
        if missing:
            raise CommandError(f"there is no tenant {', '.join(missing)}; nothing was enqueued")
        for tenant in filter(None, found.values()):
            with activate(tenant):
                result = recompute_progress.enqueue()
            self.stdout.write(f"Enqueued recompute_progress for {tenant.slug}: task {result.id}")
