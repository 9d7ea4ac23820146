"""Inside one strategy's Django (bench/compare.py runs it, on one server and on Citus): where a
page view's time goes. Prints one JSON object of medians over the first ``--tenants`` tenants:

- ``request_ms``: the whole page view in-process (Django's test client: no HTTP, no gunicorn);
- ``planning_ms`` and ``execution_ms``: the page statement's, as the server that receives it
  reports them (EXPLAIN ANALYZE as the runtime role, inside the tenant's transaction);
- ``worker_ms``: on Citus, the same statement's execution on the worker that holds the tenant,
  as that worker reports it; on one server, the execution itself;
- ``plan``: the page statement's plan for the first tenant (the slides show it).

    python -m bench.hop_probe --tenants 20 --views 25
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import django


def remote_execution(plan: Any) -> float | None:
    """The Execution Time of the first task's remote plan in a Citus EXPLAIN (FORMAT JSON)."""
    if isinstance(plan, dict):
        if "Remote Plan" in plan:
            remote = plan["Remote Plan"]
            while isinstance(remote, list):  # a list per task, of the worker's EXPLAIN output
                remote = remote[0]
            return float(remote.get("Execution Time", 0.0))
        values: list[Any] = list(plan.values())
    elif isinstance(plan, list):
        values = plan
    else:
        return None
    for value in values:
        if (found := remote_execution(value)) is not None:
            return found
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--views", type=int, default=25)
    args = parser.parse_args()
    django.setup()

    from django.db import connections, transaction
    from django.test import Client

    from shared.db import RUNTIME_ALIAS
    from shared.strategy import get_strategy
    from shared.tenancy import activate

    strategy = get_strategy()
    slugs = sorted(
        (t.slug for t in strategy.list_tenants()), key=lambda s: int(s.rsplit("-", 1)[-1])
    )[: args.tenants]
    client = Client()
    request, planning, execution, worker = [], [], [], []
    plan = ""
    for slug in slugs:
        host = f"{slug}.localhost"
        for _ in range(3):  # warm: connections, plans, caches
            client.get("/subtasks/", headers={"host": host})
        for _ in range(args.views):
            started = time.perf_counter()
            response = client.get("/subtasks/", headers={"host": host})
            request.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (slug, response.status_code)
        tenant = strategy.find_tenant(slug)
        with activate(tenant), transaction.atomic(using=RUNTIME_ALIAS):
            runtime = connections[RUNTIME_ALIAS]
            runtime.ensure_connection()
            # Before the tenant is set (straight to psycopg, past the backend's wrapper): on
            # Citus, EXPLAIN ANALYZE refuses to follow the coordinator's local read of the
            # account (a reference table); the page statement itself runs on a worker either
            # way. Elsewhere this sets a placeholder nobody reads.
            runtime.connection.execute("SET LOCAL citus.enable_local_execution TO off")
            query = strategy.subtask_list()[:10]
            sql, params = query.query.sql_with_params()
            with connections[RUNTIME_ALIAS].cursor() as cursor:
                if not plan:  # the first tenant's, for the slides
                    cursor.execute(f"EXPLAIN (COSTS OFF) {sql}", params)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                for _ in range(3):
                    cursor.execute(f"EXPLAIN (ANALYZE, SUMMARY, FORMAT JSON) {sql}", params)
                    document = cursor.fetchone()[0]
                    top = document[0] if isinstance(document, list) else document
                    planning.append(float(top["Planning Time"]))
                    execution.append(float(top["Execution Time"]))
                    remote = remote_execution(top["Plan"])
                    worker.append(remote if remote is not None else execution[-1])
    print(
        json.dumps(
            {
                "tenants": len(slugs),
                "views": len(request),
                "request_ms": round(statistics.median(request), 3),
                "planning_ms": round(statistics.median(planning), 3),
                "execution_ms": round(statistics.median(execution), 3),
                "worker_ms": round(statistics.median(worker), 3),
                "plan": plan,
            }
        )
    )


if __name__ == "__main__":
    main()
