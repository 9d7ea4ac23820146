"""A Citus cluster of project-local PostgreSQL clusters: a coordinator and its workers.

Each node is a ``shared.cluster.Cluster`` with Citus preloaded; they listen on consecutive
loopback ports and share one superuser password. Citus keeps its metadata per database, so each
database that is distributed is prepared on its own (``prepare_database``): the extension on
every node, the roles' passwords in ``pg_dist_authinfo`` (the nodes connect to each other as
the role of the session that needs it, with scram like every other client), the workers
registered with the coordinator. ``make up CLUSTER=citus``, the test runner and the benchmarks
all build theirs with this module.
"""

from __future__ import annotations

import functools
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from shared.cluster import (
    RUNTIME_ROLE,
    SUPERUSER,
    THROWAWAY_SETTINGS,
    Cluster,
    ClusterError,
    Credentials,
    find_bindir,
    free_port,
    temporary_folder,
    url,
)

WORKERS = 2
# The strategies' databases on Citus, and whether each distributes its schemas whole.
DATABASES = {"tenancy_rls": False, "tenancy_schemas": True}
# Every node: Citus loaded at start; prepared transactions for its two-phase commits; logical
# decoding for moving shards (the rebalancer) without stopping writes; no TLS between nodes,
# which all listen on loopback only (Citus asks for it by default).
NODE_SETTINGS = {
    "citus.node_conninfo": "sslmode=disable",
    "shared_preload_libraries": "citus",
    "max_prepared_transactions": "100",
    "wal_level": "logical",
}


def installed() -> bool:
    """Whether the PostgreSQL that ``find_bindir`` picks has the Citus extension."""
    try:
        bindir = find_bindir()
    except ClusterError:
        return False
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "citus.so").exists():
            return True
    return (bindir.parent / "lib" / "citus.so").exists()


# Some PostgreSQL builds (Debian's since 15.19) name the logical decoding output plugins that
# may be used; Citus moves shards with its own.
OUTPUT_PLUGINS = "output_plugin_libraries"
CITUS_OUTPUT_PLUGINS = "pgoutput, test_decoding, citus"


@functools.cache
def node_settings() -> dict[str, str]:
    """NODE_SETTINGS, and the output plugins where this PostgreSQL has that setting."""
    described = subprocess.run(
        [str(find_bindir() / "postgres"), "--describe-config"], capture_output=True, text=True
    )
    names = {line.partition("\t")[0] for line in described.stdout.splitlines()}
    plugins = {OUTPUT_PLUGINS: CITUS_OUTPUT_PLUGINS} if OUTPUT_PLUGINS in names else {}
    return {**NODE_SETTINGS, **plugins}


def version(citus: CitusCluster) -> str:
    with psycopg.connect(citus.admin_url()) as admin:
        row = admin.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'citus'"
        ).fetchone()
    return row[0] if row else "(not installed)"


@dataclass(frozen=True)
class Node:
    """A Citus node as the others reach it, with its superuser's password (every node of a
    cluster has the same one)."""

    host: str
    port: int
    superuser_password: str

    def admin_url(self, dbname: str = "postgres") -> str:
        return url(SUPERUSER, self.superuser_password, self.host, self.port, dbname)


def prepare_database(
    coordinator: Node,
    workers: list[Node],
    dbname: str,
    credentials: Credentials,
    *,
    schema_sharding: bool = False,
) -> None:
    """Make ``dbname`` (already created on every node) a Citus database: the extension
    everywhere, the passwords the nodes use to reach each other, the workers registered.
    Running it again changes nothing but the passwords."""
    for node in [*workers, coordinator]:
        prepare_node(node, dbname, credentials)
    with psycopg.connect(coordinator.admin_url(dbname), autocommit=True) as admin:
        admin.execute(
            "SELECT citus_set_coordinator_host(%s, %s)", [coordinator.host, coordinator.port]
        )
        for worker in workers:
            add_worker(admin, worker)
        # A transaction that changes several tenants' rows (the owner's cross-tenant work)
        # and then a reference table, which every tenant table refers to, must do it over
        # one connection per node, or Citus refuses the second statement.
        database = sql.Identifier(dbname)
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET citus.multi_shard_modify_mode = 'sequential'").format(
                database
            )
        )
        if schema_sharding:
            # Every schema created in this database from now on is distributed whole.
            admin.execute(
                sql.SQL("ALTER DATABASE {} SET citus.enable_schema_based_sharding = on").format(
                    database
                )
            )


