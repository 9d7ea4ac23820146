"""How fast ``createtestdata`` loads: median rows/s over several runs, each into a fresh
database on a private PostgreSQL cluster (durable settings, nothing tuned), beside the
row-by-row ORM saves that bulk loading replaces, measured in the same run.

    python -m bench.load --strategy rls --accounts 2000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench.common import fresh_database, in_django, manage, on_private_cluster, rows_created


def row_by_row(strategy: str, env: dict[str, str], accounts: int) -> tuple[int, float]:
    """The approach bulk loading replaces (bench/row_by_row.py), as the runtime role."""
    rows, seconds = in_django(strategy, env, "bench.row_by_row", "--accounts", str(accounts))
    return int(rows), float(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--strategy", default="rls", choices=["rls", "multidb"])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--baseline-accounts",
        type=int,
        default=20,
        help="accounts for the row-by-row comparison (0: skip it)",
    )
    args = parser.parse_args(argv)
    return on_private_cluster(measure, args)


def measure(cluster, env: dict, args) -> None:
    print(
        f"createtestdata --accounts {args.accounts} into {args.strategy}, {args.runs} runs, "
        f"{os.cpu_count()} CPUs, fresh database each run",
        flush=True,
    )
    rates, times = [], []
    for run in range(1, args.runs + 1):
        fresh_database(cluster, args.strategy, env)
        started = time.perf_counter()
        result = manage(args.strategy, env, "createtestdata", "--accounts", str(args.accounts))
        seconds = time.perf_counter() - started
        rows = rows_created(result.stdout)
        rates.append(rows / seconds)
        times.append(seconds)
        print(
            f"  run {run}: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s",
            flush=True,
        )
    print(
        f"median: {statistics.median(times):.1f} s, {statistics.median(rates):,.0f} rows/s "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
    )
    if args.baseline_accounts:
        fresh_database(cluster, args.strategy, env)
        rows, seconds = row_by_row(args.strategy, env, args.baseline_accounts)
        per_row = rows / seconds
        print(
            f"row-by-row ORM saves, {args.baseline_accounts} accounts: {rows:,} rows in "
            f"{seconds:.1f} s = {per_row:,.0f} rows/s; COPY loading is "
            f"{statistics.median(rates) / per_row:.0f}x faster"
        )


if __name__ == "__main__":
    sys.exit(main())
