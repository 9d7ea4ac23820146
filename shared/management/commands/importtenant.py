import time
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import Error as DatabaseError

from shared.archive import ArchiveRefused
from shared.db import require_owner
from shared.db.locks import Busy
from shared.management.base import ProgressCommand
from shared.slugs import SlugRefused
from shared.strategy import TenantExists, get_strategy
from shared.transfer import DigestMismatch, import_tenant


class Command(ProgressCommand):
    help = (
        "Create a tenant from an archive written by exporttenant (in any strategy), all or "
        "nothing: its rows are checked against the archive's digest before and after loading."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path, metavar="FILE")
        parser.add_argument("--slug", help="the new tenant's slug (default: the archive's)")
        parser.add_argument(
            "--allow-erased",
            action="store_true",
            help="import even though a tenant by that slug was erased (erasetenant)",
        )

    def handle(
        self, *args: str, archive: Path, slug: str | None, allow_erased: bool, **options: Any
    ) -> None:
        require_owner()
        strategy = get_strategy()
        started = time.monotonic()
        try:
            manifest, tenant = import_tenant(
                strategy, archive, slug, self.progress, allow_erased=allow_erased
            )
        except (ArchiveRefused, DigestMismatch) as exc:
            raise CommandError(f"{exc}") from None
        except (SlugRefused, TenantExists, Busy) as exc:
            raise CommandError(f"refused: {exc}; nothing was imported") from None
        except DatabaseError as exc:
            raise CommandError(
                f"importing {archive} failed: {str(exc).strip().splitlines()[0]}; "
                "nothing was imported"
            ) from None
        counts = "  ".join(f"{t}s {v['rows']:,}" for t, v in manifest.tables.items())
        self.stdout.write(
            f"Imported {tenant.slug} ({tenant.name}) from {archive}, exported from "
            f"{manifest.strategy} at {manifest.exported_at} "
            f"({time.monotonic() - started:.2f} s)\n  {counts}\n  {manifest.digest}, checked"
        )
