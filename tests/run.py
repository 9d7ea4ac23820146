"""``make test``: a throwaway PostgreSQL cluster (unless DATABASE_URL names a server), the
bootstrap SQL, then pytest once per strategy over tests/contract and that strategy's folder;
then, for the strategies that share one server between tenants, the contract suite again and
tests/pooler through PgBouncer in transaction mode.

Where Citus is installed, rls and schemas run the contract suite and tests/citus once more on
a coordinator with two workers (``--citus no`` leaves them out; without Citus they are left
out, loudly).

    python -m tests.run [--strategy rls] [--pgbouncer also|only|no] [--citus also|only|no]
                        [pytest arguments...]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import shared.citus
import tests.pgbouncer
from shared.cluster import ClusterError, Credentials, bootstrap, temporary_cluster
from shared.env import ROOT

STRATEGIES = ["rls", "multidb", "schemas"]
# One pytest pass takes 1-3 minutes here; one that runs far longer hangs.
PASS_TIMEOUT = 1200


@dataclass
class Result:
    exit_code: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0


def loud(message: str) -> None:
    print(f"\n{'!' * 78}\n{message}\n{'!' * 78}", file=sys.stderr, flush=True)


def start_server(stack: ExitStack) -> tuple[str, str | None]:
    """The superuser URL of the server under test, and the throwaway cluster's
    ``base:port`` (which the fault tests restart), or None for DATABASE_URL's server."""
    if admin_url := os.environ.get("DATABASE_URL"):
        print(f"PostgreSQL: the server at DATABASE_URL ({urlsplit(admin_url).hostname})")
        return admin_url, None
    cluster = stack.enter_context(temporary_cluster(prefix="tenancy-test-"))
    print(f"PostgreSQL: throwaway cluster on 127.0.0.1:{cluster.port}")
    return cluster.admin_url(), f"{cluster.base}:{cluster.port}"


def test_environment(
    admin_url: str, credentials: Credentials, cluster: str | None, workdir: Path
) -> dict[str, str]:
    server = urlsplit(admin_url)
    env = {
        **os.environ,
        **credentials.database_urls(server.hostname or "127.0.0.1", server.port or 5432),
        "TENANCY_TEST_ADMIN_URL": admin_url,
        "TENANCY_ENV_FILE": os.devnull,  # a developer's .env must not redirect the tests
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
        "TENANCY_RESULTS_DIR": str(workdir / "results"),  # reports of tested commands
        "PYTHONPATH": str(ROOT),
    }
    if cluster is not None:
        env["TENANCY_TEST_CLUSTER"] = cluster
    return env


def run_pytest(
    strategy: str, env: dict[str, str], pytest_args: list[str], report: Path, paths: list[str]
) -> Result:
    """One pytest pass in its own session, ended if it outlives PASS_TIMEOUT."""
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
            code = process.wait(timeout=PASS_TIMEOUT)
        except KeyboardInterrupt:  # its own session: Ctrl-C reaches only this process
            os.killpg(process.pid, signal.SIGINT)
            process.wait()
            raise
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            loud(
                f"{report.stem}: still running after {PASS_TIMEOUT} s; ended. The stacks "
                "faulthandler printed above show where it hung."
            )
            code = 124
    return Result(code, *totals(report))


def totals(report: Path) -> tuple[int, int, int]:
    if not report.exists():
        return 0, 0, 0
    suite = ET.parse(report).getroot()
    found = suite if suite.tag == "testsuite" else suite.find("testsuite")
    if found is None:
        return 0, 0, 0
    tests, failed = int(found.get("tests", 0)), int(found.get("failures", 0))
    errors, skipped = int(found.get("errors", 0)), int(found.get("skipped", 0))
    return tests - failed - errors - skipped, failed + errors, skipped


def direct_passes(
    strategies: list[str], env: dict[str, str], pytest_args: list[str], workdir: Path
) -> dict[str, Result]:
    results = {}
    for strategy in strategies:
        paths = ["tests/contract", f"tests/{strategy}"]
        if strategy == strategies[0]:  # tests of the repository itself: run once
            paths.append("tests/project")
        results[strategy] = run_pytest(
            strategy, env, pytest_args, workdir / f"{strategy}.xml", paths
        )
    return results


