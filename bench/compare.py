"""`make bench`: the three strategies, a ceiling and a control, under the same load, interleaved.

    python -m bench.compare [--accounts 100] [--users 20] [--spawn-rate 10]
        [--duration 60s] [--rounds 3] [--workers 2] [--targets rls,rls-control,...]

One private PostgreSQL cluster (default, durable settings) holds every strategy's database,
each loaded by createtestdata with the same seed and accounts. Each round serves every target
in turn with gunicorn (fixed workers, loopback) and drives it with locust (bench/
locustfile.py), which checks every response for the right tenant and rows. Targets take turns
round after round (A B C A B C ...), so drift of the machine cannot favour one; medians over
rounds are reported with their min-max spread. Before its clock starts, each server is warmed
up: every busy tenant's page, a few times per worker.

- ceiling: bench/ceiling.py, the same SQL on psycopg's pool with no Django.
- rls-control: rls on a copy of its database with row-level security off, served by
  bench/control_wsgi.py (rls.wsgi refuses such a database), to measure what the policies cost.
- baseline-shared, baseline-multidb: the UNSAFE baseline (bench/baseline/), the same page
  written the straightforward way, on the same data: what the strategies are compared with.
- rls-citus, schemas-citus (``--citus``, make bench CLUSTER=citus): rls and schemas on a
  private Citus coordinator with two workers, on the same machine, loaded the same way. The run
  then also says where a page view's time goes on Citus and on one server (bench/hop_probe.py).

Each target is measured with requests spread over the first N tenants, for each N of
--tenants (how many tenants are busy at once; `make bench` passes 10,50,100).
"""

from __future__ import annotations

import argparse
import json
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
    in_django,
    manage,
    on_database,
    private_citus_cluster,
    private_cluster,
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

