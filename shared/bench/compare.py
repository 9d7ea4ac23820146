"""`make bench`: the three strategies, a ceiling and a control, under the same load, interleaved.

    python -m shared.bench.compare [--accounts 100] [--users 20] [--spawn-rate 10]
        [--duration 60s] [--rounds 3] [--workers 2] [--targets rls,rls-control,...]

One private PostgreSQL cluster (default, durable settings) holds every strategy's database,
each loaded by createtestdata with the same seed and accounts. Each round serves every target
in turn with gunicorn (fixed workers, loopback) and drives it with locust (shared/bench/
locustfile.py), which checks every response for the right tenant and rows. Targets take turns
round after round (A B C A B C ...), so drift of the machine cannot favour one; medians over
rounds are reported with their min-max spread.

- ceiling: shared/bench/ceiling.py, the same SQL on psycopg's pool with no Django.
- rls-control: rls on a copy of its database with row-level security off (rls/checks.py lets
  only that copy be served so), to measure what the policies themselves cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg

from shared.bench.common import (
    ROOT,
    create_database,
    fresh_database,
    manage,
    private_cluster,
    run,
)
from shared.bench.server import gunicorn
from shared.cluster import RUNTIME_ROLE

STRATEGIES = ["rls", "multidb", "schemas"]
TARGETS = ["rls", "rls-control", "multidb", "schemas", "ceiling"]
CONTROL_DB = "tenancy_rls_control"


def seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*(s|m|h)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use 90, 90s, 2m)")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--users", type=int, default=20, help="locust users (default 20)")
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--duration", type=seconds, default=60, help="per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--figures", type=Path, default=ROOT / "presentation" / "figures")
    parser.add_argument(
        "--readme", type=Path, default=ROOT / "README.md", help="updated between bench markers"
    )
    parser.add_argument("--no-report", action="store_true", help="no charts, no README update")
    args = parser.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    for name in ("accounts", "users", "rounds", "workers", "duration"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


# -- preparing the data ---------------------------------------------------------------------


def prepare(cluster, env, args, workdir: Path) -> dict[str, dict]:
    """Each strategy's database loaded with the same accounts; the control copy; the tenants."""
    needed = {t.split("-")[0] for t in args.targets if t != "ceiling"}
    if {"ceiling", "rls-control"} & set(args.targets):
        needed.add("rls")
    targets: dict[str, dict] = {}
    for strategy in [s for s in STRATEGIES if s in needed]:
        say(f"preparing {strategy}: migrate, createtestdata --accounts {args.accounts}")
        fresh_database(cluster, strategy, env)
        manage(strategy, env, "createtestdata", "--accounts", str(args.accounts),
               "--seed", str(args.seed))  # fmt: skip
        tenants = workdir / f"{strategy}-tenants.json"
        tenants.write_text(manage(strategy, env, "listtenants", "--json").stdout)
        targets[strategy] = {"app": f"{strategy}.wsgi", "env": env, "tenants": tenants}
    if {"ceiling", "rls-control"} & set(args.targets):
        control_env = control_database(cluster, env)
        rls = targets["rls"]
        targets["rls-control"] = {**rls, "env": control_env}
        targets["ceiling"] = {
            "app": "shared.bench.ceiling:application",
            "env": {**env, "CEILING_DATABASE_URL": control_env["RUNTIME_DATABASE_URL"]},
            "tenants": rls["tenants"],
        }
    return targets


def control_database(cluster, env) -> dict[str, str]:
    """A copy of the rls database with row-level security off on every table, same role."""
    create_database(cluster, CONTROL_DB, template="tenancy_rls")
    with psycopg.connect(cluster.admin_url(CONTROL_DB), autocommit=True) as admin:
        tables = admin.execute(
            "SELECT oid::regclass::text FROM pg_class WHERE relrowsecurity AND relkind = 'r'"
        ).fetchall()
        for (table,) in tables:
            admin.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            admin.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    with_db = {
        key: value.rstrip("/") + "/" + CONTROL_DB
        for key, value in env.items()
        if key in ("RUNTIME_DATABASE_URL", "OWNER_DATABASE_URL")
    }
    return {**env, **with_db, "RLS_BENCHMARK_CONTROL": CONTROL_DB}


# -- one measurement ------------------------------------------------------------------------


def percentile(histogram: dict[int, int], fraction: float) -> float:
    total = sum(histogram.values())
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= fraction * total:
            return float(value)
    return 0.0


