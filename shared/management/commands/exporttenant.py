import time
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import Error as DatabaseError

from shared.db import require_owner
from shared.management.base import ProgressCommand
from shared.strategy import get_strategy
from shared.transfer import export_tenant


class Command(ProgressCommand):
    help = (
        "Write one tenant to a portable archive (a manifest and its rows, read with COPY in "
        "one snapshot), which importtenant loads into any strategy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
        parser.add_argument("--force", action="store_true", help="replace FILE if it exists")

    def handle(self, *args: str, slug: str, output: Path, force: bool, **options: Any) -> None:
        require_owner()
        strategy = get_strategy()
        tenant = strategy.get_tenant(slug)
        if tenant is None:
            raise CommandError(f"there is no tenant {slug}")
        if output.exists() and not force:
            raise CommandError(f"{output} exists; pass --force to replace it")
        if not output.parent.is_dir():
            raise CommandError(f"there is no directory {str(output.parent)!r} to write into")
        started = time.monotonic()
        try:
            exported = export_tenant(strategy, tenant, output, self.progress)
        except (DatabaseError, OSError) as exc:
            raise CommandError(
                f"exporting {slug} failed: {str(exc).strip().splitlines()[0]}; "
                f"{output} was not written"
            ) from None
        manifest = exported.manifest
        counts = "  ".join(f"{t}s {v['rows']:,}" for t, v in manifest.tables.items())
        self.stdout.write(
            f"Exported {slug} to {output} ({exported.bytes:,} bytes, "
            f"{time.monotonic() - started:.2f} s)\n  {counts}\n  {manifest.digest}"
        )