def pooled_passes(
    strategies: list[str],
    env: dict[str, str],
    credentials: Credentials,
    pytest_args: list[str],
    workdir: Path,
) -> dict[str, Result]:
    """The contract suite and tests/pooler again, the runtime role through PgBouncer (one
    PgBouncer per strategy, so that no pass inherits another's pools)."""
    names = [f"{s}+pgbouncer" for s in strategies]
    if tests.pgbouncer.find() is None:
        loud(
            "PgBouncer is NOT INSTALLED: the contract suite cannot run through it.\nInstall "
            "it (Debian: apt-get install pgbouncer), or pass --pgbouncer no to leave that "
            "pass out knowingly."
        )
        return {name: Result(1, failed=1) for name in names}
    server = urlsplit(env["TENANCY_TEST_ADMIN_URL"])
    superuser = unquote(server.username or "")
    results = {}
    for strategy, name in zip(strategies, names, strict=True):
        # multidb's tenant roles are made while the tests run: PgBouncer looks them up with
        # auth_query, as a superuser here, whose sessions the owner cannot end when it drops
        # a tenant database, so they leave after 1 s idle. The others keep the defaults.
        tenant_roles = strategy == "multidb"
        bouncer = tests.pgbouncer.PgBouncer(
            workdir / f"pgbouncer-{strategy}",
            server.hostname or "127.0.0.1",
            server.port or 5432,
            credentials.by_role()
            | ({superuser: unquote(server.password or "")} if tenant_roles else {}),
            auth_user=superuser if tenant_roles else None,
            server_idle_timeout=1 if tenant_roles else None,
        )
        bouncer.start()
        try:
            print(
                f"\nPgBouncer {bouncer.version()}: transaction mode on 127.0.0.1:{bouncer.port}, "
                f"{tests.pgbouncer.POOL_SIZE} server connections per database and role"
            )
            pooled_env = {
                **env,
                "RUNTIME_DATABASE_URL": credentials.database_urls("127.0.0.1", bouncer.port)[
                    "RUNTIME_DATABASE_URL"
                ],
                "RUNTIME_DATABASE_POOLING": "transaction",
                "TENANCY_PGBOUNCER_PORT": str(bouncer.port),
            }
            results[name] = run_pytest(
                strategy,
                pooled_env,
                pytest_args,
                workdir / f"{name}.xml",
                ["tests/contract", "tests/pooler"],
            )
        finally:
            bouncer.stop()
    return results


CITUS_STRATEGIES = ["rls", "schemas"]  # multidb needs no distributed engine (DESIGN.md §9)


def citus_passes(
    strategies: list[str], pytest_args: list[str], workdir: Path, stack: ExitStack
) -> dict[str, Result]:
    """The contract suite and tests/citus again, on a Citus coordinator with two workers of
    its own (the same roles, bootstrapped on every node)."""
    chosen = [s for s in CITUS_STRATEGIES if s in strategies]
    if not chosen:
        return {}
    if not shared.citus.installed():
        loud(
            f"Citus is NOT INSTALLED: the {' and '.join(s + '+citus' for s in chosen)} passes "
            "are LEFT OUT.\nInstall it from Citus' packages, or build it: make citus-install "
            "CITUS_SOURCE=citus-X.Y.Z.tar.gz [CITUS_PATCH=...] (bash .ci/run does)."
        )
        return {}
    citus = stack.enter_context(shared.citus.temporary_citus_cluster(prefix="tenancy-test-"))
    credentials = Credentials.generate()
    for node in citus.nodes:
        bootstrap(node.admin_url(), credentials)
    coordinator = citus.coordinator
    print(
        f"\nCitus {shared.citus.version(citus)}: coordinator on 127.0.0.1:{coordinator.port}, "
        f"workers on {', '.join(f'127.0.0.1:{w.port}' for w in citus.workers)}"
    )
    env = test_environment(
        coordinator.admin_url(), credentials, f"{coordinator.base}:{coordinator.port}", workdir
    )
    env |= {
        "TENANCY_CITUS": "1",
        "TENANCY_TEST_CITUS": json.dumps(
            {"base": str(coordinator.base.parent), "port": coordinator.port,
             "workers": len(citus.workers)}
        ),
    }  # fmt: skip
    results = {}
    for strategy in chosen:
        # tests/citus, and of its strategies' folders only this strategy's.
        others = [f"--ignore=tests/citus/{s}" for s in CITUS_STRATEGIES if s != strategy]
        results[f"{strategy}+citus"] = run_pytest(
            strategy,
            env,
            [*others, *pytest_args],
            workdir / f"{strategy}+citus.xml",
            ["tests/contract", "tests/citus"],
        )
    return results


def summary(results: dict[str, Result]) -> int:
    print("\n=== summary")
    for name, r in results.items():
        state = "ok" if r.exit_code == 0 else f"FAILED (pytest exit {r.exit_code})"
        print(f"  {name:18} {r.passed} passed, {r.failed} failed, {r.skipped} skipped: {state}")
    passed = sum(r.passed for r in results.values())
    failed = sum(r.failed for r in results.values())
    print(f"{passed} passed, {failed} failed")
    return 1 if any(r.exit_code != 0 for r in results.values()) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", action="append", choices=STRATEGIES)
    parser.add_argument(
        "--citus",
        choices=["also", "only", "no"],
        default="also",
        help="the passes on a Citus cluster, rls and schemas (default: also, if installed)",
    )
    parser.add_argument(
        "--pgbouncer",
        choices=["also", "only", "no"],
        default="also",
        help="the second pass through PgBouncer (default: also)",
    )
    args, pytest_args = parser.parse_known_args(argv)
    strategies = args.strategy or STRATEGIES

    results: dict[str, Result] = {}
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tenancy-run-")))
        workdir.chmod(0o755)  # PgBouncer runs as another OS user when we are root
        try:
            admin_url, cluster = start_server(stack)
            credentials = Credentials.generate()
            bootstrap(admin_url, credentials)
            env = test_environment(admin_url, credentials, cluster, workdir)
            if args.citus != "only" and args.pgbouncer != "only":
                results |= direct_passes(strategies, env, pytest_args, workdir)
            if args.citus != "only" and args.pgbouncer != "no" and strategies:
                results |= pooled_passes(strategies, env, credentials, pytest_args, workdir)
            if args.citus != "no" and args.pgbouncer != "only":
                results |= citus_passes(strategies, pytest_args, workdir, stack)
        except ClusterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return summary(results)


if __name__ == "__main__":
    sys.exit(main())
