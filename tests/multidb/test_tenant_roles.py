"""A login role per tenant database: what one tenant's session can learn of another's."""

from __future__ import annotations

import io
import os

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections, transaction
from django.test import Client
from psycopg import sql

from multidb import provisioning
from multidb.catalogue.models import Tenant
from multidb.credentials import role_password
from multidb.routing import alias_for
from shared.db import OWNER_ALIAS, connect_directly
from shared.slugs import SlugRefused
from shared.tenancy import activate


def login(user: str, password: str, dbname: str, **options) -> psycopg.Connection:
    """As a client of the tenant databases' server would, with a role's name and password."""
    return connect_directly("default", user=user, password=password, dbname=dbname, **options)


def refused(alias: str, statement: str, params=()) -> bool:
    with transaction.atomic(using=alias):
        try:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute(statement, params)
        except DatabaseError as exc:
            return getattr(exc.__cause__, "sqlstate", None) == "42501"
        finally:
            transaction.set_rollback(True, using=alias)
    return False


@pytest.mark.case("statistics-views")
def test_a_tenants_role_learns_nothing_of_another_tenants_database(live_db, tenant_a, tenant_b):
    a = Tenant.objects.using(OWNER_ALIAS).get(slug=tenant_a.slug)
    with activate(tenant_b.tenant):
        alias = alias_for(tenant_b.tenant)
        assert refused(alias, "SELECT pg_database_size(%s)", [a.db_name])
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database()) > 0")
            assert cursor.fetchone()[0]  # its own, of course
            cursor.execute(
                "SELECT count(*) FILTER (WHERE query <> '<insufficient privilege>'), count(*) "
                "FROM pg_stat_activity WHERE usename = %s",
                [a.db_name],
            )
            assert cursor.fetchone()[0] == 0


def test_a_tenants_role_cannot_connect_to_another_tenants_database(live_db, tenant_a, tenant_b):
    a = Tenant.objects.using(OWNER_ALIAS).get(slug=tenant_a.slug)
    b = Tenant.objects.using(OWNER_ALIAS).get(slug=tenant_b.slug)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        login(b.db_name, role_password(b.db_name, b.role_generation), a.db_name)


def test_a_database_that_is_no_tenants_is_never_taken_over(live_db, strategy):
    name = provisioning.database_name("stray-thing")
    with provisioning.server_connection() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with pytest.raises(SlugRefused, match="is refused"):
            strategy.create_tenant("stray-thing", "Stray")
        with pytest.raises(CommandError, match=r"refused.*nothing was changed"):
            call_command("createtenant", "stray-thing")
        assert not Tenant.objects.using(OWNER_ALIAS).filter(slug="stray-thing").exists()
        with provisioning.server_connection() as conn:
            assert provisioning.database_exists(conn, name)
            assert conn.execute(
                "SELECT has_database_privilege(%s, %s, 'CONNECT')",
                [connections["default"].settings_dict["USER"], name],
            ).fetchone() == (True,)  # untouched: the default PUBLIC grant is still there
    finally:
        with provisioning.server_connection() as conn:
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


def test_a_slug_whose_database_name_is_too_long_is_refused(live_db, strategy):
    slug = "a" * (63 - len(provisioning.database_name("")) + 1)
    with pytest.raises(SlugRefused, match="longer than 63 bytes"):
        strategy.create_tenant(slug, "Long")
    assert not Tenant.objects.using(OWNER_ALIAS).filter(slug=slug).exists()


def test_the_role_lives_and_dies_with_its_tenant(live_db, strategy):
    slug = "tenant-781"
    if strategy.get_tenant(slug):
        strategy.drop_tenant(slug)
    tenant = strategy.create_tenant(slug, "Roles")
    role = tenant.db_name
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls "
            "FROM pg_roles WHERE rolname = %s",
            [role],
        )
        assert cursor.fetchone() == (True, False, False, False, False)
        cursor.execute(
            "SELECT array_agg(datname) FROM pg_database WHERE datallowconn "
            "AND has_database_privilege(%s, oid, 'CONNECT') AND starts_with(datname, %s)",
            [role, provisioning.database_name("")],
        )
        # Its own database, and no other tenant's. One that a provisioning killed before it
        # restricted CONNECT left behind still grants it to PUBLIC, but admits nobody
        # (multidb.provisioning.create_closed).
        assert cursor.fetchone()[0] == [role]
    strategy.drop_tenant(slug)
    with connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [role])
        assert cursor.fetchone()[0] == 0


