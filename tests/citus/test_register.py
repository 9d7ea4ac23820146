"""`python -m shared.citus register`, which docker compose's citus profile runs: the same
preparation as the local clusters get, on nodes named by host and port."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from django.conf import settings

from shared.cluster import SUPERUSER, url
from shared.env import ROOT


def test_register_prepares_the_strategies_databases_and_the_workers(citus_cluster):
    runtime, owner = settings.DATABASES["default"], settings.DATABASES["owner"]
    coordinator = citus_cluster.coordinator
    done = subprocess.run(
        [
            sys.executable, "-m", "shared.citus", "register",
            f"--coordinator=127.0.0.1:{coordinator.port}",
            *(f"--worker=127.0.0.1:{w.port}" for w in citus_cluster.workers),
        ],
        env={
            **os.environ,
            "POSTGRES_PASSWORD": coordinator.superuser_password,
            "OWNER_PASSWORD": owner["PASSWORD"],
            "RUNTIME_PASSWORD": runtime["PASSWORD"],
        },
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "tenancy_schemas: Citus on 127.0.0.1:" in done.stdout
    password = coordinator.superuser_password
    with psycopg.connect(
        url(SUPERUSER, password, "127.0.0.1", coordinator.port, "tenancy_rls")
    ) as c:
        ports = {p for (p,) in c.execute("SELECT nodeport FROM pg_dist_node WHERE groupid <> 0")}
    assert ports == {w.port for w in citus_cluster.workers}


def test_register_says_what_is_wrong_in_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "shared.citus", "register", "--coordinator=nowhere",
         "--worker=127.0.0.1:1"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == "error: 'nowhere' is not HOST:PORT"
