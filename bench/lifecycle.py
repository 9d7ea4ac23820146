"""`make bench-lifecycle`: how long a tenant's export and import take in each strategy, and what
moving a multidb tenant to another server costs its neighbours, on two private clusters.

    python -m bench.lifecycle [--runs 5] [--big-subtasks 100] [--rounds 3] [--duration 20]

1. A tenant of about 570 rows (createtestdata's average), exported and imported under a new
   slug ``--runs`` times: the commands' own time (what they print) and their wall time with
   Python's start.
2. A tenant of more than 100,000 rows, the same once per run.
3. multidb: locust on every tenant but one, ``--rounds`` interleaved pairs of runs: one with
   nothing else going on, one in which the remaining tenant moves to the second server (and
   back, the next round). The neighbours' failures and p95 side by side, and how long the
   moving tenant answered something else than 200 (a probe asks every 20 ms).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    bench_env,
    environment_facts,
    fresh_database,
    manage,
    run,
    say,
    seconds,
)
from bench.driving import locust_result, start_locust, stop, visit_every_tenant
from bench.server import get, gunicorn
from shared.cluster import Credentials, bootstrap, create_database, temporary_cluster
from shared.env import ROOT

STRATEGIES = ("rls", "schemas", "multidb")
TOOK = re.compile(r"([\d.]+) s\)")  # what exporttenant and importtenant print


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--big-subtasks", type=int, default=100, help="subtasks per task of the big tenant "
        "(100 projects x 10 tasks each; default 100: 101,101 rows and its users)",
    )  # fmt: skip
    parser.add_argument("--accounts", type=int, default=20, help="tenants for the move's load")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=seconds, default=20, help="per run of the move's load")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument(
        "--parts", default="transfers,moves", help="what to measure (default: transfers,moves)"
    )
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    return parser.parse_args(argv)


def timed(strategy: str, env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """(the command's own seconds, wall seconds, its output)."""
    started = time.perf_counter()
    out = manage(strategy, env, *args).stdout
    wall = time.perf_counter() - started
    match = TOOK.search(out)
    if not match:
        raise SystemExit(f"error: {args[0]} printed no time:\n{out[-500:]}")
    return float(match[1]), wall, out


def round_trip(strategy: str, env: dict, slug: str, new: str, scratch: Path) -> dict[str, float]:
    path = scratch / f"{strategy}-{new}.tgz"
    export, export_wall, _ = timed(strategy, env, "exporttenant", slug, "-o", str(path), "-v0")
    load, load_wall, _ = timed(strategy, env, "importtenant", str(path), "--slug", new, "-v0")
    digests = {manage(strategy, env, "tenantdigest", s).stdout.split()[1] for s in (slug, new)}
    if len(digests) != 1:
        raise SystemExit(f"error: {new} differs from {slug} after the import: {digests}")
    manage(strategy, env, "droptenant", new, "--yes")
    return {
        "command_s": export + load,
        "wall_s": export_wall + load_wall,
        "export_s": export,
        "import_s": load,
        "bytes": path.stat().st_size,
    }


def rows_of(strategy: str, env: dict, slug: str) -> int:
    out = manage(strategy, env, "tenantdigest", slug, "--json").stdout
    return sum(t["rows"] for t in json.loads(out)["tables"].values())


def transfers(cluster, env: dict, args: argparse.Namespace, scratch: Path) -> list[dict]:
    results = []
    for strategy in STRATEGIES:
        fresh_database(cluster, strategy, env)
        manage(strategy, env, "createtestdata", "--accounts", "10")
        sizes = {f"tenant-{n}": rows_of(strategy, env, f"tenant-{n}") for n in range(1, 11)}
        slug = min(sizes, key=lambda s: abs(sizes[s] - 570))
        runs = [round_trip(strategy, env, slug, f"copy-{i}", scratch) for i in range(args.runs)]
        results.append(summary(strategy, slug, sizes[slug], runs))
        say(line(results[-1]))
        big = args.big_subtasks
        manage(
            strategy, env, "createtestdata", "--accounts", "11", "--skip-existing",
            "--min-projects", "100", "--max-projects", "100", "--min-tasks", "10",
            "--max-tasks", "10", "--min-subtasks", str(big), "--max-subtasks", str(big),
        )  # fmt: skip
        rows = rows_of(strategy, env, "tenant-11")
        runs = [round_trip(strategy, env, "tenant-11", f"big-{i}", scratch) for i in range(3)]
        results.append(summary(strategy, "tenant-11", rows, runs))
        say(line(results[-1]))
    return results


def summary(strategy: str, slug: str, rows: int, runs: list[dict]) -> dict:
    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 3)

    return {
        "strategy": strategy,
        "tenant": slug,
        "rows": rows,
        "runs": runs,
        **{f"{key}_median": median(key) for key in ("command_s", "wall_s", "export_s", "import_s")},
        "command_s_range": [round(min(r["command_s"] for r in runs), 3),
                            round(max(r["command_s"] for r in runs), 3)],
    }  # fmt: skip


