"""How fast ``createtestdata`` loads: median rows/s over several runs, each into a fresh
database on a private PostgreSQL cluster (durable settings, nothing tuned), beside the
row-by-row ORM saves that bulk loading replaces, measured in the same run.

    python -m shared.bench.load --strategy rls --accounts 2000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from shared.bench.common import ROOT, fresh_database, manage, private_cluster, rows_created
from shared.cluster import ClusterError


def row_by_row(strategy: str, env: dict, accounts: int) -> tuple[int, float]:
    """The approach bulk loading replaces: one ORM save per row, as the runtime role."""
    code = f"""
import time, django
django.setup()
from django.db import router, transaction
from shared.strategy import get_strategy
from shared.tenancy import activate
from shared.testdata import generate_tenant
s = get_strategy()
User, Project, Task, Subtask = (s.model(n) for n in ("user", "project", "task", "subtask"))
rows = 0
started = time.perf_counter()
for number in range(1, {accounts} + 1):
    data = generate_tenant(100000 + number)
    tenant = s.create_tenant(data.slug, data.name)
    with activate(tenant), transaction.atomic(using=router.db_for_write(Subtask)):
        for u in data.users:
            User(**u._asdict()).save()
        projects = [Project.objects.create(name=p.name, details=p.details) for p in data.projects]
        tasks = [Task.objects.create(project=projects[t.project], name=t.name,
                                     is_complete=t.is_complete, details=t.details)
                 for t in data.tasks]
        for st in data.subtasks:
            Subtask.objects.create(task=tasks[st.task], name=st.name,
                                   is_complete=st.is_complete, details=st.details)
    rows += sum(data.counts().values())
print(rows, time.perf_counter() - started)
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, "DJANGO_SETTINGS_MODULE": f"{strategy}.settings"},
    )
    if result.returncode != 0:
        raise SystemExit(f"error: the row-by-row baseline failed:\n{result.stderr.strip()}")
    rows, seconds = result.stdout.split()
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
    try:
        with private_cluster() as (cluster, env):
            measure(cluster, env, args)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


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
