"""Locust scenario for `make bench`: the subtask list of every tenant, first and deep pages,
with every response checked for the right tenant and the right number of rows.

Reads the tenants from the JSON file named by TENANCY_BENCH_TENANTS (``manage.py
listtenants --json``). At the end writes locust's own totals (requests, failures, requests/s,
percentiles) and what the checks found to TENANCY_BENCH_RESULT, if set. One wrong row makes
the run exit non-zero.
"""

from __future__ import annotations

import html
import json
import os
import random
import re
from urllib.parse import urlsplit

from locust import FastHttpUser, events, task

from shared.pages import ACCOUNT_CELL, PAGE_SIZE

ROW_NAME = re.compile(r"<tr><td>([^<]*)</td>")
TENANTS = json.loads(open(os.environ["TENANCY_BENCH_TENANTS"]).read())  # noqa: SIM115
NAMES = {t["slug"]: set(t.pop("subtask_names")) for t in TENANTS}
CHECKS = {"checked": 0, "wrong_tenant": 0, "wrong_rows": 0, "bad_status": 0}


def pick() -> tuple[dict, int]:
    """A tenant, and its first page half of the time, any of its pages otherwise."""
    tenant = random.choice(TENANTS)
    pages = max(1, -(-tenant["subtasks"] // PAGE_SIZE))
    return tenant, 1 if random.random() < 0.5 else random.randint(1, pages)


class Visitor(FastHttpUser):
    @task
    def subtask_page(self):
        tenant, page = pick()
        port = urlsplit(self.host).port
        path = "/subtasks/" if page == 1 else f"/subtasks/{page}/"
        with self.client.get(
            path,
            headers={"Host": f"{tenant['slug']}.localhost:{port}"},
            name="first page" if page == 1 else "deep page",
            catch_response=True,
        ) as response:
            problem = check(response, tenant, page)
            if problem:
                response.failure(problem)


def check(response, tenant: dict, page: int) -> str | None:
    CHECKS["checked"] += 1
    if response.status_code != 200:
        CHECKS["bad_status"] += 1
        return f"status {response.status_code}"
    text = response.text or ""
    cells = [html.unescape(c) for c in ACCOUNT_CELL.findall(text)]
    if set(cells) - {tenant["name"]}:
        CHECKS["wrong_tenant"] += 1
        return f"{tenant['slug']} was shown rows of {sorted(set(cells) - {tenant['name']})}"
    # The account cell can only name the active tenant where it is not read from the row
    # (a schema or a database per tenant): every subtask shown must also be one of its own.
    foreign = {html.unescape(n) for n in ROW_NAME.findall(text)} - NAMES[tenant["slug"]]
    if foreign:
        CHECKS["wrong_tenant"] += 1
        return f"{tenant['slug']} was shown subtasks it does not have: {sorted(foreign)[:3]}"
    expected = min(PAGE_SIZE, tenant["subtasks"] - (page - 1) * PAGE_SIZE)
    if len(cells) != expected:
        CHECKS["wrong_rows"] += 1
        return f"{tenant['slug']} page {page}: {len(cells)} rows, expected {expected}"
    return None


@events.quitting.add_listener
def _report(environment, **kwargs):
    # Fired once every user has stopped: the totals are final (the CSV files locust writes
    # are snapshots taken every second, and may miss the last requests).
    if path := os.environ.get("TENANCY_BENCH_RESULT"):
        total = environment.stats.total
        totals = {
            "requests": total.num_requests,
            "failures": total.num_failures,
            "rps": total.total_rps,
            **{
                f"p{round(q * 100)}_ms": total.get_response_time_percentile(q) or 0
                for q in (0.50, 0.95, 0.99)
            },
        }
        with open(path, "w") as out:
            json.dump({"totals": totals, "checks": CHECKS}, out)
    if CHECKS["wrong_tenant"] or CHECKS["wrong_rows"]:
        environment.process_exit_code = 3
