"""Creating and dropping tenant databases, as the owner role.

A tenant's database is a copy of a migrated template database (``CREATE DATABASE ...
TEMPLATE``), which is much faster than migrating every new database. The template lives on
each server that holds tenants, and is migrated again whenever the migrations change.

Each tenant database has a login role of its own, named like the database, which alone may
connect to it and use its tables: one tenant's session cannot reach another's database, read
its size, or see its queries in pg_stat_activity. The roles are made and dropped through the
bootstrap's ``tenancy_roles`` functions (the owner has no CREATEROLE); their passwords are
derived (multidb.credentials).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from psycopg import sql

from multidb.catalogue.models import DEFAULT_CONNECTION_LIMIT
from multidb.credentials import role_password
from multidb.routing import alias_for, forget
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS, connect_directly
from shared.db.locks import advisory_lock
from shared.models import DEFAULT_STATEMENT_TIMEOUT_MS

if TYPE_CHECKING:
    from multidb.catalogue.models import Tenant


@dataclass(frozen=True)
class Place:
    """A database on a server, in the shape alias_for() expects."""

    slug: str
    db_name: str
    db_host: str = ""
    db_port: int | None = None
    role_generation: int = 1

    @property
    def pk(self) -> str:
        return self.slug  # what alias_for() keys a tenant's connections by


def catalogue_name() -> str:
    return str(connections.settings[OWNER_ALIAS]["NAME"])


def database_name(slug: str) -> str:
    return f"{catalogue_name()}_{slug}"


def template(host: str = "", port: int | None = None) -> Place:
    where = f"{host}:{port}" if host else "main"
    return Place(f"_template@{where}", f"{catalogue_name()}_template", host, port)


def server_connection(
    host: str = "", port: int | None = None
) -> psycopg.Connection[tuple[Any, ...]]:
    """The owner role on the server's maintenance database, for CREATE and DROP DATABASE."""
    server: dict[str, Any] = {"host": host} if host else {}
    server |= {"port": port} if port else {}
    return connect_directly(OWNER_ALIAS, dbname="postgres", autocommit=True, **server)


def database_exists(conn: psycopg.Connection, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
    )


def leaf_migrations(alias: str) -> set[tuple[str, str]]:
    executor = MigrationExecutor(connections[alias])
    return {node for node in executor.loader.graph.leaf_nodes() if node[0] == "tracker"}


def pending_migrations(alias: str) -> list:
    executor = MigrationExecutor(connections[alias])
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


def applied_label(alias: str) -> str:
    leaf = sorted(leaf_migrations(alias))[-1]
    return f"{leaf[0]}.{leaf[1]}"


def create_closed(conn: psycopg.Connection, name: str, template: str) -> None:
    """A new database has PostgreSQL's default rights (anyone may connect): it is created
    closed to every connection until ``restrict_connect`` has run, so no session of another
    role can slip in and stay."""
    conn.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE {} ALLOW_CONNECTIONS false").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    )


def open_database(conn: psycopg.Connection, name: str) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name)))


def restrict_connect(conn: psycopg.Connection, name: str, role: str | None) -> None:
    """Only ``role`` (and the owner) may connect to database ``name``; a session of any other
    role already there (a database an earlier attempt left open) is ended."""
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
    runtime = settings.DATABASES[RUNTIME_ALIAS]["USER"]
    conn.execute(
        sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
            sql.Identifier(name), sql.Identifier(runtime)
        )
    )
    if role:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND usename <> ALL(%s)",
        [name, [connections.settings[OWNER_ALIAS]["USER"], role or ""]],
    )


def one(
    conn: psycopg.Connection[tuple[Any, ...]], query: str, params: list[Any] | None = None
) -> tuple[Any, ...]:
    """The one row a query returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row


def set_role(
    conn: psycopg.Connection,
    role: str,
    generation: int,
    limits: tuple[int, int] | None = None,
) -> None:
    """Create the tenant's role, or give the tenant role of that name its current password.

    For an existing role, three transactions on this autocommit connection (see the
    bootstrap's tenancy_roles functions): closed to logins; sessions ended and the password
    set; then, once ``authentication_timeout`` has passed, open again. PostgreSQL checks a
    password when a login begins and LOGIN when it ends: a login that began with the old
    password, slowly, must find the role closed when it ends, however late."""
    assert conn.autocommit
    (existed,) = one(conn, "SELECT tenancy_roles.close_tenant_role(%s)", [role])
    conn.execute(
        "SELECT tenancy_roles.set_tenant_role(%s, %s)", [role, role_password(role, generation)]
    )
    # set_tenant_role forgets the role's settings: ``limits`` again, before it may log in (a
    # database being created gets them once it exists: create_database).
    if limits is not None:
        apply_limits(conn, role, *limits)
    if existed:
        (wait,) = one(
            conn, "SELECT extract(epoch FROM current_setting('authentication_timeout')::interval)"
        )
        time.sleep(float(wait) + 1)
        conn.execute("SELECT tenancy_roles.open_tenant_role(%s)", [role])


def grant_tenant_role(alias: str) -> None:
    """In the tenant's database (``alias``: the owner's connection to it), exactly what serving
    needs for the role named like the database: DML on its tables (ids are identity columns,
    whose inserts need no right on a sequence), not the migration history. Run after every
    migration, which may add tables."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_database() FROM pg_roles WHERE rolname = current_database()")
        if not (row := cursor.fetchone()):
            return  # the template: nobody serves from it
        role = sql.Identifier(row[0])
        for statement in (
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            "REVOKE ALL ON TABLE django_migrations FROM {role}",
        ):
            cursor.execute(sql.SQL(statement).format(role=role))


