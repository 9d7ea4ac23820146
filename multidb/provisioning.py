"""Creating and dropping tenant databases, as the owner role.

A tenant's database is a copy of a migrated template database (``CREATE DATABASE ...
TEMPLATE``), which is much faster than migrating every new database. The template lives on
each server that holds tenants, and is migrated again whenever the migrations change.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from psycopg import sql

from multidb.routing import alias_for, forget
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS


@dataclass(frozen=True)
class Place:
    """A database on a server, in the shape alias_for() expects."""

    slug: str
    db_name: str
    db_host: str = ""
    db_port: int | None = None


def catalogue_name() -> str:
    return connections.settings[OWNER_ALIAS]["NAME"]


def database_name(slug: str) -> str:
    return f"{catalogue_name()}_{slug}"


def template(host: str = "", port: int | None = None) -> Place:
    where = f"{host}:{port}" if host else "main"
    return Place(f"_template@{where}", f"{catalogue_name()}_template", host, port)


def server_connection(host: str = "", port: int | None = None) -> psycopg.Connection:
    """The owner role on the server's maintenance database, for CREATE and DROP DATABASE."""
    owner = connections.settings[OWNER_ALIAS]
    return psycopg.connect(
        host=host or owner["HOST"],
        port=port or owner["PORT"],
        user=owner["USER"],
        password=owner["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    )


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


def restrict_connect(conn: psycopg.Connection, name: str, runtime: bool) -> None:
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
    if runtime:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(name), sql.Identifier(settings.DATABASES[RUNTIME_ALIAS]["USER"])
            )
        )


def ensure_template(host: str = "", port: int | None = None) -> Place:
    place = template(host, port)
    with server_connection(host, port) as conn:
        if not database_exists(conn, place.db_name):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(place.db_name)))
            restrict_connect(conn, place.db_name, runtime=False)
    alias = alias_for(place, owner=True)
    try:
        if pending_migrations(alias):
            call_command("migrate", database=alias, verbosity=0)
    finally:
        connections[alias].close()  # CREATE DATABASE ... TEMPLATE needs it unused
    return place


def create_database(name: str, host: str = "", port: int | None = None) -> None:
    place = ensure_template(host, port)
    with server_connection(host, port) as conn:
        if not database_exists(conn, name):
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(place.db_name)
                )
            )
        restrict_connect(conn, name, runtime=True)


def drop_database(tenant) -> None:
    forget(tenant)
    with server_connection(tenant.db_host, tenant.db_port) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(tenant.db_name)
            )
        )
