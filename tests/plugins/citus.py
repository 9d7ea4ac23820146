"""The Citus cluster under test, when ``python -m tests.run`` made one (the rls+citus and
schemas+citus passes): its nodes, and the test database made on every one of them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shared.citus import CitusCluster
from shared.cluster import Credentials, create_database


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


def prepare_test_database(name: str) -> None:
    """Called between creating the test database and migrating it."""
    from django.conf import settings

    citus = cluster_under_test()
    if citus is None:
        return
    owner, runtime = settings.DATABASES["owner"], settings.DATABASES["default"]
    for worker in citus.workers:  # the same database, owner and rights on every worker
        create_database(worker, name)
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