STRATEGIES = ["rls", "multidb", "schemas"]
SINGLE_SERVER = [
    "rls", "rls-control", "multidb", "schemas", "ceiling", "baseline-shared", "baseline-multidb"
]  # fmt: skip
CITUS = ["rls-citus", "schemas-citus"]
TARGETS = SINGLE_SERVER + CITUS
CONTROL_DB = "tenancy_rls_control"


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--users", type=int, default=20, help="locust users (default 20)")
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--duration", type=seconds, default=60, help="per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--targets", help="default: every single-server target, and with "
                        "--citus the Citus ones too")  # fmt: skip
    parser.add_argument(
        "--citus", action="store_true", help="measure rls-citus and schemas-citus too"
    )
    parser.add_argument(
        "--tenants",
        help="busy tenants per measurement, e.g. 10,50,100 (default: every account)",
    )
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--figures", type=Path, default=ROOT / "presentation" / "figures")
    parser.add_argument(
        "--readme", type=Path, default=ROOT / "README.md", help="updated between bench markers"
    )
    parser.add_argument("--no-report", action="store_true", help="no charts, no README update")
    args = parser.parse_args(argv)
    default = SINGLE_SERVER + (CITUS if args.citus else [])
    given = args.targets or ",".join(default)
    args.targets = [t.strip() for t in given.split(",") if t.strip()]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    for name in ("accounts", "users", "rounds", "workers", "duration"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    try:
        given = args.tenants or str(args.accounts)
        args.tenants = sorted({int(n) for n in given.split(",") if n.strip()})
    except ValueError:
        parser.error("--tenants takes numbers separated by commas, e.g. 10,50,100")
    if not args.tenants or args.tenants[0] < 1 or args.tenants[-1] > args.accounts:
        parser.error(f"--tenants must be between 1 and --accounts ({args.accounts})")
    return args


# -- preparing the data ---------------------------------------------------------------------


def prepare(cluster, env, args, workdir: Path, stack: ExitStack) -> dict[str, dict]:
    """Each strategy's database loaded with the same accounts; the control copy; the tenants."""
    needed = {t.split("-")[0] for t in args.targets if t not in CITUS} & set(STRATEGIES)
    uses_control = {"ceiling", "rls-control", "baseline-shared"} & set(args.targets)
    if uses_control:
        needed.add("rls")
    if "baseline-multidb" in args.targets:
        needed.add("multidb")
    targets: dict[str, dict] = {}
    for strategy in [s for s in STRATEGIES if s in needed]:
        say(f"preparing {strategy}: migrate, createtestdata --accounts {args.accounts}")
        fresh_database(cluster, strategy, env)
        manage(strategy, env, "createtestdata", "--accounts", str(args.accounts),
               "--seed", str(args.seed))  # fmt: skip
        tenants = workdir / f"{strategy}-tenants.json"
        tenants.write_text(manage(strategy, env, "listtenants", "--json").stdout)
        targets[strategy] = {"app": f"{strategy}.wsgi", "env": env, "tenants": tenants}
    if uses_control:
        control_env = control_database(cluster, env)
        rls = targets["rls"]
        targets["rls-control"] = {**rls, "app": "bench.control_wsgi", "env": control_env}
        targets["ceiling"] = {
            "app": "bench.ceiling:application",
            "env": {**env, "CEILING_DATABASE_URL": control_env["RUNTIME_DATABASE_URL"]},
            "tenants": rls["tenants"],
        }
        baseline = {"app": "bench.baseline.wsgi", "env": {**env, "BASELINE": "shared"}}
        targets["baseline-shared"] = {**rls, **baseline}
    if "multidb" in targets:
        baseline = {"app": "bench.baseline.wsgi", "env": {**env, "BASELINE": "multidb"}}
        targets["baseline-multidb"] = {**targets["multidb"], **baseline}
    if on_citus := [t for t in CITUS if t in args.targets]:
        citus, citus_env, _ = stack.enter_context(private_citus_cluster())
        for target in on_citus:
            strategy = target.removesuffix("-citus")
            say(f"preparing {target}: migrate, createtestdata --accounts {args.accounts}")
            manage(strategy, citus_env, "migrate", "--verbosity", "0")
            manage(strategy, citus_env, "createtestdata", "--accounts", str(args.accounts),
                   "--seed", str(args.seed))  # fmt: skip
            tenants = workdir / f"{target}-tenants.json"
            tenants.write_text(manage(strategy, citus_env, "listtenants", "--json").stdout)
            targets[target] = {"app": f"{strategy}.wsgi", "env": citus_env, "tenants": tenants,
                               "cluster": citus.coordinator, "strategy": strategy,
                               "placement": placement(citus, strategy)}  # fmt: skip
    return targets


PLACEMENT = {
    # A tenant's worker: where the shard that holds its account id is.
    "rls": "SELECT s.nodeport, count(*) FROM tracker_account a JOIN citus_shards s "
    "ON s.shardid = get_shard_id_for_distribution_column('tracker_subtask', a.id) GROUP BY 1",
    # A tenant's worker: where its schema's tables are.
    "schemas": "SELECT s.nodeport, count(DISTINCT n.nspname) FROM citus_shards s "
    "JOIN pg_class c ON c.oid = s.table_name JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname IN (SELECT schema_name FROM customers_account) GROUP BY 1",
}


def placement(citus, strategy: str) -> dict[str, int]:
    """How many tenants each worker holds."""
    with psycopg.connect(citus.admin_url(f"tenancy_{strategy}")) as admin:
        rows = admin.execute(PLACEMENT[strategy]).fetchall()
    return {f"127.0.0.1:{port}": count for port, count in sorted(rows)}


def where_time_goes(targets: dict[str, dict]) -> dict[str, dict]:
    """bench/hop_probe.py for each strategy measured both on one server and on Citus."""
    found = {}
    for target in CITUS:
        strategy = target.removesuffix("-citus")
        if target in targets and strategy in targets:
            for name in (strategy, target):
                say(f"where a page view's time goes: {name}")
                found[name] = in_django(strategy, targets[name]["env"], "bench.hop_probe")
    return found


def busy(tenants: Path, count: int, workdir: Path) -> Path:
    """The first ``count`` tenants (by slug number) of a listtenants file."""
    listed = json.loads(tenants.read_text())
    listed.sort(key=lambda t: int(t["slug"].rsplit("-", 1)[-1]))
    path = workdir / f"{tenants.stem}-{count}.json"
    path.write_text(json.dumps(listed[:count]))
    return path


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
    return {**on_database(env, CONTROL_DB), "TENANCY_BENCH_CONTROL": CONTROL_DB}


# -- one measurement ------------------------------------------------------------------------


def measure(name: str, count: int, target: dict, args, workdir: Path, cluster, progress) -> dict:
    stem, log = workdir / f"{name}-{count}", workdir / f"{name}-{count}-gunicorn.log"
    tenants = busy(target["tenants"], count, workdir)
    cluster = target.get("cluster", cluster)  # where the runtime role's connections are
    with gunicorn(target["app"], target["env"], workers=args.workers, log=log) as (port, proc):
        # Warmed up before the clock starts: what is measured is a server that has been up
        # for a while (code loaded, connections open), the same for every target. What a
        # cold start costs is make bench-scale's business.
        visit_every_tenant(port, tenants, times=2 * args.workers)
        locust = start_locust(
            port, tenants, stem,
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


# -- the whole run --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    per_run = args.duration + 8  # locust's run, plus starting and stopping the server
    plan = [(name, count) for count in args.tenants for name in args.targets]
    total = per_run * args.rounds * len(plan)
    rounds: list[dict] = []
    begun = time.monotonic()
    say(
        f"make bench: {len(args.targets)} targets x {len(args.tenants)} tenant counts x "
        f"{args.rounds} rounds x {args.duration} s "
        f"(about {total // 60} min {total % 60} s of load, after loading {args.accounts} accounts)"
    )
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tenancy-bench-")))
        cluster, env = stack.enter_context(private_cluster())
        facts = environment_facts(cluster)
        targets = prepare(cluster, env, args, workdir, stack)
        load_started = time.monotonic()
        done = 0
        for number in range(1, args.rounds + 1):
            for name, count in plan:
                label = f"{name} @{count}"

                def progress(_, elapsed, number=number, done=done, label=label):
                    left = total - done * per_run - elapsed
                    line = (
                        f"  round {number}/{args.rounds} · {label:20} · {elapsed:4.0f} s of "
                        f"{args.duration} s · about {max(left, 0) / 60:.1f} min left  "
                    )
                    if sys.stdout.isatty():  # one line, rewritten
                        print("\r" + line, end="", flush=True)
                    elif round(elapsed) % 15 == 0:  # a log: a line now and then
                        print(line, flush=True)

                result = measure(name, count, targets[name], args, workdir, cluster, progress)
                done += 1
                rounds.append({"round": number, "target": label, "tenants": count, **result})
                print(
                    f"\r  round {number}/{args.rounds} · {label:20} · {result['rps']:7.1f} req/s"
                    f" · p95 {result['p95_ms']:.0f} ms · {result['failures']} failures · "
                    f"{result['wrong_rows']} wrong rows{' ' * 12}",
                    flush=True,
                )
        hop = where_time_goes(targets)
    document = {
        # A run with Citus is kept, charted and tabled apart from the single-server one.
        "kind": "bench-citus" if any(t in CITUS for t in args.targets) else "bench",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **facts,
        "parameters": {
            k: getattr(args, k)
            for k in (
                "accounts",
                "users",
                "spawn_rate",
                "duration",
                "rounds",
                "workers",
                "seed",
                "tenants",
            )
        },
        "targets": args.targets,
        "rounds": rounds,
        "summary": summary(rounds, [label for label in dict.fromkeys(r["target"] for r in rounds)]),
        "where_time_goes": hop,
        "placement": {name: t["placement"] for name, t in targets.items() if "placement" in t},
        "load_seconds": round(time.monotonic() - load_started),
        "wall_seconds": round(time.monotonic() - begun),
    }
    publish(document, args)
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
    # Each target against the ceiling and the control with the same busy tenants.
    for label, row in out.items():
        count = label.rpartition("@")[2]
        ceiling = out.get(f"ceiling @{count}", {}).get("rps_median")
        row["of_ceiling"] = row["rps_median"] / ceiling if ceiling else None
        control = out.get(f"rls-control @{count}", {}).get("rps_median")
        if control and label.startswith("rls @"):
            row["cost_vs_control"] = 1 - row["rps_median"] / control
        # On Citus against the same strategy on one server, same busy tenants, same run.
        target = label.rpartition(" @")[0]
        if target in CITUS:
            single = out.get(f"{target.removesuffix('-citus')} @{count}", {}).get("rps_median")
            row["of_single_server"] = row["rps_median"] / single if single else None
    return out


if __name__ == "__main__":
    sys.exit(run(main))
