"""`make bench-scale`: what each strategy costs as tenants grow (10, 100, 1,000 by default).

    python -m bench.scale [--counts 10,100] [--strategies rls,multidb,schemas]
        [--duration 15s] [--users 10] [--workers 2] [--rounds 3]

Per strategy and tenant count, on one private cluster (default, durable settings): the time to
provision one more tenant (median of 5), `migratetenants` (rls: `migrate`) with nothing to do,
the size of the strategy's databases and of their catalogues (`pg_class` rows), the runtime
role's server connections after one request to every tenant, the web server's memory (RSS),
and requests/s and p95 latency under locust with requests spread over every tenant.
Tenants are small (1-2 users, 1-3 projects, 1-3 tasks, 1-5 subtasks), so that a thousand fit.

Every strategy and tenant count keeps a database of its own, so that the load samples can be
interleaved: each of ``--rounds`` rounds samples every one of them in turn, and the table shows
the median with the lowest and highest sample. A change in requests/s between tenant counts
counts only when every round agrees on it (``verdicts``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.common import (
    environment_facts,
    fresh_database,
    manage,
    on_database,
    private_citus_cluster,
    private_cluster,
    provision,
    publish,
    run,
    say,
    seconds,
)
from bench.driving import (
    locust_result,
    runtime_connections,
    start_locust,
    stop,
    tree_rss,
    visit_every_tenant,
)
from bench.server import gunicorn
from shared.cluster import create_database
from shared.env import ROOT

SMALL = ["--min-users=1", "--max-users=2", "--min-projects=1", "--max-projects=3",
         "--min-tasks=1", "--max-tasks=3", "--min-subtasks=1", "--max-subtasks=5"]  # fmt: skip
MEASURES = {
    "provision_s": "provisioning one tenant (s, median of 5)",
    "migrate_all_s": "migrating every tenant, nothing to do (s)",
    "database_mb": "size of the strategy's databases (MB)",
    "catalogue_rows": "catalogue size (pg_class rows)",
    "connections": "runtime connections after touching every tenant",
    "server_rss_mb": "web server memory, RSS (MB)",
    "rps": "requests/s, spread over every tenant (median of the rounds)",
    "p95_ms": "p95 latency (ms, median of the rounds)",
}
# "rls at 1,000 tenants is within 10% of rls at 10": the comparisons the verdicts decide.
WITHIN = 0.10


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="10,100")
    parser.add_argument(
        "--strategies",
        default="rls,multidb,schemas",
        help="also rls-citus, schemas-citus: on a private Citus coordinator with two workers",
    )
    parser.add_argument("--duration", type=seconds, default=15)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--figures", type=Path, default=ROOT / "presentation" / "figures")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    try:
        args.counts = sorted({int(c) for c in args.counts.split(",") if c.strip()})
    except ValueError:
        parser.error(f"--counts takes numbers separated by commas, not {args.counts!r}")
    if not args.counts or min(args.counts) < 1:
        parser.error("--counts needs tenant counts of at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if set(args.strategies) - {"rls", "multidb", "schemas", *CITUS}:
        parser.error(f"--strategies: rls, multidb, schemas, {', '.join(CITUS)}")
    return args


CITUS = ["rls-citus", "schemas-citus"]


def database_for(strategy: str, count: int) -> str:
    return f"tenancy_{strategy.replace('-', '_')}_{count}"


def project(strategy: str) -> str:
    """The Django project that serves a strategy ("rls-citus": rls)."""
    return strategy.removesuffix("-citus")


def databases(admin, name: str) -> list[str]:
    return [
        row[0]
        for row in admin.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
            [name, name.replace("_", r"\_") + r"\_%"],
        )
    ]


def one(conn: psycopg.Connection, query: str, params: list[object] | None = None) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def sizes(nodes: list, database: str) -> tuple[float, int]:
    """The databases' size and catalogue rows, summed over every node (Citus: all three)."""
    size = catalogue = 0
    for node in nodes:
        with psycopg.connect(node.admin_url(), autocommit=True) as admin:
            names = databases(admin, database)
            size += sum(one(admin, "SELECT pg_database_size(%s)", [n]) for n in names)
        for name in names:
            with psycopg.connect(node.admin_url(name)) as conn:
                catalogue += one(conn, "SELECT count(*) FROM pg_class")
    return round(size / 2**20, 1), catalogue


