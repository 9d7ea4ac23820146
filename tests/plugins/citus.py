"""The Citus cluster under test, when ``python -m tests.run`` made one (the rls+citus and
schemas+citus passes): its nodes, and the test database made on every one of them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shared.citus import CitusCluster
from shared.cluster import Credentials


def cluster_under_test() -> CitusCluster | None:
    if not (found := os.environ.get("TENANCY_TEST_CITUS")):
        return None
    info = json.loads(found)
    return CitusCluster.at(Path(info["base"]), int(info["port"]), int(info["workers"]))


def pytest_report_header(config):
    citus = cluster_under_test()
    if citus is None:
        return []
    return [
        f"citus: coordinator 127.0.0.1:{citus.coordinator.port}, workers "
        + ", ".join(f"127.0.0.1:{w.port}" for w in citus.workers)
    ]


def create_database_on_workers(citus: CitusCluster, name: str, owner: str, runtime: str) -> None:
    """The test database on every worker too, with the same owner and rights, before Citus is
    set up in it (shared.citus.CitusCluster.prepare_database)."""
    import psycopg
    from psycopg import sql

    for worker in citus.workers:
        with psycopg.connect(worker.admin_url(), autocommit=True) as admin:
            database = sql.Identifier(name)
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(database, sql.Identifier(owner))
            )
            admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
            admin.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    database, sql.Identifier(runtime)
                )
            )


def prepare_test_database(name: str) -> None:
    """Called between creating the test database and migrating it."""
    from django.conf import settings

    citus = cluster_under_test()
    if citus is None:
        return
    owner, runtime = settings.DATABASES["owner"], settings.DATABASES["default"]
    create_database_on_workers(citus, name, owner["USER"], runtime["USER"])
    citus.prepare_database(
        name,
        Credentials(owner["PASSWORD"], runtime["PASSWORD"]),
        schema_sharding="schemas" in settings.TENANCY_STRATEGY,
    )


def drop_test_database(name: str) -> None:
    if (citus := cluster_under_test()) is not None:
        citus.drop_database(name)


@pytest.fixture(scope="session")
def citus_cluster() -> CitusCluster:
    citus = cluster_under_test()
    if citus is None:
        pytest.skip("NOT RUN: needs the Citus cluster of python -m tests.run")
    return citus
