from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shared.db import require_owner
from shared.strategy import ServerRefused, get_strategy


def _milliseconds(text: str) -> int:
    """200, 200ms, 2s or 0 (no limit)."""
    value = text.strip().lower()
    scale = 1000 if value.endswith("s") and not value.endswith("ms") else 1
    number = value.removesuffix("ms").removesuffix("s")
    if not number.isdigit() or int(number) * scale > 2**31 - 1:
        raise ValueError(text)
    return int(number) * scale


class Command(BaseCommand):
    help = (
        "Show or change a tenant's limits: its statement timeout (every strategy) and its "
        "database's connection limit (multidb)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--statement-timeout",
            metavar="TIME",
            help="how long one statement may run: 200, 200ms or 2s; 0 for no limit",
        )
        parser.add_argument(
            "--connection-limit",
            type=int,
            metavar="N",
            help="sessions its database accepts at once, -1 for no limit (multidb)",
        )

    def handle(
        self,
        *args: Any,
        slug: str,
        statement_timeout: str | None,
        connection_limit: int | None,
        **options: Any,
    ) -> None:
        require_owner()
        strategy = get_strategy()
        if strategy.get_tenant(slug) is None:
            raise CommandError(f"there is no tenant {slug}")
        timeout = None
        if statement_timeout is not None:
            try:
                timeout = _milliseconds(statement_timeout)
            except ValueError:
                raise CommandError(
                    f"--statement-timeout {statement_timeout!r}: give milliseconds (200, "
                    "200ms) or seconds (2s), 0 for no limit"
                ) from None
        if connection_limit is not None and connection_limit < -1:
            raise CommandError("--connection-limit must be -1 (no limit) or more")
        if timeout is not None or connection_limit is not None:
            try:
                strategy.set_limits(
                    slug, statement_timeout=timeout, connection_limit=connection_limit
                )
            except ServerRefused as exc:
                raise CommandError(f"{exc}; nothing was changed") from None
        tenant = strategy.get_tenant(slug)
        assert tenant is not None
        limits = strategy.limits(tenant, privileged=True)
        self.stdout.write(f"{slug}: " + ", ".join(f"{k} {v}" for k, v in limits.items()))