def hide_worker_queries(worker: Node) -> None:
    """The coordinator binds a tenant's values into the statement it sends a worker, where
    every session of the runtime role, which serves every tenant, could read them in
    pg_stat_activity (and on the coordinator in citus_stat_activity). The runtime role's
    sessions on a worker publish no query text; on the coordinator its statements carry $1,
    $2 (settings.RUNTIME_OPTIONS: server-side binding). A superuser setting: the role cannot
    turn it back on."""
    with psycopg.connect(worker.admin_url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER ROLE {} SET track_activities = off").format(sql.Identifier(RUNTIME_ROLE))
        )


def prepare_node(node: Node, dbname: str, credentials: Credentials) -> None:
    """The extension in ``dbname`` on ``node``, and the passwords Citus connects with from
    there: the nodes authenticate each other's connections like any client's (scram)."""
    passwords = {SUPERUSER: node.superuser_password, **credentials.by_role()}
    with psycopg.connect(node.admin_url(dbname), autocommit=True) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS citus")
        for role, password in passwords.items():
            # 0: any other node; -1: the node itself (Citus' loopback connections).
            for node_id in (0, -1):
                admin.execute(
                    "INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) "
                    "VALUES (%s, %s, %s) ON CONFLICT (nodeid, rolename) "
                    "DO UPDATE SET authinfo = excluded.authinfo",
                    [node_id, role, f"password={password}"],
                )


def add_worker(admin: psycopg.Connection, worker: Node) -> None:
    """Register ``worker`` with the coordinator ``admin`` is connected to (once)."""
    hide_worker_queries(worker)
    found = admin.execute(
        "SELECT 1 FROM pg_dist_node WHERE nodename = %s AND nodeport = %s",
        [worker.host, worker.port],
    ).fetchone()
    if found is None:
        admin.execute("SELECT citus_add_node(%s, %s)", [worker.host, worker.port])


@dataclass
class CitusCluster:
    coordinator: Cluster
    workers: list[Cluster]

    @classmethod
    def at(
        cls,
        base: Path,
        port: int,
        workers: int = WORKERS,
        settings: Mapping[str, str] | None = None,
    ) -> CitusCluster:
        """The coordinator in ``base/coordinator`` on ``port``, worker N in ``base/worker-N``
        on ``port + N``."""
        conf = {**(settings or {}), **node_settings()}
        return cls(
            Cluster(base / "coordinator", port, conf),
            [Cluster(base / f"worker-{n}", port + n, conf) for n in range(1, workers + 1)],
        )

    @property
    def nodes(self) -> list[Cluster]:
        return [self.coordinator, *self.workers]

    def initialised(self) -> bool:
        return all(node.initialised() for node in self.nodes)

    def running(self) -> bool:
        return all(node.running() for node in self.nodes)

    def init(self) -> None:
        password = secrets.token_urlsafe(18)
        for node in self.nodes:
            if not node.initialised():
                node.init(password)

    def start(self) -> None:
        for node in self.nodes:
            if not node.running():
                node.start()

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def admin_url(self, dbname: str = "postgres") -> str:
        return self.coordinator.admin_url(dbname)

    def address(self, node: Cluster) -> Node:
        return Node("127.0.0.1", node.port, node.superuser_password)

    def prepare_database(
        self, dbname: str, credentials: Credentials, *, schema_sharding: bool = False
    ) -> None:
        prepare_database(
            self.address(self.coordinator),
            [self.address(w) for w in self.workers],
            dbname,
            credentials,
            schema_sharding=schema_sharding,
        )

    def prepare_node(self, node: Cluster, dbname: str, credentials: Credentials) -> None:
        prepare_node(self.address(node), dbname, credentials)

    def add_worker(self, admin: psycopg.Connection, worker: Cluster) -> None:
        add_worker(admin, self.address(worker))

    def drop_database(self, dbname: str) -> None:
        for node in [self.coordinator, *self.workers]:
            if not node.running():
                continue
            with psycopg.connect(node.admin_url(), autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )


@contextmanager
def temporary_citus_cluster(
    prefix: str = "tenancy-citus-",
    workers: int = WORKERS,
    settings: Mapping[str, str] = THROWAWAY_SETTINGS,
) -> Iterator[CitusCluster]:
    """A new coordinator and workers on free consecutive ports, started; stopped and removed
    when the block ends."""
    with temporary_folder(prefix) as workdir:
        citus = CitusCluster.at(workdir, free_port(workers + 1), workers, settings)
        try:
            citus.init()
            citus.start()
            yield citus
        finally:
            citus.stop()