def test_rotating_a_role_keeps_the_tenant_served_and_retires_the_old_password(live_db, strategy):
    slug = "tenant-782"
    if strategy.get_tenant(slug):
        strategy.drop_tenant(slug)
    tenant = strategy.create_tenant(slug, "Rotated")
    try:
        old = role_password(tenant.db_name, tenant.role_generation)
        before = login(tenant.db_name, old, tenant.db_name, autocommit=True)
        # What a leak's holder could do with that session: settings that break the tenant,
        # and a password of its own.
        before.execute(
            sql.SQL(
                "ALTER ROLE CURRENT_USER IN DATABASE {} SET default_transaction_read_only = on"
            ).format(sql.Identifier(tenant.db_name))
        )
        before.execute("ALTER ROLE CURRENT_USER SET statement_timeout = 1")
        before.execute("ALTER ROLE CURRENT_USER PASSWORD 'the-leaks-own'")
        call_command("rotatetenantroles", slug, stdout=io.StringIO())
        # A session opened with the old password (after a leak, perhaps the leak's) is ended.
        with pytest.raises(psycopg.OperationalError), before:
            before.execute("SELECT 1")
        for password in (old, "the-leaks-own"):
            with pytest.raises(psycopg.OperationalError, match="password authentication"):
                login(tenant.db_name, password, tenant.db_name)
        strategy.forget_tenant(slug)
        with activate(strategy.get_tenant(slug)):  # writes work: the settings are gone
            strategy.model("project").objects.create(name="After rotation")
        response = Client().get("/subtasks/", headers={"host": f"{slug}.localhost"})
        assert response.status_code == 200
    finally:
        strategy.drop_tenant(slug)


def test_a_role_that_is_no_tenants_is_never_taken_over(live_db, strategy):
    name = provisioning.database_name("stray-role")
    with psycopg.connect(os.environ["TENANCY_TEST_ADMIN_URL"], autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'theirs'").format(sql.Identifier(name))
        )
        try:
            with pytest.raises(SlugRefused, match="is refused"):
                strategy.create_tenant("stray-role", "Stray")
            assert not Tenant.objects.using(OWNER_ALIAS).filter(slug="stray-role").exists()
            # Nor can the owner reach it through the role functions.
            with (
                provisioning.server_connection() as conn,
                pytest.raises(psycopg.errors.RaiseException, match="is no tenant's"),
            ):
                provisioning.set_role(conn, name, 1)
        finally:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_a_new_tenant_database_is_open_to_its_role_alone(live_db, tenant_a):
    a = Tenant.objects.using(OWNER_ALIAS).get(slug=tenant_a.slug)
    with provisioning.server_connection() as conn:
        allowed, acl = conn.execute(
            "SELECT datallowconn, datacl::text[] FROM pg_database WHERE datname = %s",
            [a.db_name],
        ).fetchone()
        assert allowed
        grantees = {entry.split("=")[0] for entry in acl}
        owner = connections[OWNER_ALIAS].settings_dict["USER"]
        assert grantees == {f'"{a.db_name}"', owner}  # no "" (PUBLIC), no runtime role


def test_tenant_roles_cannot_reach_the_maintenance_databases(live_db, tenant_b):
    b = Tenant.objects.using(OWNER_ALIAS).get(slug=tenant_b.slug)
    for dbname in ("postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            login(b.db_name, role_password(b.db_name, b.role_generation), dbname)


def test_no_session_logs_in_with_the_old_password_while_the_role_is_rotated(live_db, strategy):
    """Sessions that keep logging in with the old password while the rotation runs: none
    survives it, and none can set a password of its own afterwards."""
    import threading

    slug = "tenant-783"
    if strategy.get_tenant(slug):
        strategy.drop_tenant(slug)
    tenant = strategy.create_tenant(slug, "Raced")
    old = role_password(tenant.db_name, tenant.role_generation)
    stop, alive = threading.Event(), []

    def keep_logging_in() -> None:
        while not stop.is_set():
            try:
                conn = login(tenant.db_name, old, tenant.db_name, autocommit=True)
                alive.append(conn)
            except psycopg.OperationalError:
                pass

    threads = [threading.Thread(target=keep_logging_in) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        call_command("rotatetenantroles", slug, stdout=io.StringIO())
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    try:
        survivors = []
        for conn in alive:
            try:
                conn.execute("ALTER ROLE CURRENT_USER PASSWORD 'the-leaks-own'")
                survivors.append(conn)
            except psycopg.Error:
                pass
            finally:
                conn.close()
        assert alive and survivors == []
    finally:
        strategy.drop_tenant(slug)
