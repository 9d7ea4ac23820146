"""What the Citus-only tests share: where a tenant's rows live, tenants on each worker, a
served copy of the app, and a load that checks every answer."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import pytest
from django.conf import settings

from bench.server import get
from shared.citus import CitusCluster
from shared.pages import ACCOUNT_CELL
from shared.testdata import Volumes, generate_tenant
from tests.contract.test_faults import app_env

TENANT_TABLES = ["tracker_user", "tracker_project", "tracker_task", "tracker_subtask"]


def served_env(dbname: str | None = None, **overrides: str) -> dict[str, str]:
    """The environment of a server or command of this strategy, on the test database or on
    ``dbname`` of the same coordinator."""
    env = app_env()
    if dbname is not None:
        for variable in ("RUNTIME_DATABASE_URL", "OWNER_DATABASE_URL"):
            env[variable] = env[variable].rsplit("/", 1)[0] + "/" + dbname
    return {**env, **overrides}


def admin(citus: CitusCluster, port: int | None = None) -> psycopg.Connection:
    """A superuser session in the test database, on the coordinator or the node on ``port``."""
    node = next(n for n in citus.nodes if n.port == (port or citus.coordinator.port))
    return psycopg.connect(node.admin_url(settings.DATABASES["default"]["NAME"]), autocommit=True)


def shards_of(strategy, tenant, connection: psycopg.Connection) -> list[tuple[str, str, int]]:
    """(table, shard name, node port) of every shard that holds ``tenant``'s rows."""
    if strategy.name == "rls":
        return connection.execute(
            "SELECT s.table_name::text, s.shard_name, s.nodeport FROM citus_shards s "
            "WHERE s.shardid IN (SELECT get_shard_id_for_distribution_column(t, %s) "
            "FROM unnest(%s::text[]) AS t) ORDER BY 1",
            [tenant.pk, TENANT_TABLES],
        ).fetchall()
    return connection.execute(
        "SELECT s.table_name::text, s.shard_name, s.nodeport FROM citus_shards s "
        "JOIN pg_class c ON c.oid = s.table_name JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s ORDER BY 1",
        [tenant.schema_name],
    ).fetchall()


def node_of(strategy, tenant, citus: CitusCluster) -> int:
    with admin(citus) as connection:
        ports = {port for _, _, port in shards_of(strategy, tenant, connection)}
    assert len(ports) == 1, f"{tenant.slug}'s rows are on {sorted(ports)}"
    return ports.pop()


@pytest.fixture(scope="session")
def one_per_worker(strategy, two_tenants, citus_cluster, django_db_blocker):
    """A tenant on each worker: A and B, and more tenants until both workers hold one."""
    found: dict[int, object] = {}
    with django_db_blocker.unblock():
        for fixture in two_tenants:
            found.setdefault(node_of(strategy, fixture.tenant, citus_cluster), fixture.tenant)
        number = 903
        while len(found) < len(citus_cluster.workers):
            slug = f"tenant-{number}"
            tenant = strategy.get_tenant(slug) or strategy.load_tenant(
                generate_tenant(number, volumes=Volumes((1, 1), (1, 1), (1, 1), (1, 1)))
            )
            found.setdefault(node_of(strategy, tenant, citus_cluster), tenant)
            number += 1
            assert number < 960, "no tenant landed on one of the workers"
    return found


@dataclass
class Load:
    """Requests for each host in turn, from a few threads, until stopped. Each answer is kept
    as (time, host, status, the account names the page shows)."""

    port: int
    names: dict[str, str]  # host -> the account name its page must show, and only that
    threads: int = 4
    answers: list[tuple[float, str, int, set[str]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self, first: int) -> None:
        hosts = list(self.names)
        turn = first
        while not self._stop.is_set():
            host = hosts[turn % len(hosts)]
            turn += 1
            try:
                status, body = get(self.port, host, "/subtasks/")
            except OSError:
                status, body = 0, ""
            shown = {html.unescape(cell) for cell in ACCOUNT_CELL.findall(body)}
            self.answers.append((time.monotonic(), host, status, shown))

    @contextmanager
    def running(self) -> Iterator[Load]:
        workers = [threading.Thread(target=self._run, args=(i,)) for i in range(self.threads)]
        for worker in workers:
            worker.start()
        try:
            yield self
        finally:
            self._stop.set()
            for worker in workers:
                worker.join()

    def failed(self, since: float = 0.0) -> list[tuple]:
        return [a for a in self.answers if a[0] >= since and a[2] != 200]

    def wrong(self) -> list[tuple]:
        """Pages that showed a row of another account, or no rows at all."""
        return [a for a in self.answers if a[2] == 200 and a[3] != {self.names[a[1]]}]

    def summary(self) -> str:
        return (
            f"{len(self.answers)} requests, {len(self.failed())} failed, "
            f"{len(self.wrong())} with wrong rows"
        )
