"""What tenants cost in the multidb and schemas strategies, measured on a private cluster:

- provisioning one tenant (median and p95 over --tenants): from the template (multidb) or by
  cloning the reference schema (schemas, beside provisioning by migrating a new schema),
- migratetenants with nothing to do over those tenants (the whole command, as a user runs it),
- createtestdata --accounts N into the strategy beside the same run into rls.

    python -m shared.bench.tenants --strategy multidb --tenants 200
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from shared.bench.common import ROOT, fresh_database, manage, private_cluster, rows_created
from shared.cluster import ClusterError

PROVISION = """
import json, time, django
django.setup()
from shared.strategy import get_strategy
strategy = get_strategy()
times = []
for n in range({count}):
    started = time.perf_counter()
    strategy.create_tenant(f"bench-{{n}}", f"Bench {{n}}")
    times.append(time.perf_counter() - started)
migrated = []
if strategy.name == "schemas":
    from django.db import connections
    from django_pgschemas.schema import Schema
    from schemas.activation import active_schema
    from shared.migrating import Unit, migrate_unit
    for n in range({compare}):
        name = f"migrated_{{n}}"
        started = time.perf_counter()
        with connections["owner"].cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {{name}}")
        schema = Schema.create(name)
        migrate_unit(Unit(name, "owner", context=lambda: active_schema(schema)))
        migrated.append(time.perf_counter() - started)
print(json.dumps([times, migrated]))
"""


def provision(env: dict, strategy: str, count: int) -> tuple[list[float], list[float]]:
    import json

    result = subprocess.run(
        [sys.executable, "-c", PROVISION.format(count=count, compare=min(count, 20))],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": f"{strategy}.settings"},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"error: provisioning failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--strategy", default="multidb", choices=["multidb", "schemas"])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        with private_cluster() as (cluster, env):
            measure(cluster, env, args)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def median_p95(times: list[float]) -> str:
    ordered = sorted(times)
    return (
        f"median {statistics.median(times):.3f} s, "
        f"p95 {ordered[int(0.95 * (len(ordered) - 1))]:.3f} s"
    )


def measure(cluster, env: dict, args) -> None:
    strategy, count = args.strategy, args.tenants
    fresh_database(cluster, strategy, env)
    times, migrated = provision(env, strategy, count)
    how = "from the template" if strategy == "multidb" else "by cloning the reference schema"
    print(
        f"{strategy}: provisioning {count} tenants {how}: {median_p95(times)}; the first "
        f"(which also builds the template or reference) {times[0]:.3f} s",
        flush=True,
    )
    if migrated:
        print(
            f"{strategy}: provisioning {len(migrated)} schemas by migrating them instead: "
            f"{median_p95(migrated)}; cloning is "
            f"{statistics.median(migrated) / statistics.median(times):.1f}x faster",
            flush=True,
        )

    started = time.perf_counter()
    manage(
        strategy, env, "migratetenants", "--parallel", str(args.parallel), "--report", "/dev/null"
    )
    print(
        f"{strategy}: migratetenants with nothing to do over {count} tenants "
        f"(--parallel {args.parallel}): {time.perf_counter() - started:.1f} s",
        flush=True,
    )

    rates = {}
    for each in (strategy, "rls"):
        fresh_database(cluster, each, env)
        started = time.perf_counter()
        result = manage(each, env, "createtestdata", "--accounts", str(count))
        seconds = time.perf_counter() - started
        rates[each] = rows_created(result.stdout) / seconds
        print(
            f"createtestdata --accounts {count} into {each}: "
            f"{rows_created(result.stdout):,} rows in {seconds:.1f} s = "
            f"{rates[each]:,.0f} rows/s",
            flush=True,
        )
    print(f"{strategy} loads at {rates[strategy] / rates['rls']:.2f}x the rate of rls")


if __name__ == "__main__":
    sys.exit(main())
