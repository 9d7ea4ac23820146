import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from shared.db import require_owner
from shared.strategy import get_strategy
from shared.tenancy import activate


class Command(BaseCommand):
    help = "List the tenants with their names and subtask counts (--json for the benchmarks)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON document")

    def handle(self, *args: str, **options: Any) -> None:
        require_owner()
        strategy = get_strategy()
        tenants = []
        for tenant in strategy.list_tenants():
            # Counted as the runtime role, inside the tenant: what its pages will show.
            with activate(tenant):
                names = list(
                    strategy.model("subtask")._default_manager.values_list("name", flat=True)
                )
            tenants.append(
                {
                    "slug": tenant.slug,
                    "name": tenant.name,
                    "subtasks": len(names),
                    # What the load test checks each row against: a row of another tenant
                    # shows a name this tenant does not have, whatever the account cell says.
                    "subtask_names": sorted(set(names)),
                }
            )
        if options["json"]:
            self.stdout.write(json.dumps(tenants))
            return
        for t in tenants:
            self.stdout.write(f"{t['slug']:24} {t['subtasks']:>8} subtasks  {t['name']}")
        self.stdout.write(f"{len(tenants)} tenants")
