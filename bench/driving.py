"""Driving a served strategy with locust, and what the server uses while it is driven."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.server import get
from shared.cluster import RUNTIME_ROLE, Cluster
from shared.env import ROOT

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def start_locust(
    port: int, tenants: Path, stem: Path, *, users: int, spawn_rate: float, seconds: int
) -> subprocess.Popen[bytes]:
    """locust headless against 127.0.0.1:port with bench/locustfile.py. Its statistics go to
    <stem>-result.json (bench/locustfile.py), its log to <stem>.log."""
    with open(f"{stem}.log", "w") as log:  # the child keeps its own copy of the file
        return subprocess.Popen(
            [
                sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
                "--headless", "--only-summary", "--loglevel", "ERROR",
                "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s",
                "--stop-timeout", "5", "--host", f"http://127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env={**os.environ, "TENANCY_BENCH_TENANTS": str(tenants),
                 "TENANCY_BENCH_RESULT": f"{stem}-result.json", "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def locust_result(stem: Path) -> dict[str, Any]:
    """The run's totals as locust computed them (requests/s over the run, percentiles from
    its own histogram), and what the locustfile's checks found."""
    path = Path(f"{stem}-result.json")
    if not path.exists():
        log = Path(f"{stem}.log").read_text()[-1500:]
        raise RuntimeError(f"locust wrote no statistics for {stem.name}: {log}")
    result = json.loads(path.read_text())
    checks: dict[str, int] = result["checks"]
    return {
        **result["totals"],
        "wrong_rows": checks["wrong_tenant"] + checks["wrong_rows"],
        "checked": checks["checked"],
        "checks": checks,
    }


def runtime_connections(cluster: Cluster) -> int:
    """The web server's connections: the runtime role's, and multidb's tenant roles'."""
    with psycopg.connect(cluster.admin_url(), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s "
            "OR pg_has_role(usesysid, 'tenancy_tenant', 'MEMBER')",
            [RUNTIME_ROLE],
        ).fetchone()
        return int(row[0]) if row else 0


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


def visit_every_tenant(port: int, tenants: Path, times: int = 1) -> None:
    """Each tenant's page of a listtenants file, ``times`` times, each answering 200."""
    for tenant in json.loads(tenants.read_text()):
        for _ in range(times):
            status, _ = get(port, f"{tenant['slug']}.localhost:{port}", "/subtasks/")
            if status != 200:
                raise RuntimeError(f"{tenant['slug']} answered {status}")
