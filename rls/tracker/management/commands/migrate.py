from django.core.management.commands import migrate

from rls.scoping import PRIVILEGED_ALIAS


class Command(migrate.Command):
    """``migrate`` as the owner role unless told otherwise: the runtime role may not create
    anything, and the tables must belong to the owner for the policies to hold."""

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=PRIVILEGED_ALIAS)
