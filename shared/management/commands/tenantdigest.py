import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shared import digest
from shared.strategy import get_strategy


class Command(BaseCommand):
    help = (
        "Print the digest of a tenant's rows: independent of ids and of the strategy, so the "
        "same rows give the same value in rls, multidb and schemas."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--json", action="store_true", help="the tables' counts and digests")

    def handle(self, *args: str, slug: str, **options: Any) -> None:
        strategy = get_strategy()
        tenant = strategy.get_tenant(slug)
        if tenant is None:
            raise CommandError(f"there is no tenant {slug}")
        result = digest.of_tenant(strategy, tenant)
        if options["json"]:
            tables = {t: {"rows": n, "sha256": h} for t, (n, h) in result.tables.items()}
            self.stdout.write(json.dumps({"slug": slug, "digest": result.value, "tables": tables}))
            return
        counts = "  ".join(f"{table}s {rows:,}" for table, rows in result.counts().items())
        self.stdout.write(f"{slug} {result.value}\n  {counts}")