def line(r: dict) -> str:
    low, high = r["command_s_range"]
    return (
        f"  {r['strategy']:8} {r['rows']:>8,} rows: export + import {r['command_s_median']:.2f} s "
        f"(runs {low:.2f}-{high:.2f}; export {r['export_s_median']:.2f}, import "
        f"{r['import_s_median']:.2f}), {r['wall_s_median']:.2f} s with Python's start"
    )


def moves(cluster, second, env: dict, args: argparse.Namespace, scratch: Path) -> list[dict]:
    fresh_database(cluster, "multidb", env)
    manage("multidb", env, "createtestdata", "--accounts", str(args.accounts))
    listed = json.loads(manage("multidb", env, "listtenants", "--json").stdout)
    moving, others = listed[-1], listed[:-1]
    tenants = scratch / "others.json"
    tenants.write_text(json.dumps(others))
    places = [f"127.0.0.1:{second.port}", f"127.0.0.1:{cluster.port}"]
    runs: list[dict] = []
    with gunicorn("multidb.wsgi", {**env, "DJANGO_SETTINGS_MODULE": "multidb.settings"},
                  workers=2) as (port, _):  # fmt: skip
        visit_every_tenant(port, tenants, times=2)
        for number in range(args.rounds):
            for move in (False, True) if number % 2 == 0 else (True, False):
                runs.append(
                    one_run(
                        env,
                        port,
                        tenants,
                        moving["slug"],
                        move and places[sum(r["moved"] for r in runs) % 2],
                        args,
                        scratch / f"move-{len(runs)}",
                    )
                )
                say(f"  round {number + 1}, {'with' if move else 'without'} a move: "
                    f"{describe(runs[-1])}")  # fmt: skip
    return runs


def one_run(env, port, tenants, slug, to, args, stem: Path) -> dict:
    probes: list[tuple[float, int]] = []
    stop_probe = threading.Event()

    def probe() -> None:
        while not stop_probe.is_set():
            try:
                status, _ = get(port, f"{slug}.localhost:{port}", "/subtasks/", timeout=10)
            except OSError:
                status = 0
            probes.append((time.monotonic(), status))
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    locust = start_locust(port, tenants, stem, users=args.users, spawn_rate=args.users,
                          seconds=args.duration)  # fmt: skip
    prober.start()
    moved: dict = {}
    try:
        time.sleep(args.duration / 3)
        if to:
            started = time.perf_counter()
            out = manage("multidb", env, "movetenant", slug, "--to", to, "-v0").stdout
            wall = time.perf_counter() - started
            closed = re.search(r"the 503 page for ([\d.]+) s", out)
            moved = {"to": to, "command_s": round(wall, 2),
                     "closed_s": float(closed[1]) if closed else None}  # fmt: skip
        locust.wait(timeout=args.duration + 60)
    finally:
        stop(locust)
        stop_probe.set()
        prober.join()
    result = locust_result(stem)
    bad = [t for t, status in probes if status != 200]
    return {
        "moved": bool(to),
        "move": moved,
        "others": {k: result[k] for k in ("requests", "failures", "rps", "p50_ms", "p95_ms",
                                           "p99_ms", "wrong_rows")},
        "probe": {"requests": len(probes), "not_200": len(bad),
                  "statuses": sorted({s for _, s in probes}),
                  "unavailable_s": round(bad[-1] - bad[0] + 0.02, 2) if bad else 0.0},
    }  # fmt: skip


