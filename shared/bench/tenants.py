"""What tenants cost in the database-per-tenant strategy, measured on a private cluster:

- provisioning one tenant from the template (median and p95 over --tenants),
- migratetenants with nothing to do over those tenants (the whole command, as a user runs it),
- createtestdata --accounts N into multidb beside the same run into rls.

    python -m shared.bench.tenants --tenants 200
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from shared.bench.common import ROOT, fresh_database, manage, private_cluster, rows_created
from shared.localdb import LocalDBError

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
print(json.dumps(times))
"""


def provision(env: dict, count: int) -> list[float]:
    import json

    result = subprocess.run(
        [sys.executable, "-c", PROVISION.format(count=count)],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "multidb.settings"},
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
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        with private_cluster() as (cluster, env):
            fresh_database(cluster, "multidb", env)
            times = provision(env, args.tenants)
            ordered = sorted(times)
            p95 = ordered[int(0.95 * (len(ordered) - 1))]
            print(
                f"provisioning {args.tenants} tenants from the template: median "
                f"{statistics.median(times):.3f} s, p95 {p95:.3f} s, first (builds the "
                f"template) {times[0]:.3f} s",
                flush=True,
            )

            started = time.perf_counter()
            manage(
                "multidb",
                env,
                "migratetenants",
                "--parallel",
                str(args.parallel),
                "--report",
                "/dev/null",
            )
            print(
                f"migratetenants with nothing to do over {args.tenants} tenants "
                f"(--parallel {args.parallel}): {time.perf_counter() - started:.1f} s",
                flush=True,
            )

            rates = {}
            for strategy in ("multidb", "rls"):
                fresh_database(cluster, strategy, env)
                started = time.perf_counter()
                result = manage(strategy, env, "createtestdata", "--accounts", str(args.tenants))
                seconds = time.perf_counter() - started
                rates[strategy] = rows_created(result.stdout) / seconds
                print(
                    f"createtestdata --accounts {args.tenants} into {strategy}: "
                    f"{rows_created(result.stdout):,} rows in {seconds:.1f} s = "
                    f"{rates[strategy]:,.0f} rows/s",
                    flush=True,
                )
            print(f"multidb loads at {rates['multidb'] / rates['rls']:.2f}x the rate of rls")
    except LocalDBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