def template_lock(host: str = "", port: int | None = None) -> AbstractContextManager[None]:
    """One process at a time makes, migrates or copies a server's template: a copy fails while
    anyone else is connected to it, and two processes would both create it."""
    return advisory_lock("tenancy.multidb.template", template(host, port).slug)


def ensure_template(host: str = "", port: int | None = None) -> Place:
    place = template(host, port)
    with server_connection(host, port) as conn:
        if not database_exists(conn, place.db_name):
            create_closed(conn, place.db_name, "template0")
        # Every time: a process killed before the end left it closed, or open to PUBLIC.
        restrict_connect(conn, place.db_name, role=None)
        open_database(conn, place.db_name)
    alias = alias_for(place, owner=True)
    try:
        if pending_migrations(alias):
            call_command("migrate", database=alias, verbosity=0)
    finally:
        connections[alias].close()  # CREATE DATABASE ... TEMPLATE needs it unused
    return place


class DatabaseTaken(Exception):
    pass


def slug_lock(slug: str) -> AbstractContextManager[None]:
    """One provisioning of ``slug`` at a time, across processes (CREATE DATABASE cannot run
    inside the transaction a row lock would need)."""
    return advisory_lock("tenancy.multidb.provision", slug)


def apply_limits(
    conn: psycopg.Connection, name: str, statement_timeout: int, connection_limit: int
) -> None:
    """The tenant's limits, on its role (named like its database) through the bootstrap's
    ``tenancy_roles.set_tenant_limits``: they bind the tenant's sessions, never the owner's,
    and every session that opens afterwards has them, at no cost per transaction (sessions
    already open keep what they opened with). ``conn``: the server's maintenance database."""
    conn.execute(
        "SELECT tenancy_roles.set_tenant_limits(%s, %s, %s)",
        [name, statement_timeout, connection_limit],
    )


def role_limits(conn: psycopg.Connection, name: str) -> tuple[int | None, int] | None:
    """What the server applies to the tenant role ``name`` in its database: (statement timeout
    in ms, None when nothing is set; connection limit); None when there is no such role. A
    setting the role gave itself in its database shows here too."""
    row = conn.execute(
        "SELECT (SELECT substring(s FROM '^statement_timeout=(.*)$') "
        "        FROM pg_db_role_setting r, unnest(r.setconfig) s "
        "        WHERE r.setrole = ro.oid "
        "        AND r.setdatabase = (SELECT d.oid FROM pg_database d WHERE d.datname = %s) "
        "        AND s LIKE 'statement\\_timeout=%%'), "
        "ro.rolconnlimit FROM pg_roles ro WHERE ro.rolname = %s",
        [name, name],
    ).fetchone()
    if row is None:
        return None
    timeout = None if row[0] is None else _milliseconds(row[0])
    return timeout, int(row[1])


def _milliseconds(value: str) -> int:
    units = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    return round(float(number) * units.get(value[len(number) :] or "ms", 1))


def create_database(
    name: str,
    host: str = "",
    port: int | None = None,
    *,
    generation: int = 1,
    adopt: bool = False,
    statement_timeout: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    connection_limit: int = DEFAULT_CONNECTION_LIMIT,
) -> None:
    """Create the tenant's database from the template, and its role, with the tenant's limits.
    An existing database is used only when ``adopt`` says the catalogue recorded it as this
    tenant's (an earlier attempt made it); otherwise ``DatabaseTaken``."""
    with server_connection(host, port) as conn:
        if database_exists(conn, name) and not adopt:
            raise DatabaseTaken(f"a database {name!r} exists and is no tenant's")
        set_role(conn, name, generation)  # may wait a minute: not while holding the template
        with template_lock(host, port):
            place = ensure_template(host, port)
            if not database_exists(conn, name):
                create_closed(conn, name, place.db_name)
        restrict_connect(conn, name, role=name)
        apply_limits(conn, name, statement_timeout, connection_limit)
        open_database(conn, name)
    alias = alias_for(Place(f"_new@{name}", name, host, port), owner=True)
    try:
        grant_tenant_role(alias)
    finally:
        forget(Place(f"_new@{name}", name, host, port))


# How long dropping a database waits for a superuser's session on it to end (the owner may
# end any other session, not a superuser's): PgBouncer's auth_query connection, say, which
# it closes after server_idle_timeout.
DROP_WAIT_SECONDS = 10.0


def drop_database(tenant: Tenant) -> None:
    forget(tenant)
    deadline = time.monotonic() + DROP_WAIT_SECONDS
    with server_connection(tenant.db_host, tenant.db_port) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(tenant.db_name)
        )
        while True:
            try:
                conn.execute(drop)
                break
            except psycopg.errors.InsufficientPrivilege:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        conn.execute("SELECT tenancy_roles.drop_tenant_role(%s)", [tenant.db_name])
