from typing import Any

import psycopg
from django.core.management.base import CommandError, CommandParser
from django.db import Error as DatabaseError

from shared.db import require_owner
from shared.db.locks import Busy
from shared.erasure import TenantChanged, erase_tenant
from shared.management.base import ProgressCommand, confirm
from shared.strategy import get_strategy


class Command(ProgressCommand):
    help = (
        "Erase a tenant: every row, schema or database of it. Leaves a record (slug, time, row "
        "counts, digest of what was erased) in the privileged catalogue, and checks that "
        "nothing of the tenant is left."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: str, slug: str, yes: bool, **options: Any) -> None:
        require_owner()
        strategy = get_strategy()
        tenant = strategy.get_tenant(slug)
        if tenant is None:
            raise CommandError(f"there is no tenant {slug}")
        confirm(
            slug,
            f"Erase {slug} and all of its data, for good?",
            doing="erasing",
            done="erased",
            yes=yes,
        )
        try:
            record, remains = erase_tenant(strategy, tenant, self.progress)
        except TenantChanged as exc:
            raise CommandError(str(exc)) from None
        except Busy as exc:
            raise CommandError(f"{exc}; nothing was erased") from None
        except (DatabaseError, psycopg.Error) as exc:
            raise CommandError(
                f"erasing {slug} failed: {str(exc).strip().splitlines()[0]}. "
                "Run the same command again to finish."
            ) from None
        if remains:
            raise CommandError(f"{slug} was erased, but a scan still finds: {'; '.join(remains)}")
        counts = "  ".join(f"{t}s {n:,}" for t, n in record.counts.items())
        self.stdout.write(
            f"Erased {slug} at {record.erased_at:%Y-%m-%d %H:%M:%S} UTC (record {record.pk})\n"
            f"  {counts}\n  {record.digest}\n  a scan as the owner finds nothing of it"
        )
