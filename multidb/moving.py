"""Moving a tenant's database to another server: copy, verify, switch the catalogue, drop the
source.

The tenant is closed first: its role loses CONNECT on the source database and its sessions
are ended, so from then on its requests get the 503 page (a connection refused is "try
again", shared.views.server_error) and no write can land in the source after the copy began.
Other tenants are not touched. The copy is the archive's (shared.transfer: COPY out of one
snapshot, into the new database with COPY), verified by digest before the catalogue switches.
Processes that looked the tenant up a moment ago still try the source, which refuses or no
longer exists: another 503, never stale rows. If anything fails before the switch, the tenant
is reopened where it was and the new database dropped: nothing is lost. Only the tenant's own
sessions are ended: a superuser's on the source (a pooler's auth_query) can make dropping the
source fail after the switch, which the command then says, naming the database left behind.
One move, drop or erase of a slug runs at a time (provisioning.slug_lock).
"""

from __future__ import annotations

import copy
import secrets
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


def _as_catalogue_writes(host: str, port: int) -> tuple[str, int]:
    # The catalogue writes the catalogue's own server as no server at all.
    return ("", 0) if (host, port) == main_server() else (host, port)


def _catalogued(slug: str) -> Tenant:
    tenant = Tenant.objects.using(OWNER_ALIAS).filter(slug=slug).first()
    if tenant is None:
        raise MoveRefused(f"there is no tenant {slug}")
    return tenant


class SourceLeft(MoveRefused):
    """The tenant moved, but its old database could not be dropped."""


def move_tenant(
    strategy: Strategy, slug: str, host: str, port: int, progress: Callable[[str], None]
) -> Moved:
    host, port = _as_catalogue_writes(host, port)
    with provisioning.slug_lock(slug):
        tenant = _catalogued(slug)
        if tenant.state != Tenant.State.READY:
            raise MoveRefused(f"{slug} is {tenant.state}, not ready: it cannot move")
        if (tenant.db_host, tenant.db_port or 0) == (host, port):
            raise MoveRefused(f"{slug} is on {tenant.server} already")
        target = copy.copy(tenant)
        target.db_host, target.db_port = host, port or None
        # Everything that can be checked before the tenant is closed, is.
        with provisioning.server_connection(host, port or None) as conn:
            for kind, table, column in (("a database", "pg_database", "datname"),
                                        ("a role", "pg_roles", "rolname")):  # fmt: skip
                if conn.execute(
                    f"SELECT FROM pg_catalog.{table} WHERE {column} = %s", [tenant.db_name]
                ).fetchone():
                    raise MoveRefused(
                        f"{target.server} has {kind} named {tenant.db_name!r} already; "
                        "nothing moved"
                    )
        with strategy.tenant_alias(tenant) as source:
            migrations = transfer.applied_migrations(source)
        transfer.check_migrations(strategy, strategy.name, migrations)
        return _move(strategy, tenant, target, progress)


def abort_move(slug: str, host: str, port: int) -> str:
    """After a move that was killed midway: reopen the tenant where the catalogue has it, and
    drop what the move made on the server it was going to (never the database the catalogue
    points at)."""
    host, port = _as_catalogue_writes(host, port)
    with provisioning.slug_lock(slug):
        tenant = _catalogued(slug)
        _reopen(tenant)
        target = copy.copy(tenant)
        target.db_host, target.db_port = host, port or None
        if same_server(tenant, target):  # under any name: never drop where it is served
            return f"Reopened {slug} on {tenant.server}."
        with provisioning.server_connection(host, port or None) as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                [tenant.db_name],
            ).fetchone()
        if row is not None and row[0] != _mark(tenant):
            raise MoveRefused(
                f"reopened {slug} on {tenant.server}; the database {tenant.db_name} on "
                f"{target.server} is not one a move of it left, and was not dropped"
            )
        provisioning.drop_database(target)
        return f"Reopened {slug} on {tenant.server}; dropped what a move left on {target.server}."


def _mark(tenant: Tenant) -> str:
    # On the copy while it is made: what --abort may drop.
    return f"movetenant: copy of catalogue tenant {tenant.pk} in progress"


def same_server(a: Tenant, b: Tenant) -> bool:
    """Whether two places are one PostgreSQL server, whatever names reach it: a session
    opened on one, with a name nobody else uses, is seen from the other."""
    token = f"tenancy-{secrets.token_hex(8)}"
    with (
        provisioning.server_connection(a.db_host, a.db_port) as first,
        provisioning.server_connection(b.db_host, b.db_port) as second,
    ):
        first.execute("SELECT set_config('application_name', %s, false)", [token])
        return (
            second.execute(
                "SELECT FROM pg_stat_activity WHERE application_name = %s", [token]
            ).fetchone()
            is not None
        )


