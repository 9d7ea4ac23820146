from typing import Any

import psycopg
from django.core.management.base import CommandError, CommandParser
from django.db import Error as DatabaseError

from shared.archive import ArchiveRefused
from shared.db import require_owner
from shared.db.locks import Busy
from shared.management.base import ProgressCommand
from shared.strategy import MoveRefused, ServerRefused, get_strategy
from shared.transfer import DigestMismatch


class Command(ProgressCommand):
    help = (
        "Move a tenant's database to another PostgreSQL server (multidb): copy, verify, switch "
        "the catalogue, drop the source. Its requests get the 503 page meanwhile; other "
        "tenants are not touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--to", required=True, metavar="HOST:PORT", help="the new server")
        parser.add_argument(
            "--abort",
            action="store_true",
            help="after a move to HOST:PORT that was killed midway: reopen the tenant where "
            "it is and drop what the move left there",
        )

    def handle(self, *args: str, slug: str, to: str, **options: Any) -> None:
        require_owner()
        host, _, digits = to.rpartition(":")
        if not host or not digits.isdigit():
            raise CommandError(f"--to must be HOST:PORT, not {to!r}")
        strategy = get_strategy()
        try:
            if options["abort"]:
                self.stdout.write(strategy.abort_move(slug, host, int(digits)))
                return
            moved = strategy.move_tenant(slug, host, int(digits), self.progress)
        except (ServerRefused, MoveRefused) as exc:
            raise CommandError(str(exc)) from None
        except Busy as exc:
            raise CommandError(f"{exc}; nothing moved") from None
        except (ArchiveRefused, DigestMismatch, DatabaseError, psycopg.Error, OSError) as exc:
            raise CommandError(
                f"moving {slug} failed: {str(exc).strip().splitlines()[0]}; it is served "
                "where it was, nothing moved"
            ) from None
        self.stdout.write(
            f"Moved {slug} to {moved.server}: {moved.rows:,} rows, its requests got "
            f"the 503 page for {moved.closed_seconds:.1f} s"
        )
