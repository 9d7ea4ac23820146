"""``python -m shared.citus register``: prepare the strategies' databases on Citus nodes that
are already running and bootstrapped (docker compose's citus profile), and register the
workers with the coordinator. Passwords come from the environment, as for the bootstrap SQL:
POSTGRES_PASSWORD (every node's superuser), OWNER_PASSWORD, RUNTIME_PASSWORD."""

from __future__ import annotations

import argparse
import os
import sys
import time

import psycopg

from shared.citus import DATABASES, Node, prepare_database
from shared.cluster import Credentials


def node(address: str, password: str) -> Node:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{address!r} is not HOST:PORT")
    return Node(host, int(port), password)


def wait_for(nodes: list[Node], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    for each in nodes:
        while True:
            try:
                psycopg.connect(each.admin_url(), connect_timeout=3).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.citus", description=__doc__)
    parser.add_argument("command", choices=["register"])
    parser.add_argument("--coordinator", required=True, help="HOST:PORT")
    parser.add_argument("--worker", action="append", required=True, help="HOST:PORT, repeated")
    args = parser.parse_args(argv)
    password = os.environ.get("POSTGRES_PASSWORD", "postgres")
    credentials = Credentials(
        os.environ.get("OWNER_PASSWORD", "owner"), os.environ.get("RUNTIME_PASSWORD", "app")
    )
    try:
        coordinator = node(args.coordinator, password)
        workers = [node(w, password) for w in args.worker]
        wait_for([coordinator, *workers])
        for dbname, schema_sharding in DATABASES.items():
            prepare_database(
                coordinator, workers, dbname, credentials, schema_sharding=schema_sharding
            )
            print(f"{dbname}: Citus on {args.coordinator}, workers {', '.join(args.worker)}")
    except (argparse.ArgumentTypeError, psycopg.Error) as exc:
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
