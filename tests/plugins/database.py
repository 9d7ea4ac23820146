"""The test database: created and migrated as the owner role, used as the runtime role."""

from __future__ import annotations

import os

import pytest


def pytest_report_header(config):
    from django.conf import settings

    default, owner = settings.DATABASES["default"], settings.DATABASES["owner"]
    return [
        f"strategy: {settings.TENANCY_STRATEGY}",
        f"postgresql: {default['HOST']}:{default['PORT']} "
        f"(runtime role {default['USER']}, owner role {owner['USER']})",
    ]


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    from django.conf import settings
    from django.db import connections

    from tests.plugins import citus

    owner = connections["owner"]
    with django_db_blocker.unblock():
        old_name = owner.settings_dict["NAME"]
        on_citus = citus.cluster_under_test() is not None
        if on_citus:
            # Citus is set up in a database before anything is migrated into it.
            created = owner.creation._create_test_db(verbosity=0, autoclobber=True)
            citus.prepare_test_database(created)
        name = owner.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False, keepdb=on_citus
        )
        for alias, conf in settings.DATABASES.items():
            if alias != "owner":
                connections[alias].close()
                conf["NAME"] = connections[alias].settings_dict["NAME"] = name
        with owner.cursor() as cursor:
            # As the bootstrap does for the real databases: connect, and nothing else (no
            # temporary tables, which would sit in front of every table on a pooled session).
            runtime = connections["default"].ops.quote_name(settings.DATABASES["default"]["USER"])
            cursor.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
            cursor.execute(f'GRANT CONNECT ON DATABASE "{name}" TO {runtime}')
            cursor.execute("SELECT version()")
            print(f"\n{cursor.fetchone()[0]}; test database {name}")
    yield
    with django_db_blocker.unblock():
        for alias in settings.DATABASES:
            connection = connections[alias]
            connection.close()
            if hasattr(connection, "close_pool"):
                connection.close_pool()
        drop_test_database(owner, name, old_name)


def drop_test_database(owner, name: str, old_name: str) -> None:
    # Threads of the concurrency tests may still hold runtime connections; only a superuser
    # can end those, so the harness's admin URL drops the database when it has one.
    admin_url = os.environ.get("TENANCY_TEST_ADMIN_URL")
    if not admin_url:
        owner.creation.destroy_test_db(old_name, verbosity=0)
        return
    import psycopg
    from psycopg import sql

    from tests.plugins import citus

    owner.close()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        # multidb's tenant databases and template are named after the catalogue's database,
        # and each tenant's role after its database: a later pass on the same server (through
        # PgBouncer) must find none of them, or it would refuse their slugs as taken.
        left = [
            row[0]
            for row in admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{name}\\_%"]
            )
        ]
        for database in [name, *left]:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
        citus.drop_test_database(name)
        for role in left:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    owner.settings_dict["NAME"] = old_name


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    """Database access with real transactions (nothing wraps the test in one), for tests that
    only read, or that undo their own writes."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def runtime_cursor(live_db):
    """A cursor on the runtime role's connection, outside any transaction."""
    from django.db import connections

    with connections["default"].cursor() as cursor:
        yield cursor
