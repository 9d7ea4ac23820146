from django.core.management.base import CommandError
from django.core.management.commands import migrate

from rls.scoping import PRIVILEGED_ALIAS


class Command(migrate.Command):
    """``migrate`` as the owner role unless told otherwise: the runtime role may not create
    anything, and the tables must belong to the owner for the policies to hold."""

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=PRIVILEGED_ALIAS)

    def handle(self, *args, **options):
        if options["database"] != PRIVILEGED_ALIAS:
            raise CommandError(
                f"migrations run on the '{PRIVILEGED_ALIAS}' connection (the owner role); "
                f"'{options['database']}' is the runtime role, which cannot change the schema"
            )
        return super().handle(*args, **options)
