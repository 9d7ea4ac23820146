"""Tasks the contract suite enqueues: each reports what it saw, so a test can tell which
tenant it ran in."""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import DatabaseError, connections, transaction
from django_tasks import task

from shared.strategy import get_strategy
from shared.tasks import cross_tenant
from shared.tenancy import get_current_tenant


def seen() -> dict[str, Any]:
    """The tenant active, and the subtask names a query of the tenant's model returns (or why
    it returned none)."""
    tenant = get_current_tenant()
    strategy = get_strategy()
    model = strategy.model("subtask")
    alias = strategy.task_alias(tenant)
    try:
        # In a savepoint: a refused query must not spoil the task's own transaction.
        with transaction.atomic(using=alias) if alias else contextlib.nullcontext():
            names = sorted(model._default_manager.values_list("name", flat=True))
        refused = ""
    except (DatabaseError, LookupError, Exception) as exc:
        names, refused = [], type(exc).__name__
    return {"tenant": tenant.slug if tenant else None, "names": names, "refused": refused}


@task()
def where_am_i() -> dict[str, Any]:
    return seen()


@task()
def fail_in_tenant() -> None:
    raise RuntimeError("this task fails on purpose")


@cross_tenant
@task()
def across_tenants() -> dict[str, Any]:
    return seen()


@task()
def rename_subtasks(name: str) -> int:
    """Renames every subtask the task can reach: a write that must stay in its tenant."""
    return get_strategy().model("subtask")._default_manager.update(name=name)


@task()
def rename_then_swallow_an_error(name: str) -> str:
    """Writes, then catches a database error: its transaction can only roll back."""
    model = get_strategy().model("subtask")
    model._default_manager.update(name=name)
    with contextlib.suppress(DatabaseError):
        model._default_manager.update(name="x" * 1000)  # longer than the column allows
    return "all done"


@task()
def rename_then_return_what_json_cannot(name: str) -> object:
    get_strategy().model("subtask")._default_manager.update(name=name)
    return {1, 2, 3}


@task()
def rename_then_swallow_a_raw_error(name: str) -> str:
    """Writes, then catches an error of raw SQL, which Django does not mark for rollback:
    PostgreSQL then turns the COMMIT into a ROLLBACK."""
    strategy = get_strategy()
    strategy.model("subtask")._default_manager.update(name=name)
    alias = strategy.task_alias(get_current_tenant())
    assert alias is not None
    with contextlib.suppress(DatabaseError), connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1 / 0")
    return "all done"


@task()
def rename_then_return_nan(name: str) -> float:
    get_strategy().model("subtask")._default_manager.update(name=name)
    return float("nan")