def describe(r: dict) -> str:
    o, p = r["others"], r["probe"]
    text = (
        f"others {o['requests']} requests, {o['failures']} failed, p95 {o['p95_ms']} ms; "
        f"moving tenant {p['not_200']} of {p['requests']} not 200 ({p['statuses']})"
    )
    if r["moved"]:
        text += f", unavailable {p['unavailable_s']} s, move took {r['move']['command_s']} s"
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    credentials = Credentials.generate()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="tenancy-lifecycle-") as tmp:
        clusters = [
            stack.enter_context(temporary_cluster(prefix=f"tenancy-bench-{n}-", settings={}))
            for n in ("main", "second")
        ]
        for cluster in clusters:
            bootstrap(cluster.admin_url(), credentials)
        cluster, second = clusters
        env = bench_env(cluster, credentials)
        for strategy in STRATEGIES:
            create_database(cluster, f"tenancy_{strategy}")
        scratch = Path(tmp)
        parts = set(args.parts.split(","))
        transferred, moved = [], []
        if "transfers" in parts:
            say(f"export + import: {args.runs} runs of a ~570-row tenant, 3 of a big one")
            transferred = transfers(cluster, env, args, scratch)
        if "moves" in parts:
            say(f"movetenant under load: {args.rounds} rounds, {args.duration} s each run")
            moved = moves(cluster, second, env, args, scratch)
        document = {
            "kind": "lifecycle",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **environment_facts(cluster),
            "parameters": vars(args) | {"results": str(args.results)},
            "transfers": transferred,
            "moves": moved,
        }
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"lifecycle-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    say(verdicts(document))
    say(f"\nResults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


def verdicts(document: dict) -> str:
    lines = [
        "",
        "| strategy | tenant rows | export + import (median) | runs | with Python's start |",
        "|---|---:|---:|---|---:|",
    ]
    for r in document["transfers"]:
        low, high = r["command_s_range"]
        lines.append(
            f"| {r['strategy']} | {r['rows']:,} | {r['command_s_median']:.2f} s | "
            f"{low:.2f}-{high:.2f} s | {r['wall_s_median']:.2f} s |"
        )
    still = [r for r in document["moves"] if not r["moved"]]
    moving = [r for r in document["moves"] if r["moved"]]
    if not (still and moving):
        return "\n".join(lines)

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r["others"][key] for r in runs)

    p95_still, p95_moving = med(still, "p95_ms"), med(moving, "p95_ms")
    lines += [
        "",
        "| movetenant under load | without a move | with a move |",
        "|---|---:|---:|",
        f"| other tenants' failures | {sum(r['others']['failures'] for r in still)} | "
        f"{sum(r['others']['failures'] for r in moving)} |",
        f"| other tenants' p95 (median of runs) | {p95_still:.0f} ms | {p95_moving:.0f} ms |",
        f"| other tenants' requests/s (median) | {med(still, 'rps'):.1f} | "
        f"{med(moving, 'rps'):.1f} |",
        f"| moving tenant unavailable (median) | - | "
        f"{statistics.median(r['probe']['unavailable_s'] for r in moving):.2f} s |",
        f"| movetenant's own time (median) | - | "
        f"{statistics.median(r['move']['command_s'] for r in moving):.2f} s |",
        "",
        f"p95 with a move / without: {p95_moving / p95_still:.2f}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run(main))