def summarize(entries: list[dict], checks: dict) -> dict:
    histogram: dict[int, int] = {}
    for entry in entries:
        for value, count in entry["response_times"].items():
            histogram[int(float(value))] = histogram.get(int(float(value)), 0) + count
    requests = sum(e["num_requests"] for e in entries)
    failures = sum(e["num_failures"] for e in entries)
    began = min((e["start_time"] for e in entries), default=0)
    ended = max((e["last_request_timestamp"] or 0 for e in entries), default=0)
    return {
        "requests": requests,
        "failures": failures,
        "wrong_rows": checks.get("wrong_tenant", 0) + checks.get("wrong_rows", 0),
        "checked": checks.get("checked", 0),
        "rps": requests / (ended - began) if ended > began else 0.0,
        "p50_ms": percentile(histogram, 0.50),
        "p95_ms": percentile(histogram, 0.95),
        "p99_ms": percentile(histogram, 0.99),
    }


def start_locust(
    port: int, tenants: Path, stem: Path, *, users: int, spawn_rate: float, seconds: int
) -> subprocess.Popen:
    """locust headless against 127.0.0.1:port with shared/bench/locustfile.py. Its statistics
    go to <stem>.json, what its checks found to <stem>-checks.json, its log to <stem>.log."""
    with open(f"{stem}.log", "w") as log:  # the child keeps its own copy of the file
        return subprocess.Popen(
            [
                sys.executable, "-m", "locust", "-f", str(ROOT / "shared/bench/locustfile.py"),
                "--headless", "--only-summary", "--loglevel", "ERROR",
                "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s",
                "--stop-timeout", "5", "--host", f"http://127.0.0.1:{port}",
                "--json-file", str(stem),
            ],
            cwd=ROOT,
            env={**os.environ, "TENANCY_BENCH_TENANTS": str(tenants),
                 "TENANCY_BENCH_CHECKS": f"{stem}-checks.json", "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def locust_result(stem: Path) -> dict:
    stats, checks = Path(f"{stem}.json"), Path(f"{stem}-checks.json")
    if not stats.exists():
        log = Path(f"{stem}.log").read_text()[-1500:]
        raise RuntimeError(f"locust wrote no statistics for {stem.name}: {log}")
    found = json.loads(checks.read_text()) if checks.exists() else {}
    return summarize(json.loads(stats.read_text()), found) | {"checks": found}


def measure(name: str, target: dict, args, workdir: Path, cluster, progress) -> dict:
    stem, log = workdir / name, workdir / f"{name}-gunicorn.log"
    with gunicorn(target["app"], target["env"], workers=args.workers, log=log) as (port, proc):
        locust = start_locust(
            port, target["tenants"], stem,
            users=args.users, spawn_rate=args.spawn_rate, seconds=args.duration,
        )  # fmt: skip
        try:
            started = time.monotonic()
            connections = rss = 0
            while locust.poll() is None:
                time.sleep(1)
                elapsed = time.monotonic() - started
                progress(name, elapsed)
                if elapsed > args.duration * 0.5 and not connections:  # mid-run, at full load
                    connections, rss = runtime_connections(cluster), tree_rss(proc.pid)
                if elapsed > args.duration + 60:
                    raise RuntimeError("locust did not stop 60 s after its run time")
        finally:
            stop(locust)
    result = locust_result(stem)
    found = result.pop("checks")
    result |= {"connections": connections, "server_rss_mb": round(rss / 2**20, 1)}
    if result["wrong_rows"]:
        raise RuntimeError(f"{name} served wrong rows: {found}")
    return result


def runtime_connections(cluster) -> int:
    """The web server's connections: the runtime role's, and multidb's tenant roles'."""
    with psycopg.connect(cluster.admin_url(), autocommit=True) as admin:
        return admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s "
            "OR pg_has_role(usesysid, 'tenancy_tenant', 'MEMBER')",
            [RUNTIME_ROLE],
        ).fetchone()[0]


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


# -- the whole run --------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, flush=True)


def environment_facts(cluster) -> dict:
    import django
    import gunicorn as gunicorn_package
    import locust

    with psycopg.connect(cluster.admin_url()) as admin:
        server = admin.execute("SHOW server_version").fetchone()[0]
    return {
        "machine": {
            "system": f"{platform.system()} {platform.release()}",
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "versions": {
            "python": platform.python_version(),
            "django": django.get_version(),
            "psycopg": psycopg.__version__,
            "postgresql": server,
            "gunicorn": gunicorn_package.__version__,
            "locust": locust.__version__,
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    per_run = args.duration + 8  # locust's run, plus starting and stopping the server
    total = per_run * args.rounds * len(args.targets)
    rounds: list[dict] = []
    begun = time.monotonic()
    say(
        f"make bench: {len(args.targets)} targets x {args.rounds} rounds x {args.duration} s "
        f"(about {total // 60} min {total % 60} s of load, after loading {args.accounts} accounts)"
    )
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tenancy-bench-")))
        cluster, env = stack.enter_context(private_cluster())
        facts = environment_facts(cluster)
        targets = prepare(cluster, env, args, workdir)
        load_started = time.monotonic()
        done = 0
        for number in range(1, args.rounds + 1):
            for name in args.targets:

                def progress(name, elapsed, number=number, done=done):
                    left = total - done * per_run - elapsed
                    line = (
                        f"  round {number}/{args.rounds} · {name:11} · {elapsed:4.0f} s of "
                        f"{args.duration} s · about {max(left, 0) / 60:.1f} min left  "
                    )
                    if sys.stdout.isatty():  # one line, rewritten
                        print("\r" + line, end="", flush=True)
                    elif round(elapsed) % 15 == 0:  # a log: a line now and then
                        print(line, flush=True)

                result = measure(name, targets[name], args, workdir, cluster, progress)
                done += 1
                rounds.append({"round": number, "target": name, **result})
                print(
                    f"\r  round {number}/{args.rounds} · {name:11} · {result['rps']:7.1f} req/s"
                    f" · p95 {result['p95_ms']:.0f} ms · {result['failures']} failures · "
                    f"{result['wrong_rows']} wrong rows{' ' * 12}",
                    flush=True,
                )
    document = {
        "kind": "bench",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **facts,
        "parameters": {
            k: getattr(args, k)
            for k in ("accounts", "users", "spawn_rate", "duration", "rounds", "workers", "seed")
        },
        "targets": args.targets,
        "rounds": rounds,
        "summary": summary(rounds, args.targets),
        "load_seconds": round(time.monotonic() - load_started),
        "wall_seconds": round(time.monotonic() - begun),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results / f"bench-{stamp}.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    table = markdown(document)
    say("\n" + table)
    say(f"\nResults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    if not args.no_report:
        from shared.bench.report import bench_charts, update_readme

        for figure in bench_charts(document, args.figures):
            say(f"Chart: {figure.relative_to(ROOT) if figure.is_relative_to(ROOT) else figure}")
        if update_readme(args.readme, "bench", table):
            say(f"Updated the table in {args.readme.name}")
    bad = sum(r["failures"] + r["wrong_rows"] for r in rounds)
    return 1 if bad else 0


def summary(rounds: list[dict], targets: list[str]) -> dict:
    out = {}
    for name in targets:
        mine = [r for r in rounds if r["target"] == name]
        rps = [r["rps"] for r in mine]
        out[name] = {
            "rps_median": statistics.median(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            **{
                f"{p}_median": statistics.median(r[p] for r in mine)
                for p in ("p50_ms", "p95_ms", "p99_ms", "connections", "server_rss_mb")
            },
            "requests": sum(r["requests"] for r in mine),
            "failures": sum(r["failures"] for r in mine),
            "wrong_rows": sum(r["wrong_rows"] for r in mine),
        }
    ceiling = out.get("ceiling", {}).get("rps_median")
    control = out.get("rls-control", {}).get("rps_median")
    for row in out.values():
        row["of_ceiling"] = row["rps_median"] / ceiling if ceiling else None
    if control and "rls" in out:
        out["rls"]["cost_vs_control"] = 1 - out["rls"]["rps_median"] / control
    return out


def markdown(document: dict) -> str:
    p, m, v = document["parameters"], document["machine"], document["versions"]
    lines = [
        f"Measured {document['created'][:10]} on {m['cores']} cores, {m['memory_gb']} GB "
        f"({m['system']}); PostgreSQL {v['postgresql']}, Django {v['django']}, "
        f"gunicorn {v['gunicorn']} ({p['workers']} workers), locust {v['locust']}: "
        f"{p['users']} users, {p['accounts']} accounts, {p['duration']} s per target per round, "
        f"{p['rounds']} rounds, medians with the min-max over rounds.",
        "",
        "| target | requests/s | of ceiling | p50 ms | p95 ms | p99 ms | requests | failures "
        "| wrong rows |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in document["summary"].items():
        share = f"{row['of_ceiling']:.0%}" if row.get("of_ceiling") is not None else "-"
        lines.append(
            f"| {name} | {row['rps_median']:.1f} ({row['rps_min']:.1f}-{row['rps_max']:.1f}) "
            f"| {share} | {row['p50_ms_median']:.0f} | {row['p95_ms_median']:.0f} "
            f"| {row['p99_ms_median']:.0f} | {row['requests']:,} | {row['failures']} "
            f"| {row['wrong_rows']} |"
        )
    cost = document["summary"].get("rls", {}).get("cost_vs_control")
    if cost is not None:
        lines += [
            "",
            f"Row-level security costs {cost:.1%} of rls's requests/s against its control.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run(main))
