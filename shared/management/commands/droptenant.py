from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shared.db import require_owner
from shared.db.locks import Busy
from shared.management.base import confirm
from shared.strategy import get_strategy


class Command(BaseCommand):
    help = "Remove a tenant and all of its data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: str, slug: str, yes: bool, **options: Any) -> None:
        require_owner()
        strategy = get_strategy()
        if strategy.get_tenant(slug) is None:
            raise CommandError(f"there is no tenant {slug}")
        confirm(
            slug, f"Drop {slug} and all of its data?", doing="dropping", done="dropped", yes=yes
        )
        try:
            strategy.drop_tenant(slug)
        except Busy as exc:
            raise CommandError(f"{exc}; nothing was dropped") from None
        self.stdout.write(f"Dropped {slug}.")
