from django.core.management.base import BaseCommand, CommandError, CommandParser

from shared.db import require_owner
from shared.db.locks import Busy
from shared.slugs import SlugRefused
from shared.strategy import TenantExists, get_strategy


class Command(BaseCommand):
    help = "Create a tenant, ready to be served at <slug>.<base domain>."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", help="display name (default: the slug)")
        parser.add_argument(
            "--server",
            metavar="HOST:PORT",
            help="the PostgreSQL server for its database (strategies that "
            "place tenants on servers)",
        )

    def handle(
        self, *args: str, slug: str, name: str | None, server: str | None, **options: object
    ) -> None:
        require_owner()
        strategy = get_strategy()
        host, port = "", None
        if server:
            if not strategy.places_tenants_on_servers:
                raise CommandError(
                    f"the {strategy.name} strategy keeps every tenant on one "
                    "server; --server does not apply"
                )
            host, _, digits = server.rpartition(":")
            if not host or not digits.isdigit():
                raise CommandError(f"--server must be HOST:PORT, not {server!r}")
            port = int(digits)
        try:
            tenant = strategy.create_tenant(slug, name or slug, host=host, port=port)
        except (SlugRefused, TenantExists, Busy) as exc:
            raise CommandError(f"{exc}; nothing was changed") from None
        except Exception as exc:
            raise CommandError(
                f"creating {slug} failed: {str(exc).strip().splitlines()[0]}. "
                "Run the same command again to finish."
            ) from None
        self.stdout.write(f"Created {tenant.slug} ({tenant.name}).")
