import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shared.db import OWNER_ALIAS, require_owner
from shared.health import report
from shared.strategy import get_strategy


class Command(BaseCommand):
    help = (
        "Report each tenant's health: reachable, migrations current, limits, last error. "
        "Exits 1 when a tenant is unreachable or behind on migrations."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slugs", nargs="*", metavar="slug", help="only these tenants")
        parser.add_argument("--json", action="store_true", help="one JSON object per tenant")

    def handle(self, *args: Any, slugs: list[str], **options: Any) -> None:
        require_owner()
        strategy = get_strategy()
        if slugs:
            known = set(
                strategy.tenant_model()
                ._default_manager.using(OWNER_ALIAS)
                .filter(slug__in=slugs)
                .values_list("slug", flat=True)
            )
            if unknown := sorted(set(slugs) - known):
                raise CommandError(f"there is no tenant {', '.join(unknown)}")
        found = report(strategy, privileged=True, slugs=slugs or None)
        for health in found:
            if options["json"]:
                self.stdout.write(_json(health.as_dict()))
                continue
            state = "ok" if health.reachable and health.migrations == "current" else "PROBLEM"
            limits = ", ".join(f"{k} {v}" for k, v in health.limits.items())
            self.stdout.write(f"{health.slug}: {state}")
            self.stdout.write(
                f"  reachable: {'yes' if health.reachable else 'no: ' + health.problem}"
            )
            self.stdout.write(f"  migrations: {health.migrations}")
            self.stdout.write(f"  limits: {limits or '-'}")
            self.stdout.write(f"  last error: {health.last_error or '-'}")
        bad = [h.slug for h in found if not h.reachable or h.migrations != "current"]
        if bad:
            raise CommandError(
                f"{len(bad)} of {len(found)} tenants need attention: {', '.join(bad)}",
                returncode=1,
            )
        if not options["json"]:
            self.stdout.write(f"All {len(found)} tenants are reachable and current.")


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True)