def _move(
    strategy: Strategy, tenant: Tenant, target: Tenant, progress: Callable[[str], None]
) -> Moved:
    progress(f"closing {tenant.slug} on {tenant.server}")
    closed = time.monotonic()
    created = switched = False
    try:
        _close(tenant)
        with tempfile.TemporaryDirectory(prefix="movetenant-") as scratch:
            progress("copying its rows out")
            path = Path(scratch) / "tenant.tgz"
            transfer.export_tenant(strategy, tenant, path, lambda what: None)
            manifest, tables = archive.read(path)
            data = archive.tenant_data(manifest, tables, tenant.slug)
        progress(f"creating its database on {target.server}")
        created = True  # from here a failure may have left some of it: drop what there is
        try:
            provisioning.create_database(
                target.db_name,
                target.db_host,
                target.db_port,
                generation=target.role_generation,
                statement_timeout=tenant.statement_timeout,
                connection_limit=tenant.connection_limit,
            )
        except provisioning.DatabaseTaken:
            created = False  # somebody else's, made since the check: not ours to drop
            raise
        with provisioning.server_connection(target.db_host, target.db_port) as conn:
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(target.db_name), sql.Literal(_mark(tenant))
                )
            )
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
        switched = (
            Tenant.objects.using(OWNER_ALIAS)
            .filter(pk=tenant.pk, db_host=tenant.db_host, db_port=tenant.db_port)
            .update(db_host=target.db_host, db_port=target.db_port)
        ) == 1
        if not switched:
            raise MoveRefused(f"{tenant.slug} was dropped or changed while it moved")
    except BaseException:
        _undo(tenant, target, created)
        raise
    reopened = time.monotonic()
    with provisioning.server_connection(target.db_host, target.db_port) as conn:
        conn.execute(  # the tenant's database now, which no --abort may drop
            sql.SQL("COMMENT ON DATABASE {} IS NULL").format(sql.Identifier(target.db_name))
        )
    strategy.forget_tenant(tenant.slug)
    progress(f"dropping the source database on {tenant.server}")
    try:
        provisioning.drop_database(tenant)
    except Exception as exc:
        raise SourceLeft(
            f"{tenant.slug} moved to {target.server} and is served from there, but its old "
            f"database {tenant.db_name} on {tenant.server} could not be dropped "
            f"({str(exc).strip().splitlines()[0]}): drop it there once nothing holds it"
        ) from None
    return Moved(target.server, sum(data.counts().values()), reopened - closed)


def _undo(tenant: Tenant, target: Tenant, created: bool) -> None:
    """After a failure: ask the catalogue, on a new connection, where the tenant is. Where it
    still names the source, reopen the source and drop what was made of the copy. Where it
    names the copy (a switch whose answer was lost), the tenant moved: leave the source closed.
    Where it cannot be asked, change nothing: --abort decides later."""
    connections[OWNER_ALIAS].close()
    try:
        where = Tenant.objects.using(OWNER_ALIAS).filter(pk=tenant.pk).first()
    except Exception:
        raise MoveRefused(
            f"moving {tenant.slug} failed and the catalogue cannot be read: it stays closed; "
            f"run movetenant {tenant.slug} --to {target.server} --abort once it can"
        ) from None
    if where is not None and (where.db_host, where.db_port) == (target.db_host, target.db_port):
        raise SourceLeft(
            f"{tenant.slug} moved to {target.server} and is served from there, but its old "
            f"database {tenant.db_name} on {tenant.server} was not dropped: drop it there"
        )
    try:
        _reopen(tenant)
    finally:
        if created:
            provisioning.drop_database(target)


def _close(tenant: Tenant) -> None:
    """No session of the tenant's role on its database, and no new one: its requests get the
    503 page until it reopens, and nothing it writes can miss the copy. Only the tenant's own
    sessions are ended; a superuser's (a pooler's auth_query, say) may stay."""
    forget(tenant)  # this process's own connections to it
    name = sql.Identifier(tenant.db_name)
    with provisioning.server_connection(tenant.db_host, tenant.db_port) as conn:
        conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(name, name))
        deadline = time.monotonic() + 10
        while True:
            (left,) = provisioning.one(
                conn,
                "SELECT count(pg_terminate_backend(pid, 1000)) FROM pg_stat_activity "
                "WHERE datname = %s AND usename = %s",
                [tenant.db_name, tenant.db_name],
            )
            if not left:
                break
            if time.monotonic() > deadline:
                raise MoveRefused(f"{tenant.slug}'s sessions did not end within 10 s")
            conn.execute("SELECT pg_stat_clear_snapshot()")
            time.sleep(0.05)


def _reopen(tenant: Tenant) -> None:
    with provisioning.server_connection(tenant.db_host, tenant.db_port) as conn:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(tenant.db_name), sql.Identifier(tenant.db_name)
            )
        )
