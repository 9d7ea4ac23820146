from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands import migrate

from shared.db import OWNER_ALIAS, RUNTIME_ALIAS, require_owner


class Command(migrate.Command):
    """``migrate`` as the owner role unless told otherwise: the runtime role may not create
    anything, and the tables must belong to the owner (for rls, so that the policies hold)."""

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER_ALIAS)

    def handle(self, *args: str, **options: Any) -> None:
        from django.db import connections

        alias = options["database"]
        if alias == OWNER_ALIAS:
            require_owner()
        runtime_role = settings.DATABASES[RUNTIME_ALIAS]["USER"]
        if alias in connections.settings and connections.settings[alias]["USER"] == runtime_role:
            raise CommandError(
                f"migrations run as the owner role (--database {OWNER_ALIAS}); "
                f"'{alias}' is the runtime role, which cannot change the schema"
            )
        super().handle(*args, **options)
