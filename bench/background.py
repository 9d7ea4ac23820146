"""`make bench-tasks`: background tasks and per-tenant limits, in each strategy, on a private
cluster.

    python -m bench.background [--accounts 20] [--rounds 3] [--duration 20] [--users 10]

1. In each strategy's own process (bench/tasks_probe.py): what enqueueing a task costs (inside
   the request's open transaction, and as a transaction of its own), how many trivial tasks one
   worker thread runs per second, and how soon a statement past a tenant's 200 ms limit is a
   503 while another tenant is served.
2. What applying each tenant's limits with the tenant costs a served page: in each probe,
   the page view in-process with ``TENANCY_TENANT_LIMITS`` on and off in alternating blocks
   (per-request medians); and rls and schemas under locust, on and off, in ``--rounds``
   interleaved rounds (the order flips each round). multidb has nothing to compare: its
   limits are its tenant roles' own settings, which cost no statement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    environment_facts,
    fresh_database,
    in_django,
    manage,
    on_private_cluster,
    run,
    say,
    seconds,
)
from bench.compare import measure
from shared.env import ROOT

STRATEGIES = ("rls", "schemas", "multidb")
COMPARED = ("rls", "schemas")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=seconds, default=20, help="per locust run")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--tasks", type=int, default=500, help="trivial tasks for the worker")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    return parser.parse_args(argv)


def median_range(values: list[float], digits: int = 1) -> str:
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def measure_all(cluster, env, args) -> None:
    with tempfile.TemporaryDirectory(prefix="tenancy-bench-tasks-") as workdir:
        measure_in(cluster, env, args, Path(workdir))


def measure_in(cluster, env, args, workdir: Path) -> None:
    strategies = [s for s in args.strategies.split(",") if s]
    document: dict = {
        "kind": "tasks",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "facts": environment_facts(cluster),
        "args": {k: str(v) for k, v in vars(args).items()},
        "probes": {},
        "limits": {},
    }
    tenant_files = {}
    for strategy in strategies:
        say(f"{strategy}: loading {args.accounts} accounts")
        fresh_database(cluster, strategy, env)
        manage(strategy, env, "createtestdata", "--accounts", str(args.accounts), "--seed", "1")
        listed = workdir / f"{strategy}-tenants.json"
        listed.write_text(manage(strategy, env, "listtenants", "--json").stdout)
        tenant_files[strategy] = listed
        probes = []
        for number in range(args.rounds):
            say(f"{strategy}: tasks and the noisy tenant, round {number + 1} of {args.rounds}")
            probes.append(in_django(strategy, env, "bench.tasks_probe", "--tasks", str(args.tasks)))
        document["probes"][strategy] = probes

    for number in range(args.rounds):
        for strategy in [s for s in COMPARED if s in strategies]:
            order = ("on", "off") if number % 2 == 0 else ("off", "on")
            for limits in order:
                say(f"{strategy}: page load with limits {limits}, round {number + 1}")
                target = {
                    "app": f"{strategy}.wsgi",
                    "env": {**env, "TENANCY_TENANT_LIMITS": "1" if limits == "on" else "0"},
                    "tenants": tenant_files[strategy],
                }
                result = measure(
                    f"{strategy}-limits-{limits}", args.accounts, target, args, workdir,
                    cluster, lambda name, elapsed: None,
                )  # fmt: skip
                document["limits"].setdefault(strategy, {}).setdefault(limits, []).append(
                    {k: result[k] for k in ("rps", "p50_ms", "p95_ms", "failures", "wrong_rows")}
                )

    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"tasks-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    say("\n" + table(document))
    say(f"\nResults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


def table(document: dict) -> str:
    lines = [
        "| strategy | enqueue in the request's transaction, ms "
        "| enqueue as its own transaction, ms | worker, trivial tasks/s "
        "| 503 after a statement past 200 ms, s | the other tenant's requests meanwhile |",
        "|---|---|---|---|---|---|",
    ]
    for strategy, probes in document["probes"].items():
        to_503 = [s for p in probes for s in p["noisy_to_503_s"]]
        codes = {c for p in probes for c in p["noisy_codes"]}
        others = sum(p["others_requests"] for p in probes)
        other_codes = sorted({c for p in probes for c in p["others_codes"]})
        lines.append(
            f"| {strategy} "
            f"| {median_range([p['enqueue_in_transaction_ms'] for p in probes], 2)} "
            f"| {median_range([p['enqueue_own_transaction_ms'] for p in probes], 2)} "
            f"| {median_range([p['worker_tasks_per_s'] for p in probes], 0)} "
            f"| {median_range(to_503, 2)}, all {'/'.join(map(str, sorted(codes)))} "
            f"| {others}, all {'/'.join(map(str, other_codes))} |"
        )
    lines += [
        "",
        "| strategy | page view with limits, ms | without, ms | cost "
        "| the statement that sets the tenant, on the server: with limits, us | without, us |",
        "|---|---|---|---|---|---|",
    ]
    for strategy, probes in document["probes"].items():
        if strategy not in COMPARED or "page_ms_limits_on" not in probes[0]:
            continue
        on = [p["page_ms_limits_on"] for p in probes]
        off = [p["page_ms_limits_off"] for p in probes]
        cost = statistics.median(on) / statistics.median(off) - 1
        server_on = [p["setting_us_limits_on"] for p in probes]
        server_off = [p["setting_us_limits_off"] for p in probes]
        lines.append(
            f"| {strategy} | {median_range(on, 2)} | {median_range(off, 2)} | {cost:+.1%} "
            f"| {median_range(server_on, 0)} | {median_range(server_off, 0)} |"
        )
    if document["limits"]:
        lines += [
            "",
            "| strategy | req/s with limits | req/s without | cost | failures, wrong rows |",
            "|---|---|---|---|---|",
        ]
        for strategy, runs in document["limits"].items():
            on = [r["rps"] for r in runs["on"]]
            off = [r["rps"] for r in runs["off"]]
            bad = sum(r["failures"] + r["wrong_rows"] for rs in runs.values() for r in rs)
            cost = 1 - statistics.median(on) / statistics.median(off)
            lines.append(
                f"| {strategy} | {median_range(on)} | {median_range(off)} | {cost:+.1%} | {bad} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return on_private_cluster(measure_all, args)


if __name__ == "__main__":
    sys.exit(run(main))
