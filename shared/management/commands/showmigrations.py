from typing import Any

from django.core.management.base import CommandParser
from django.core.management.commands import showmigrations

from shared.db import OWNER_ALIAS, require_owner


class Command(showmigrations.Command):
    """Migration history lives where migrations run: on the owner's connection."""

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER_ALIAS)

    def handle(self, *args: str, **options: Any) -> None:
        if options["database"] == OWNER_ALIAS:
            require_owner()
        super().handle(*args, **options)
