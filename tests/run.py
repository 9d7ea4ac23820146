"""``make test``: a throwaway PostgreSQL cluster (unless DATABASE_URL names a server), the
bootstrap SQL, then pytest once per strategy over tests/contract and that strategy's folder;
then, for the strategies that share one server between tenants, the contract suite again and
tests/pooler through PgBouncer in transaction mode.

    python -m tests.run [--strategy rls] [pytest arguments...]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import tests.pgbouncer
from shared.env import ROOT
from shared.localdb import Cluster, LocalDBError, bootstrap, free_port, url

STRATEGIES = ["rls", "multidb", "schemas"]
# A database per tenant has nothing to pool across tenants: no second pass for multidb.
THROUGH_PGBOUNCER = ["rls", "schemas"]
# One pytest pass takes 1-3 minutes here; one that runs far longer hangs.
PASS_TIMEOUT = 1200


def run_strategy(
    strategy: str, env: dict[str, str], pytest_args: list[str], report: Path, paths: list[str]
) -> int:
    paths = [p for p in paths if (ROOT / p).is_dir()]
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--ds",
        f"{strategy}.settings",
        f"--junitxml={report}",
        *paths,
        *pytest_args,
    ]
    print(f"\n=== {report.stem}: {' '.join(command[2:])}", flush=True)
    with subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True) as process:
        try:
            return process.wait(timeout=PASS_TIMEOUT)
        except KeyboardInterrupt:  # its own session: Ctrl-C reaches only this process
            os.killpg(process.pid, signal.SIGINT)
            process.wait()
            raise
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            print(
                f"\n{'!' * 78}\n{report.stem}: still running after {PASS_TIMEOUT} s; ended. The "
                f"stacks faulthandler printed above show where it hung.\n{'!' * 78}",
                file=sys.stderr,
                flush=True,
            )
            return 124


def totals(report: Path) -> tuple[int, int, int]:
    if not report.exists():
        return 0, 0, 0
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    tests, failed = int(suite.get("tests", 0)), int(suite.get("failures", 0))
    errors, skipped = int(suite.get("errors", 0)), int(suite.get("skipped", 0))
    return tests - failed - errors - skipped, failed + errors, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", action="append", choices=STRATEGIES)
    parser.add_argument(
        "--pgbouncer",
        choices=["also", "only", "no"],
        default="also",
        help="the second pass through PgBouncer (default: also)",
    )
    args, pytest_args = parser.parse_known_args(argv)
    strategies = args.strategy or STRATEGIES

    workdir = Path(tempfile.mkdtemp(prefix="tenancy-test-"))
    workdir.chmod(0o755)  # the server may run as another OS user (see shared.localdb)
    cluster = bouncer = None
    results = {}
    try:
        admin_url = os.environ.get("DATABASE_URL")
        if admin_url:
            print(f"PostgreSQL: the server at DATABASE_URL ({urlsplit(admin_url).hostname})")
        else:
            os.environ["LOCALDB_THROWAWAY"] = "1"
            cluster = Cluster(workdir / "pg", free_port())
            started = time.monotonic()
            cluster.init()
            cluster.start()
            admin_url = cluster.admin_url()
            print(
                f"PostgreSQL: throwaway cluster on 127.0.0.1:{cluster.port} "
                f"(ready in {time.monotonic() - started:.1f} s)"
            )
        owner_password, runtime_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        bootstrap(admin_url, owner_password, runtime_password)
        server = urlsplit(admin_url)
        host, port = server.hostname or "127.0.0.1", server.port or 5432
        env = {
            **os.environ,
            "OWNER_DATABASE_URL": url("tenancy_owner", owner_password, host, port),
            "RUNTIME_DATABASE_URL": url("tenancy_app", runtime_password, host, port),
            "TENANCY_TEST_ADMIN_URL": admin_url,
            "TENANCY_ENV_FILE": os.devnull,  # a developer's .env must not redirect the tests
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            "TENANCY_RESULTS_DIR": str(workdir / "results"),  # reports of tested commands
            "PYTHONPATH": str(ROOT),
        }
        if cluster is not None:  # the fault tests restart it
            env["TENANCY_TEST_CLUSTER"] = f"{cluster.base}:{cluster.port}"
        if args.pgbouncer != "only":
            for strategy in strategies:
                paths = ["tests/contract", f"tests/{strategy}"]
                if strategy == strategies[0]:  # tests of the repository itself: run once
                    paths.append("tests/project")
                report = workdir / f"{strategy}.xml"
                code = run_strategy(strategy, env, pytest_args, report, paths)
                results[strategy] = (code, *totals(report))
        pooled = [s for s in strategies if s in THROUGH_PGBOUNCER]
        if args.pgbouncer != "no" and pooled:
            if tests.pgbouncer.find() is None:
                for strategy in pooled:
                    results[f"{strategy}+pgbouncer"] = (1, 0, 1, 0)
                print(
                    "\n" + "!" * 78 + "\nPgBouncer is NOT INSTALLED: the contract suite cannot run "
                    "through it.\nInstall it (Debian: apt-get install pgbouncer), or pass "
                    "--pgbouncer no to leave that pass out knowingly.\n" + "!" * 78,
                    file=sys.stderr,
                )
            else:
                bouncer = tests.pgbouncer.PgBouncer(
                    workdir / "pgbouncer",
                    host,
                    port,
                    {"tenancy_app": runtime_password, "tenancy_owner": owner_password},
                )
                bouncer.start()
                print(
                    f"\nPgBouncer {bouncer.version()}: transaction mode on "
                    f"127.0.0.1:{bouncer.port}, "
                    f"{tests.pgbouncer.POOL_SIZE} server connections per database and role"
                )
                pooled_env = {
                    **env,
                    "RUNTIME_DATABASE_URL": url(
                        "tenancy_app", runtime_password, "127.0.0.1", bouncer.port
                    ),
                    "RUNTIME_DATABASE_POOLING": "transaction",
                    "TENANCY_PGBOUNCER_PORT": str(bouncer.port),
                }
                for strategy in pooled:
                    report = workdir / f"{strategy}+pgbouncer.xml"
                    code = run_strategy(
                        strategy,
                        pooled_env,
                        pytest_args,
                        report,
                        ["tests/contract", "tests/pooler"],
                    )
                    results[report.stem] = (code, *totals(report))
    except LocalDBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if bouncer is not None:
            bouncer.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print("\n=== summary")
    for strategy, (code, passed, failed, skipped) in results.items():
        state = "ok" if code == 0 else f"FAILED (pytest exit {code})"
        print(f"  {strategy:18} {passed} passed, {failed} failed, {skipped} skipped: {state}")
    passed = sum(r[1] for r in results.values())
    failed = sum(r[2] for r in results.values())
    bad = [s for s, r in results.items() if r[0] != 0]
    print(f"{passed} passed, {failed} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
