"""Faults: PostgreSQL restarted under load, and createtestdata killed halfway."""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from bench.server import get, gunicorn
from shared.cluster import Cluster, url
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.env import ROOT
from shared.pages import ACCOUNT_CELL
from shared.testdata import Volumes, generate_tenant
from tests.contract.test_createtestdata import numbered_tenants  # noqa: F401 (a fixture)


def app_env() -> dict[str, str]:
    """The environment for a server or command of this strategy, on the test database."""

    def of(alias: str) -> str:
        conf = settings.DATABASES[alias]
        return url(conf["USER"], conf["PASSWORD"], conf["HOST"], int(conf["PORT"]), conf["NAME"])

    return {
        **os.environ,
        "RUNTIME_DATABASE_URL": of(RUNTIME_ALIAS),
        "OWNER_DATABASE_URL": of(OWNER_ALIAS),
        "TENANCY_ENV_FILE": os.devnull,
        "PYTHONPATH": str(ROOT),
    }


def forget_connections() -> None:
    """This process's connections died with the server: drop them and their pools."""
    for connection in connections.all(initialized_only=True):
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()


def started_at(cluster):
    import psycopg

    with psycopg.connect(cluster.admin_url()) as admin:
        return admin.execute("SELECT pg_postmaster_start_time()").fetchone()[0]


# How long after PostgreSQL is back a request may still fail: pools and caches notice a dead
# connection when they next use it.
RECOVERY_SECONDS = 5


def test_the_app_recovers_by_itself_from_a_postgresql_restart(
    live_db, strategy, tenant_a, tenant_b, tmp_path
):
    where = os.environ.get("TENANCY_TEST_CLUSTER")
    if not where:
        pytest.skip(
            "NOT RUN: restarting PostgreSQL needs the throwaway cluster of `python -m tests.run`, "
            "not a server named by DATABASE_URL"
        )
    base, _, port = where.rpartition(":")
    cluster = Cluster(Path(base), int(port))
    results: list[tuple[float, str, int, set[str]]] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        turn = worker
        while not stop.is_set():
            me = (tenant_a, tenant_b)[turn % 2]
            turn += 1
            try:
                status, body = get(server_port, me.host, "/subtasks/")
            except OSError:
                status, body = 0, ""
            shown = {html.unescape(a) for a in ACCOUNT_CELL.findall(body)}
            results.append((time.monotonic(), me.tenant.name, status, shown))

    log = tmp_path / "gunicorn.log"
    before = started_at(cluster)
    with gunicorn(f"{strategy.name}.wsgi", app_env(), workers=2, log=log) as (server_port, _):
        threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(2)
            down = time.monotonic()
            cluster.stop()
            time.sleep(1)
            cluster.start()
            back = time.monotonic()
            # Recovered: the last 40 requests all answered 200, or give up after 60 s. Then one
            # more second, so that requests still in flight when it looked recovered finish.
            while time.monotonic() - back < 60:
                time.sleep(0.5)
                recent = results[-40:]
                if recent[0][0] > back and all(r[2] == 200 for r in recent):
                    break
            time.sleep(1)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            forget_connections()

    failed = [r for r in results if r[2] != 200]
    wrong = [r for r in results if r[2] == 200 and r[3] != {r[1]}]
    last = f", the last {failed[-1][0] - back:+.1f} s after the restart" if failed else ""
    print(
        f"\nrestart under load: {len(results)} requests, {len(failed)} failed "
        f"({sorted({r[2] for r in failed})}){last}, {len(wrong)} with wrong rows"
    )
    assert not wrong
    assert started_at(cluster) > before, "the server was not restarted: the test proved nothing"
    # A clear "try again" (503), never a 500 or a dropped socket. Behind PgBouncer clients may
    # not notice at all: it holds them until the server is back.
    errors = [line for line in log.read_text().splitlines() if re.match(r"^\w[\w.]*Error", line)]
    assert {r[2] for r in failed} <= {503}, errors[-20:]
    # Failures only while the server was away and just after: how many there are is the request
    # rate of a fast 503 (hundreds a second in multidb, which fails at connect), not recovery.
    late = [r for r in failed if not down <= r[0] <= back + RECOVERY_SECONDS]
    assert not late, f"{len(late)} failed outside the restart, at +{late[0][0] - back:.1f} s"
    # Recovered: at least 40 answers in a row, all after the restart, since the last failure.
    last_failure = max((i for i, r in enumerate(results) if r[2] != 200), default=-1)
    since = [r for r in results[last_failure + 1 :] if r[0] > back]
    assert len(since) >= 40, f"did not recover: {len(since)} answers after the last failure"


