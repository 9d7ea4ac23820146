"""What tenants cost in the multidb and schemas strategies, measured on a private cluster:

- provisioning one tenant (median and p95 over --tenants): from the template (multidb) or by
  cloning the reference schema (schemas, beside provisioning by migrating a new schema),
- migratetenants with nothing to do over those tenants (the whole command, as a user runs it),
- createtestdata --accounts N into the strategy beside the same run into rls.

    python -m bench.tenants --strategy multidb --tenants 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from bench.common import fresh_database, manage, on_private_cluster, provision, rows_created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--strategy", default="multidb", choices=["multidb", "schemas"])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args(argv)
    return on_private_cluster(measure, args)


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
