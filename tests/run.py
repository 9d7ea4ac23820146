"""``make test``: a throwaway PostgreSQL cluster (unless DATABASE_URL names a server), the
bootstrap SQL, then pytest once per strategy over tests/contract and that strategy's folder.

    python -m tests.run [--strategy rls] [pytest arguments...]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

from shared.localdb import Cluster, LocalDBError, bootstrap, free_port, url

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = ["rls", "multidb", "schemas"]


def run_strategy(
    strategy: str,
    env: dict[str, str],
    pytest_args: list[str],
    report: Path,
    *,
    with_project_tests: bool,
) -> int:
    paths = ["tests/contract", f"tests/{strategy}"]
    if with_project_tests:  # tests of the repository itself, which need no strategy: run once
        paths.append("tests/project")
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
    print(f"\n=== {strategy}: {' '.join(command[2:])}", flush=True)
    return subprocess.call(command, cwd=ROOT, env=env)


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
    args, pytest_args = parser.parse_known_args(argv)
    strategies = args.strategy or STRATEGIES

    workdir = Path(tempfile.mkdtemp(prefix="tenancy-test-"))
    workdir.chmod(0o755)  # the server may run as another OS user (see shared.localdb)
    cluster = None
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
            "PYTHONPATH": str(ROOT),
        }
        results = {}
        for strategy in strategies:
            report = workdir / f"{strategy}.xml"
            code = run_strategy(
                strategy, env, pytest_args, report, with_project_tests=strategy == strategies[0]
            )
            results[strategy] = (code, *totals(report))
    except LocalDBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print("\n=== summary")
    for strategy, (code, passed, failed, skipped) in results.items():
        state = "ok" if code == 0 else f"FAILED (pytest exit {code})"
        print(f"  {strategy:8} {passed} passed, {failed} failed, {skipped} skipped: {state}")
    passed = sum(r[1] for r in results.values())
    failed = sum(r[2] for r in results.values())
    bad = [s for s, r in results.items() if r[0] != 0]
    print(f"{passed} passed, {failed} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