KILL_VOLUMES = Volumes(users=(1, 2), projects=(10, 10), tasks=(10, 10), subtasks=(10, 10))
KILL_OPTIONS = [
    f"--{bound}-{name}={value}"
    for name, (low, high) in vars(KILL_VOLUMES).items()
    for bound, value in (("min", low), ("max", high))
]


def numbered(strategy) -> set[str]:
    return {t.slug for t in strategy.list_tenants() if re.fullmatch(r"tenant-\d{1,2}", t.slug)}


def test_createtestdata_killed_halfway_leaves_whole_tenants(
    live_db,
    strategy,
    numbered_tenants,  # noqa: F811
):
    command = [sys.executable, f"{strategy.name}/manage.py", "createtestdata", "--accounts", "20"]
    process = subprocess.Popen(
        [*command, *KILL_OPTIONS],
        cwd=ROOT,
        env=app_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while process.poll() is None and len(numbered(strategy)) < 3:
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "it finished before it could be killed"
    forget_connections()  # the strategy's caches may hold what the dead process was making
    existing = numbered(strategy)
    assert 3 <= len(existing) < 20, existing

    def whole(slug: str) -> bool:
        expected = generate_tenant(int(slug.removeprefix("tenant-")), volumes=KILL_VOLUMES)
        return strategy.row_counts([slug]) == expected.counts()

    assert [s for s in existing if not whole(s)] == []

    result = subprocess.run(
        [*command, *KILL_OPTIONS, "--skip-existing"],
        cwd=ROOT,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert numbered(strategy) == {f"tenant-{n}" for n in range(1, 21)}
    assert [n for n in range(1, 21) if not whole(f"tenant-{n}")] == []


def test_createtestdata_interrupted_names_every_whole_tenant(
    live_db,
    strategy,
    numbered_tenants,  # noqa: F811
):
    # Ctrl-C reaches the command and its loader processes alike (one process group).
    process = createtestdata_loading(strategy)
    try:
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, f"it finished before it could be interrupted: {stderr}"
    assert_names_every_whole_tenant(strategy, stderr, "CommandError: interrupted: ")


def test_createtestdata_with_a_loader_killed_names_every_whole_tenant(
    live_db,
    strategy,
    numbered_tenants,  # noqa: F811
):
    process = createtestdata_loading(strategy)
    try:
        loaders = [
            int(pid)
            for pid in os.listdir("/proc")
            if pid.isdigit() and _parent_and_command(pid)[0] == process.pid
            if "spawn_main" in _parent_and_command(pid)[1]
        ]
        assert len(loaders) == 2, loaders
        os.kill(loaders[0], signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 1, f"it finished before a loader could be killed: {stderr}"
    assert_names_every_whole_tenant(
        strategy, stderr, "CommandError: a loader process ended without a word; "
    )


def createtestdata(strategy) -> list[str]:
    return [
        sys.executable,
        f"{strategy.name}/manage.py",
        "createtestdata",
        "--accounts",
        "99",
        *KILL_OPTIONS,
    ]


def createtestdata_loading(strategy) -> subprocess.Popen[str]:
    """createtestdata with two loaders, in a process group of its own, once 3 accounts exist."""
    process = subprocess.Popen(
        [*createtestdata(strategy), "--jobs", "2"],
        cwd=ROOT,
        env=app_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        while process.poll() is None and len(numbered(strategy)) < 3:
            time.sleep(0.01)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return process


def _parent_and_command(pid: str) -> tuple[int, str]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:  # it ended meanwhile
        return 0, ""
    return int(stat.rpartition(")")[2].split()[1]), command


def assert_names_every_whole_tenant(strategy, stderr: str, reason: str) -> None:
    forget_connections()
    existing = numbered(strategy)
    assert 3 <= len(existing) < 99, existing
    # One line after the progress lines, naming exactly the accounts that exist, each whole.
    *progress, line = stderr.rstrip().splitlines()
    assert all(p.startswith("  ") and "accounts" in p for p in progress), stderr
    assert line.startswith(reason), line
    named = re.search(r"(\d+) of 99 accounts are complete \((.*)\)", line)
    assert named, line
    numbers: set[int] = set()
    for span in named[2].split(", "):
        first, _, last = span.partition("..")
        numbers |= set(range(int(first[7:]), int((last or first)[7:]) + 1))
    assert {f"tenant-{n}" for n in numbers} == existing
    assert int(named[1]) == len(existing)
    for slug in existing:
        expected = generate_tenant(int(slug.removeprefix("tenant-")), volumes=KILL_VOLUMES)
        assert strategy.row_counts([slug]) == expected.counts(), slug
