"""Per-tenant health: whether each tenant can be served, whether its tables are at this code's
migrations, its limits, and the last error met. One tenant's trouble (a missing database or
schema, a pending migration) is reported on its line and never fails the whole report.

Two views of it: ``manage.py tenanthealth``, with the owner role, reads migration history and
the task queue; the bare host's ``/health/tenants`` (only with ``TENANCY_HEALTH_TOKEN`` set)
has the runtime role alone, so it checks that the page's own query runs (which fails when a
migration the code needs is missing) and reports the last error this process met.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from django.core.management.base import CommandError
from django.db import DatabaseError, ProgrammingError, connections, router
from django.db.migrations.executor import MigrationExecutor

from shared.db import OWNER_ALIAS
from shared.db.per_transaction import TenantGone
from shared.tenancy import activate

if TYPE_CHECKING:
    from shared.strategy import Strategy
    from shared.tenancy import TenantLike


@dataclass
class TenantHealth:
    slug: str
    reachable: bool = False
    # "current", "pending: <migrations>", or what kept them from being read.
    migrations: str = ""
    limits: dict[str, Any] = field(default_factory=dict)
    last_error: str = ""
    problem: str = ""  # why it cannot be served, when it cannot

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return printable(f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))


# The last error each tenant met in this process (the 503 page records it): for the web view,
# which cannot read what commands record.
_errors: dict[str, tuple[float, str]] = {}
_errors_lock = threading.Lock()


def record_error(slug: str, exc: BaseException) -> None:
    with _errors_lock:
        _errors[slug] = (time.time(), first_line(exc))


def last_error_here(slug: str) -> str:
    with _errors_lock:
        found = _errors.get(slug)
    if found is None:
        return ""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(found[0]))} {found[1]}"


def probe(strategy: Strategy, tenant: TenantLike) -> str:
    """Run the first row of the tenant's page, as a request would; '' when it worked, else
    what went wrong, in one line."""
    try:
        with activate(tenant), strategy.task_atomic(tenant):
            list(strategy.subtask_list()[:1])
    except TenantGone:
        return "it is gone: its account, schema or database no longer exists"
    except ProgrammingError as exc:
        return f"its tables do not match this code (a migration missing?): {first_line(exc)}"
    except (DatabaseError, CommandError, LookupError) as exc:
        return f"it cannot be reached: {first_line(exc)}"
    return ""


def pending_migrations(strategy: Strategy, slug: str) -> str:
    """Through the owner's connection, as ``migratetenants`` would see the tenant."""
    try:
        try:
            _, units = strategy.migration_units(only={slug})
        except CommandError:  # rls: one schema for every tenant
            _, units = strategy.migration_units()
        if not units:
            return "unknown: no migration unit"
        unit = units[0]
        with unit.context():
            executor = MigrationExecutor(connections[unit.alias])
            targets = [
                node
                for node in executor.loader.graph.leaf_nodes()
                if router.allow_migrate(unit.alias, node[0])
            ]
            plan = executor.migration_plan(targets)
    except (DatabaseError, psycopg.Error) as exc:  # its server, say: on its own line
        return f"unknown: {first_line(exc)}"
    if not plan:
        return "current"
    return "pending: " + ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan)


def last_task_error(tenant: TenantLike) -> str:
    from django_tasks_db.models import DBTaskResult

    failed = (
        DBTaskResult.objects.using(OWNER_ALIAS)
        .filter(
            status="FAILED",
            args_kwargs__tenant__slug=tenant.slug,
            args_kwargs__tenant__id=tenant.pk,
        )
        .order_by("-finished_at")
        .only("finished_at", "task_path", "exception_class_path", "traceback")
        .first()
    )
    if failed is None:
        return ""
    lines = [line for line in failed.traceback.strip().splitlines() if line.strip()]
    when = f"{failed.finished_at:%Y-%m-%dT%H:%M:%SZ}" if failed.finished_at else ""
    text = f"{when} task {failed.task_path.rsplit('.', 1)[-1]}: {lines[-1] if lines else ''}"
    return printable(text)


def printable(text: str) -> str:
    """``text`` with no control characters (a terminal would obey them), at most 500 long."""
    return "".join(c if c.isprintable() else "?" for c in text)[:500]


def report(
    strategy: Strategy, *, privileged: bool, slugs: list[str] | None = None
) -> list[TenantHealth]:
    """Every tenant's health (or those of ``slugs``), ordered by slug."""
    if slugs is not None:
        slugs = sorted(set(slugs))
    elif privileged:
        rows = list(strategy.tenant_model()._default_manager.using(OWNER_ALIAS).order_by("slug"))
        slugs = [str(row.slug) for row in rows]  # type: ignore[attr-defined]
    else:
        slugs = [t.slug for t in strategy.index_tenants()]
    found = []
    for slug in slugs:
        health = TenantHealth(slug)
        tenant = strategy.get_tenant(slug)
        if tenant is None:
            health.problem = "it is not ready to serve (being created, moved or dropped)"
        else:
            try:
                health.limits = strategy.limits(tenant, privileged=privileged)
            except (DatabaseError, psycopg.Error) as exc:  # its server, say: on its own line
                health.limits = {"unknown": first_line(exc)}
            health.problem = probe(strategy, tenant)
            health.reachable = not health.problem
        if privileged:
            health.migrations = pending_migrations(strategy, slug)
            recorded = strategy.recorded_error(slug)
            health.last_error = (tenant and last_task_error(tenant)) or recorded
        else:
            health.migrations = (
                "the page's query runs"
                if health.reachable
                else "not checked: the tenant cannot be served"
            )
            health.last_error = last_error_here(slug)
        found.append(health)
    return found