def settle(cluster, database: str, limit: float = 180) -> None:
    """Before measuring requests: fresh statistics, and no autovacuum still working through
    what the load just wrote (on two cores it would take its share of the measurement)."""
    with psycopg.connect(cluster.admin_url(database), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    with psycopg.connect(cluster.admin_url(), autocommit=True) as admin:
        admin.execute("CHECKPOINT")
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and one(
            admin,
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'",
        ):
            time.sleep(1)


def prepare(cluster, env, strategy: str, count: int, workdir: Path, citus=None) -> dict:
    """The strategy with ``count`` tenants in a database of its own, and what it costs.
    ``citus``: (the Citus cluster, its credentials), for rls-citus and schemas-citus."""
    database = database_for(strategy, count)
    env = on_database(env, database)
    row: dict = {"strategy": strategy, "tenants": count}
    nodes = [cluster]
    if citus is not None:
        citus_cluster, credentials = citus
        nodes = citus_cluster.nodes
        for node in nodes:
            create_database(node, database)
        citus_cluster.prepare_database(
            database, credentials, schema_sharding=strategy == "schemas-citus"
        )
        manage(project(strategy), env, "migrate", "--verbosity", "0")
    else:
        fresh_database(cluster, strategy, env, database)
    strategy = project(strategy)
    started = time.perf_counter()
    manage(strategy, env, "createtestdata", "--accounts", str(count), *SMALL)
    row["load_s"] = round(time.perf_counter() - started, 1)
    say(f"  {row['strategy']} with {count} tenants: loaded in {row['load_s']} s")

    created, other = provision(env, strategy, 5)
    row["provision_s"] = round(statistics.median(created), 4)
    if other:  # schemas: the other way (migrating on one server, cloning on Citus)
        row["provision_other_s"] = round(statistics.median(other), 4)
    started = time.perf_counter()
    if strategy == "rls":
        manage(strategy, env, "migrate", "--verbosity", "0")
    else:
        manage(strategy, env, "migratetenants", "--report", os.devnull)
    row["migrate_all_s"] = round(time.perf_counter() - started, 2)
    row["database_mb"], row["catalogue_rows"] = sizes(nodes, database)
    settle(cluster, database)
    listed = manage(strategy, env, "listtenants", "--json").stdout
    tenants = workdir / f"{database}.json"
    tenants.write_text(json.dumps([t for t in json.loads(listed) if t["subtasks"]]))
    row["samples"] = []
    return row


def sample(cluster, env, row: dict, args, stem: Path) -> None:
    """One load sample of a prepared strategy and count, on a server of its own."""
    strategy, count = row["strategy"], row["tenants"]
    env = on_database(env, database_for(strategy, count))
    tenants = stem.parent / f"{database_for(strategy, count)}.json"
    with gunicorn(f"{project(strategy)}.wsgi", env, workers=args.workers) as (port, process):
        visit_every_tenant(port, tenants)
        if not row["samples"]:
            row["connections"] = runtime_connections(cluster)
            row["server_rss_mb"] = round(tree_rss(process.pid) / 2**20, 1)
        row["samples"].append(load(port, tenants, args, stem))
    got = row["samples"][-1]
    say(f"  {strategy} with {count} tenants: {got['rps']} requests/s, p95 {got['p95_ms']} ms")


def summarise(row: dict) -> None:
    samples = row["samples"]
    rps = [s["rps"] for s in samples]
    row["rps"] = round(statistics.median(rps), 1)
    row["rps_min"], row["rps_max"] = min(rps), max(rps)
    row["p95_ms"] = statistics.median(s["p95_ms"] for s in samples)
    row["failures"] = sum(s["failures"] for s in samples)
    row["wrong_rows"] = sum(s["wrong_rows"] for s in samples)


def verdicts(rows: list[dict]) -> list[str]:
    """Each strategy at its most tenants against its fewest, round by round: within
    ``WITHIN`` only if every round says so, beyond it only if every round says so."""
    found = []
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = sorted((r for r in rows if r["strategy"] == strategy), key=lambda r: r["tenants"])
        if len(mine) < 2:
            continue
        low, high = mine[0], mine[-1]
        each = [
            b["rps"] / a["rps"]
            for a, b in zip(low["samples"], high["samples"], strict=True)
            if a["rps"]
        ]
        if not each:
            continue
        if all(abs(r - 1) <= WITHIN for r in each):
            word = f"within {WITHIN:.0%}: shown"
        elif all(r < 1 - WITHIN for r in each) or all(r > 1 + WITHIN for r in each):
            word = f"not within {WITHIN:.0%}: refuted"
        else:
            word = "undecided: the rounds disagree, take more of them"
        found.append(
            f"{strategy} at {high['tenants']:,} tenants against {low['tenants']:,}: "
            f"{statistics.median(each):.2f}x requests/s (rounds {min(each):.2f}-"
            f"{max(each):.2f}x), {word}."
        )
    return found


def load(port: int, tenants: Path, args, stem: Path) -> dict:
    locust = start_locust(
        port, tenants, stem, users=args.users, spawn_rate=args.users, seconds=args.duration
    )
    try:
        locust.wait(timeout=args.duration + 120)
    finally:
        stop(locust)
    summary = locust_result(stem)
    return {
        "rps": round(summary["rps"], 1),
        "p95_ms": summary["p95_ms"],
        "failures": summary["failures"],
        "wrong_rows": summary["wrong_rows"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    say(f"make bench-scale: {', '.join(args.strategies)} at {args.counts} tenants")
    rows = []
    begun = time.monotonic()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tenancy-scale-")))
        cluster, env = stack.enter_context(private_cluster())
        facts = environment_facts(cluster)
        # Each row's server: the single one, or the Citus coordinator, with its environment.
        where = {s: (cluster, env) for s in args.strategies if s not in CITUS}
        citus = None
        if any(s in CITUS for s in args.strategies):
            citus_cluster, citus_env, credentials = stack.enter_context(private_citus_cluster())
            citus = (citus_cluster, credentials)
            where |= {s: (citus_cluster.coordinator, citus_env) for s in CITUS}
        for count in args.counts:
            for strategy in args.strategies:
                server, server_env = where[strategy]
                on_citus = citus if strategy in CITUS else None
                rows.append(prepare(server, server_env, strategy, count, workdir, on_citus))
                say(f"  ({time.monotonic() - begun:.0f} s so far)")
        for number in range(1, args.rounds + 1):
            say(f"round {number} of {args.rounds}")
            # Each round in another order, so that no row always follows the same one.
            turn = (number - 1) % len(rows)
            for row in rows[turn:] + rows[:turn]:
                stem = workdir / f"{row['strategy']}-{row['tenants']}-{number}"
                server, server_env = where[row["strategy"]]
                sample(server, server_env, row, args, stem)
            say(f"  ({time.monotonic() - begun:.0f} s so far)")
    for row in rows:
        summarise(row)
    document = {
        "kind": "bench-scale",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **facts,
        "parameters": {
            "counts": args.counts,
            "duration": args.duration,
            "users": args.users,
            "workers": args.workers,
            "rounds": args.rounds,
        },
        "measures": MEASURES,
        "rows": rows,
        "verdicts": verdicts(rows),
        "wall_seconds": round(time.monotonic() - begun),
    }
    publish(document, args)
    bad = sum(r["failures"] + r["wrong_rows"] for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(run(main))
