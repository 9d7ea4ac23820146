"""How fast ``createtestdata`` loads: median rows/s over several runs, each into a fresh
database on a private PostgreSQL cluster (durable settings, nothing tuned), beside the
row-by-row ORM saves that bulk loading replaces, measured in the same run.

    python -m shared.bench.load --strategy rls --accounts 2000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared.localdb import Cluster, LocalDBError, bootstrap, free_port, url

ROOT = Path(__file__).resolve().parents[2]


def manage(strategy: str, env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(ROOT / strategy / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"error: manage.py {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result


def fresh_database(cluster: Cluster, strategy: str, env: dict) -> None:
    import psycopg
    from psycopg import sql

    name = sql.Identifier(f"tenancy_{strategy}")
    with psycopg.connect(cluster.admin_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER tenancy_owner").format(name))
        admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name))
        admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO tenancy_app").format(name))
    manage(strategy, env, "migrate", "--verbosity", "0")


def rows_created(output: str) -> int:
    return int(re.search(r"^Created:.*rows ([\d,]+)$", output, re.M).group(1).replace(",", ""))


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
    parser.add_argument("--strategy", default="rls", choices=["rls"])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--baseline-accounts",
        type=int,
        default=20,
        help="accounts for the row-by-row comparison (0: skip it)",
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="tenancy-bench-"))
    workdir.chmod(0o755)
    cluster = Cluster(workdir / "pg", free_port())
    try:
        cluster.init()
        cluster.start()
        owner_password, runtime_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        bootstrap(cluster.admin_url(), owner_password, runtime_password)
        env = {
            **os.environ,
            "OWNER_DATABASE_URL": url("tenancy_owner", owner_password, "127.0.0.1", cluster.port),
            "RUNTIME_DATABASE_URL": url("tenancy_app", runtime_password, "127.0.0.1", cluster.port),
            "TENANCY_ENV_FILE": os.devnull,
        }
        print(
            f"createtestdata --accounts {args.accounts} into {args.strategy}, "
            f"{args.runs} runs, {os.cpu_count()} CPUs, fresh database each run",
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
    except LocalDBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
