"""A project-local PostgreSQL cluster for development and tests.

``python -m shared.localdb up`` starts (or reuses) a cluster under ``.pgdata/``, listening on
127.0.0.1 only, runs the bootstrap SQL and writes the connection settings into ``.env``.
``down`` stops it; ``status`` says whether it runs. The clusters themselves are
``shared.cluster``'s, as are the test runner's and the benchmarks' throwaway ones.

``up --cluster citus`` starts a Citus coordinator on the port and two workers on the next two
ports instead, under ``.pgdata/citus/`` (shared.citus), with the same roles on every node and
the strategies' databases prepared for Citus; ``.env`` then also says ``TENANCY_CITUS=1``.
Either kind stops the other first, since they share the port; ``down`` stops both.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path

from shared.citus import DATABASES, CitusCluster, installed, version
from shared.cluster import (
    Cluster,
    ClusterError,
    Credentials,
    bootstrap,
    find_bindir,
)
from shared.env import ROOT
from shared.env import read_env_file as read_env


def citus_base(base: Path) -> Path:
    return base / "citus"


def running_citus(base: Path, port: int) -> CitusCluster | None:
    citus = CitusCluster.at(citus_base(base), port)
    if not citus.coordinator.initialised():
        return None
    # The ports it runs on, whatever PGPORT says now.
    actual = citus.coordinator.running_port()
    if actual is not None and actual != port:
        citus = CitusCluster.at(citus_base(base), actual)
    return citus if any(node.running() for node in citus.nodes) else None


def credentials_from(env_file: Path) -> Credentials:
    env = read_env(env_file)
    generated = Credentials.generate()
    return Credentials(
        env.get("OWNER_PASSWORD") or generated.owner,
        env.get("RUNTIME_PASSWORD") or generated.runtime,
    )


def up_citus(base: Path, port: int, env_file: Path) -> None:
    if not installed():
        raise ClusterError(
            "Citus is not installed in this PostgreSQL: install its packages, or build it with "
            "make citus-install CITUS_SOURCE=citus-X.Y.Z.tar.gz [CITUS_PATCH=...]"
        )
    single = Cluster(base, port)
    if single.running():
        single.stop()
        print(f"PostgreSQL: the single-server cluster in {base} stopped (it has the same port)")
    citus = running_citus(base, port) or CitusCluster.at(citus_base(base), port)
    fresh = not citus.initialised()
    citus.init()
    citus.start()
    credentials = credentials_from(env_file)
    for node in citus.nodes:
        bootstrap(node.admin_url(), credentials)
    for dbname, schema_sharding in DATABASES.items():
        citus.prepare_database(dbname, credentials, schema_sharding=schema_sharding)
    state = "created and started" if fresh else "started"
    workers = ", ".join(f"127.0.0.1:{w.port}" for w in citus.workers)
    print(
        f"PostgreSQL: Citus {version(citus)} in {citus_base(base)} {state}: coordinator on "
        f"127.0.0.1:{citus.coordinator.port}, workers on {workers}"
    )
    secret_key = read_env(env_file).get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(40)
    write_env(env_file, citus.coordinator.port, credentials, secret_key, citus=True)


def down(base: Path, port: int) -> None:
    stopped = False
    cluster = Cluster(base, port)
    if cluster.running():
        cluster.stop()
        print(f"PostgreSQL: local cluster in {base} stopped (data kept)")
        stopped = True
    if (citus := running_citus(base, port)) is not None:
        citus.stop()
        where = citus_base(base)
        print(f"PostgreSQL: Citus coordinator and workers in {where} stopped (data kept)")
        stopped = True
    if not stopped:
        print("PostgreSQL: no local cluster running")


def up(base: Path, port: int, env_file: Path) -> None:
    if (citus := running_citus(base, port)) is not None:
        citus.stop()
        print(f"PostgreSQL: the Citus cluster in {citus_base(base)} stopped (it has the same port)")
    cluster = Cluster(base, port)
    bindir = find_bindir()
    version = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    if cluster.running():
        actual = cluster.running_port() or port
        note = "" if actual == port else f" (not {port}: run `make down` first to change the port)"
        print(f"PostgreSQL: reusing the local cluster in {base} on 127.0.0.1:{actual}{note}")
        cluster.port = port = actual
    else:
        fresh = not cluster.initialised()
        if fresh:
            cluster.init()
        cluster.start()
        state = "created and started" if fresh else "started"
        print(
            f"PostgreSQL: local cluster in {base} {state} on 127.0.0.1:{port} ({version}, {bindir})"
        )
    credentials = credentials_from(env_file)
    secret_key = read_env(env_file).get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(40)
    bootstrap(cluster.admin_url(), credentials)
    write_env(env_file, port, credentials, secret_key)


def write_env(
    env_file: Path, port: int, credentials: Credentials, secret_key: str, citus: bool = False
) -> None:
    urls = credentials.database_urls("127.0.0.1", port)
    text = (
        "# Written by `make up` for the project-local cluster; the settings read it.\n"
        "# It holds the owner role's password: readable by its owner only.\n"
        f"OWNER_PASSWORD={credentials.owner}\n"
        f"RUNTIME_PASSWORD={credentials.runtime}\n"
        f"OWNER_DATABASE_URL={urls['OWNER_DATABASE_URL']}\n"
        f"RUNTIME_DATABASE_URL={urls['RUNTIME_DATABASE_URL']}\n"
        f"DJANGO_SECRET_KEY={secret_key}\n"
    )
    if citus:  # rls sets the tenant so that Citus' workers see it too (rls.citus)
        text += "TENANCY_CITUS=1\n"
    _write_private(env_file, text, append=False)


def secret_key(env_file: Path) -> str:
    """The DJANGO_SECRET_KEY kept in ``env_file``, made and added there the first time. It must
    outlive every start: multidb derives its tenant roles' passwords from it."""
    key = read_env(env_file).get("DJANGO_SECRET_KEY")
    if not key:
        key = secrets.token_urlsafe(40)
        _write_private(env_file, f"DJANGO_SECRET_KEY={key}\n", append=True)
    return key


def _write_private(path: Path, text: str, *, append: bool) -> None:
    """Write ``path`` readable by its owner only: created with mode 0600 (never readable by
    others, not even for a moment), and an existing file narrowed too."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "a" if append else "w") as out:
        out.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.localdb", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "find", "secret-key"])
    parser.add_argument(
        "--cluster", choices=["single", "citus"], default="single", help="what `up` starts"
    )
    parser.add_argument("--dir", type=Path, default=ROOT / ".pgdata")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PGPORT") or 54320))
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env")
    args = parser.parse_args(argv)
    try:
        if args.command == "find":
            print(find_bindir())
        elif args.command == "secret-key":  # for docker compose (make up)
            print(secret_key(args.env_file))
        elif args.command == "up" and args.cluster == "citus":
            up_citus(args.dir, args.port, args.env_file)
        elif args.command == "up":
            up(args.dir, args.port, args.env_file)
        elif args.command == "down":
            down(args.dir, args.port)
        elif args.command == "status":
            cluster = Cluster(args.dir, args.port)
            if running_citus(args.dir, args.port) is not None:
                print("running (Citus)")
                return 0
            print("running" if cluster.running() else "stopped")
            return 0 if cluster.running() else 3
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
