"""Migrating every tenant: the units a strategy migrates, and running them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.db import connections, router
from django.db.migrations.executor import MigrationExecutor


@dataclass
class Unit:
    """One thing to migrate: a tenant's database or schema, a template, or the shared schema."""

    name: str
    alias: str
    record: Callable[[Result], None] = lambda result: None
    # What selects the unit on that connection (django-pgschemas: the schema).
    context: Callable[[], AbstractContextManager[object]] = nullcontext
    # Run after the migrations, inside the context, also when none were pending: rights that
    # the unit's tables need (schemas grants them schema by schema).
    finish: Callable[[], None] = lambda: None


@dataclass
class Result:
    name: str
    status: str  # "current", "migrated" or "failed"
    migration: str = ""
    applied: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def leaf_label(executor: MigrationExecutor) -> str:
    """The newest applied migration of each app that the router lets migrate here (Django also
    records the others as applied, without running them)."""
    alias = executor.connection.alias
    applied = executor.loader.applied_migrations
    return ", ".join(
        f"{app}.{name}"
        for app, name in sorted(executor.loader.graph.leaf_nodes())
        if (app, name) in applied and router.allow_migrate(alias, app)
    )


def migrate_unit(unit: Unit) -> Result:
    started = time.monotonic()
    try:
        with unit.context():
            result = apply_pending(unit)
            unit.finish()
    except Exception as exc:  # every failure is reported; none hides another
        result = Result(unit.name, "failed", error=str(exc).strip().splitlines()[0])
    finally:
        connections[unit.alias].close()
    result.seconds = round(time.monotonic() - started, 3)
    unit.record(result)
    return result


def apply_pending(unit: Unit) -> Result:
    """Run the unit's pending migrations on its connection as it is (inside a transaction
    that is open there, if one is), where its context is already entered."""
    executor = MigrationExecutor(connections[unit.alias])
    targets = executor.loader.graph.leaf_nodes()
    plan = executor.migration_plan(targets)
    if not plan:
        return Result(unit.name, "current", leaf_label(executor))
    executor.migrate(targets, plan=plan)
    executor.loader.build_graph()
    return Result(
        unit.name,
        "migrated",
        leaf_label(executor),
        applied=[f"{m.app_label}.{m.name}" for m, _ in plan],
    )


def run(units: list[Unit], parallel: int, on_result: Callable[[Result], None]) -> list[Result]:
    results = []

    def work(unit: Unit) -> Result:
        try:
            return migrate_unit(unit)
        finally:
            connections.close_all()  # this thread's connections, not the caller's

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for future in as_completed(pool.submit(work, unit) for unit in units):
            results.append(future.result())
            on_result(results[-1])
    return sorted(results, key=lambda r: r.name)


def write_report(path: Path, strategy: str, parallel: int, results: list[Result]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "strategy": strategy,
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "parallel": parallel,
                "summary": {
                    s: sum(r.status == s for r in results)
                    for s in ("current", "migrated", "failed")
                },
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
        + "\n"
    )
