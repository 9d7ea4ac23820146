from django.core.management.commands import showmigrations

from shared.management.commands.migrate import PRIVILEGED_ALIAS


class Command(showmigrations.Command):
    """Migration history lives where migrations run: on the owner's connection."""

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=PRIVILEGED_ALIAS)
