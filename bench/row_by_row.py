"""Run inside a strategy's Django by bench/load.py: the approach bulk loading replaces, one
ORM save per row as the runtime role, for ``--accounts`` generated tenants; printed as JSON
``[rows, seconds]``.

    DJANGO_SETTINGS_MODULE=rls.settings python -m bench.row_by_row --accounts 20
"""

from __future__ import annotations

import argparse
import json
import time

import django


def load(accounts: int) -> tuple[int, float]:
    from django.db import router, transaction

    from shared.strategy import get_strategy
    from shared.tenancy import activate
    from shared.testdata import generate_tenant

    strategy = get_strategy()
    user, project, task, subtask = map(strategy.model, ("user", "project", "task", "subtask"))
    rows = 0
    started = time.perf_counter()
    for number in range(1, accounts + 1):
        data = generate_tenant(100000 + number)
        tenant = strategy.create_tenant(data.slug, data.name)
        with activate(tenant), transaction.atomic(using=router.db_for_write(subtask)):
            for each_user in data.users:
                user(**each_user._asdict()).save()
            projects = [
                project._default_manager.create(name=p.name, details=p.details)
                for p in data.projects
            ]
            tasks = [
                task._default_manager.create(
                    project=projects[t.project], name=t.name, is_complete=t.is_complete,
                    details=t.details,
                )
                for t in data.tasks
            ]  # fmt: skip
            for each in data.subtasks:
                subtask._default_manager.create(
                    task=tasks[each.task], name=each.name, is_complete=each.is_complete,
                    details=each.details,
                )  # fmt: skip
        rows += sum(data.counts().values())
    return rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, required=True)
    args = parser.parse_args()
    django.setup()
    print(json.dumps(load(args.accounts)))


if __name__ == "__main__":
    main()
