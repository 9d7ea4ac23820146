"""Moving a tenant's database to another server: copy, verify, switch the catalogue, drop the
source.

The tenant is closed first: its role loses CONNECT on the source database and its sessions
are ended, so from then on its requests get the 503 page (a connection refused is "try
again", shared.views.server_error) and no write can land in the source after the copy began.
Other tenants are not touched. The copy is the archive's (shared.transfer: COPY out of one
snapshot, into the new database with COPY), verified by digest before the catalogue switches.
Processes that looked the tenant up a moment ago still try the source, which refuses or no
longer exists: another 503, never stale rows. If anything fails before the switch, the new
database is dropped and the tenant reopened where it was: nothing is lost.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from django.db import connections, transaction
from psycopg import sql

from multidb import provisioning
from multidb.catalogue.models import Tenant
from multidb.routing import alias_for, forget
from shared import archive, digest, transfer
from shared.copy import load_contained
from shared.db import OWNER_ALIAS
from shared.strategy import Moved, MoveRefused, Strategy
from shared.tenancy import activate


def main_server() -> tuple[str, int]:
    conf = connections.settings[OWNER_ALIAS]
    return str(conf["HOST"]), int(conf["PORT"])


def move_tenant(
    strategy: Strategy, slug: str, host: str, port: int, progress: Callable[[str], None]
) -> Moved:
    # The catalogue writes the catalogue's own server as no server at all.
    if (host, port) == main_server():
        host, port = "", 0
    with provisioning.slug_lock(slug):
        tenant = Tenant.objects.using(OWNER_ALIAS).filter(slug=slug).first()
        if tenant is None or tenant.state != Tenant.State.READY:
            raise MoveRefused(f"there is no tenant {slug}")
        if (tenant.db_host, tenant.db_port or 0) == (host, port):
            raise MoveRefused(f"{slug} is on {tenant.server} already")
        target = copy.copy(tenant)
        target.db_host, target.db_port = host, port or None
        with provisioning.server_connection(host, port or None) as conn:
            if provisioning.database_exists(conn, tenant.db_name):
                raise MoveRefused(
                    f"{target.server} has a database {tenant.db_name!r} already; nothing moved"
                )
        return _move(strategy, tenant, target, progress)


def _move(
    strategy: Strategy, tenant: Tenant, target: Tenant, progress: Callable[[str], None]
) -> Moved:
    progress(f"closing {tenant.slug} on {tenant.server}")
    closed = time.monotonic()
    _close(tenant)
    created = False
    try:
        with tempfile.TemporaryDirectory(prefix="movetenant-") as scratch:
            progress("copying its rows out")
            path = Path(scratch) / "tenant.tgz"
            transfer.export_tenant(strategy, tenant, path, lambda what: None)
            manifest, tables = archive.read(path)
            transfer.check_migrations(strategy, manifest)
            data = archive.tenant_data(manifest, tables, tenant.slug)
        progress(f"creating its database on {target.server}")
        provisioning.create_database(
            target.db_name, target.db_host, target.db_port, generation=target.role_generation
        )
        created = True
        alias = alias_for(target, owner=True)
        try:
            progress(f"loading {sum(data.counts().values()):,} rows and checking them")
            with transaction.atomic(using=alias):
                with connections[alias].cursor() as cursor:
                    load_contained(cursor, data)
                with activate(target):
                    loaded = digest.of_tenant(strategy, target, using=alias)
                if loaded.value != manifest.digest:
                    raise transfer.DigestMismatch(
                        f"the copy has digest {loaded.value}, the source {manifest.digest}"
                    )
        finally:
            connections[alias].close()
        progress("switching the catalogue")
        Tenant.objects.using(OWNER_ALIAS).filter(pk=tenant.pk).update(
            db_host=target.db_host, db_port=target.db_port
        )
    except BaseException:
        if created:
            provisioning.drop_database(target)
        _reopen(tenant)
        raise
    reopened = time.monotonic()
    strategy.forget_tenant(tenant.slug)
    progress(f"dropping the source database on {tenant.server}")
    provisioning.drop_database(tenant)
    return Moved(target.server, sum(data.counts().values()), reopened - closed)


def _close(tenant: Tenant) -> None:
    with provisioning.server_connection(tenant.db_host, tenant.db_port) as conn:
        conn.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
                sql.Identifier(tenant.db_name), sql.Identifier(tenant.db_name)
            )
        )
        provisioning.restrict_connect(conn, tenant.db_name, role=None)  # ends its sessions
    forget(tenant)  # this process's own connections to it


def _reopen(tenant: Tenant) -> None:
    with provisioning.server_connection(tenant.db_host, tenant.db_port) as conn:
        provisioning.restrict_connect(conn, tenant.db_name, role=tenant.db_name)
