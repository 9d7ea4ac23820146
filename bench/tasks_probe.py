"""Inside one strategy's Django (bench/background.py runs it): what enqueueing costs, how many
trivial tasks a worker runs per second, and how soon a tenant's statement past its limit
becomes a 503 while another tenant is served. Prints one JSON object.

    python -m bench.tasks_probe --enqueues 500 --tasks 500 --noisy 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enqueues", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--noisy", type=int, default=5)
    parser.add_argument("--limit-ms", type=int, default=200)
    parser.add_argument("--page-blocks", type=int, default=5)
    parser.add_argument("--page-requests", type=int, default=200)
    parser.add_argument("--server-runs", type=int, default=2000)
    args = parser.parse_args()
    django.setup()

    from django.db import connections
    from django.test import Client
    from django.test.utils import override_settings
    from django_tasks_db.models import DBTaskResult

    from bench.probe_tasks import trivial
    from shared.db import OWNER_ALIAS
    from shared.models import DEFAULT_STATEMENT_TIMEOUT_MS
    from shared.strategy import get_strategy
    from shared.tenancy import activate
    from shared.worker import work

    strategy = get_strategy()
    tenants = list(strategy.list_tenants())
    first, second = tenants[0], tenants[1]
    queue = DBTaskResult.objects.using(OWNER_ALIAS)
    queue.all().delete()

    # 1. Enqueueing, as a request does it: inside the tenant's open transaction (the cost
    # the request pays), and as a transaction of its own (BEGIN, the tenant, COMMIT too).
    inside, alone = [], []
    with activate(first):
        with strategy.task_atomic(first):
            trivial.enqueue()  # the tenant is set, the statement prepared: a warm request
            for _ in range(args.enqueues):
                started = time.perf_counter()
                trivial.enqueue()
                inside.append(time.perf_counter() - started)
        for _ in range(args.enqueues):
            started = time.perf_counter()
            with strategy.task_atomic(first):
                trivial.enqueue()
            alone.append(time.perf_counter() - started)
    queue.all().delete()

    # 2. The worker: trivial tasks of every tenant in turn, run in one thread.
    for number in range(args.tasks):
        with activate(tenants[number % len(tenants)]):
            trivial.enqueue()
    started = time.perf_counter()
    ran = work(worker_id="bench", batch=True)
    worker_seconds = time.perf_counter() - started
    failed = queue.filter(status="FAILED").count()
    queue.all().delete()

    # 3. A noisy tenant: a statement of ``first``'s sleeps past its limit while ``second``
    # is served from another thread.
    strategy.set_limits(first.slug, statement_timeout=args.limit_ms)
    to_503: list[float] = []
    codes: list[int] = []
    others: list[int] = []
    stop = threading.Event()

    def serve_second() -> None:
        client = Client(raise_request_exception=False)
        try:
            while not stop.is_set():
                host = f"{second.slug}.localhost"
                others.append(client.get("/subtasks/", headers={"host": host}).status_code)
        finally:
            connections.close_all()

    try:
        with override_settings(ROOT_URLCONF="bench.probe_urls"):
            thread = threading.Thread(target=serve_second)
            thread.start()
            try:
                client = Client(raise_request_exception=False)
                host = f"{first.slug}.localhost"
                for _ in range(args.noisy):
                    started = time.perf_counter()
                    response = client.get("/slow/?seconds=5", headers={"host": host})
                    to_503.append(time.perf_counter() - started)
                    codes.append(response.status_code)
            finally:
                stop.set()
                thread.join()
    finally:
        strategy.set_limits(first.slug, statement_timeout=DEFAULT_STATEMENT_TIMEOUT_MS)

    # 4. What the limits cost a page view, in this process: the same requests with
    # TENANCY_TENANT_LIMITS on and off, in alternating blocks (the setting is read per
    # transaction), so that both see the same machine; per-request medians.
    page: dict[str, list[float]] = {"on": [], "off": []}
    client = Client()
    hosts = [f"{t.slug}.localhost" for t in tenants]
    for block in range(2 * args.page_blocks):
        # on, off, off, on, on, off...: neither goes first more often than the other
        limits = "on" if block % 4 in (0, 3) else "off"
        with override_settings(TENANCY_TENANT_LIMITS=limits == "on"):
            for number in range(args.page_requests):
                started = time.perf_counter()
                response = client.get("/subtasks/", headers={"host": hosts[number % len(hosts)]})
                page[limits].append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code

    # 5. The same on the server alone: how long the statement that sets the tenant takes to
    # execute with and without the limits (EXPLAIN ANALYZE's execution time, alternating),
    # where the strategy has such a statement.
    server: dict[str, list[float]] = {"on": [], "off": []}
    from shared.db.per_transaction import PerTransactionSetting

    runtime = connections["default"]
    if isinstance(runtime, PerTransactionSetting):
        with activate(first):
            value = runtime.value_for_current_tenant()
            runtime.ensure_connection()
            raw = runtime.connection
            for number in range(2 * args.server_runs):
                limits = "on" if number % 4 in (0, 3) else "off"
                with override_settings(TENANCY_TENANT_LIMITS=limits == "on"):
                    checked = runtime.checked_setting(value)
                assert checked is not None  # a tenant is active
                sql, params = checked
                with raw.transaction():
                    plan = raw.execute(
                        "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) " + sql, params
                    ).fetchall()
                line = next(r[0] for r in plan if r[0].startswith("Execution Time"))
                server[limits].append(float(line.split()[2]))  # ms

    ms = 1000
    print(
        json.dumps(
            {
                "enqueue_in_transaction_ms": statistics.median(inside) * ms,
                "enqueue_in_transaction_p95_ms": sorted(inside)[int(len(inside) * 0.95)] * ms,
                "enqueue_own_transaction_ms": statistics.median(alone) * ms,
                "worker_tasks": ran,
                "worker_failed": failed,
                "worker_tasks_per_s": ran / worker_seconds,
                "noisy_limit_ms": args.limit_ms,
                "noisy_codes": codes,
                "noisy_to_503_s": to_503,
                "others_requests": len(others),
                "others_codes": sorted(set(others)),
                "page_ms_limits_on": statistics.median(page["on"]) * ms,
                "page_ms_limits_off": statistics.median(page["off"]) * ms,
                "setting_us_limits_on": statistics.median(server["on"]) * ms
                if server["on"]
                else None,
                "setting_us_limits_off": statistics.median(server["off"]) * ms
                if server["off"]
                else None,
            }
        )
    )


if __name__ == "__main__":
    main()
