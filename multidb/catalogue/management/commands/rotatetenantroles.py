from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from multidb import provisioning
from multidb.catalogue.models import Tenant
from multidb.routing import forget
from shared.db import OWNER_ALIAS, require_owner


class Command(BaseCommand):
    help = (
        "Give tenants' database roles new passwords (after a leak, or with --all after "
        "changing DJANGO_SECRET_KEY, from which they are derived)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slugs", nargs="*", metavar="slug")
        parser.add_argument("--all", action="store_true", help="every tenant")

    def handle(self, *args: str, slugs: list[str], all: bool, **options: Any) -> None:
        require_owner()
        if bool(slugs) == all:
            raise CommandError("name the tenants to rotate, or pass --all (not both)")
        tenants = Tenant.objects.using(OWNER_ALIAS).filter(state=Tenant.State.READY)
        if slugs:
            tenants = tenants.filter(slug__in=slugs)
            if missing := sorted(set(slugs) - {t.slug for t in tenants}):
                raise CommandError(f"no such tenant: {', '.join(missing)}; nothing was changed")
        for tenant in tenants.order_by("slug"):
            with provisioning.slug_lock(tenant.slug):
                self.rotate(Tenant.objects.using(OWNER_ALIAS).get(pk=tenant.pk))
            self.stdout.write(f"Rotated {tenant.slug}.")

    def rotate(self, tenant: Tenant) -> None:
        # The new password first, then the catalogue: a web process that reads the new
        # generation can log in at once; one still holding the old for up to its cache's 2 s
        # gets the 503 page for a new connection, never another tenant's database. set_role
        # also ends the sessions opened with the old password: after a leak, they may be the
        # leak's, and one could set a password of its own meanwhile.
        new = tenant.role_generation + 1
        with provisioning.server_connection(tenant.db_host, tenant.db_port) as conn:
            provisioning.set_role(
                conn, tenant.db_name, new, (tenant.statement_timeout, tenant.connection_limit)
            )
        Tenant.objects.using(OWNER_ALIAS).filter(pk=tenant.pk).update(role_generation=new)
        forget(tenant)
