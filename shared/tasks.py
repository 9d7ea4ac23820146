"""Background tasks that keep their tenant: the Django Tasks API with django-tasks-db's queue.

A task enqueued while a tenant is active records that tenant (its slug and id) beside the
task's arguments, and the worker (shared.worker, ``manage.py runworker``) runs it inside
``activate()`` for that tenant and for nothing else. A task that works across tenants says so
with ``@cross_tenant``; any other task enqueued with no tenant active is refused, because it
would run with no tenant (rls and schemas: it sees nothing; multidb: it fails) or, worse, with
whichever tenant the enqueueing code meant but did not say.

Where the queue row is written, and when, is the strategy's (``Strategy.save_task``): rls and
schemas insert it in the same transaction as the request's own writes, so a request that
rolls back enqueues nothing; multidb's queue is in the catalogue database, so the row is
written once the tenant's transaction has committed.

The runtime role may insert into the queue and nothing more: it cannot read any task's
arguments or results, its own tenant's included (rls also checks, in the database, that the
tenant it records is the one its transaction is set to). The worker reads and updates the queue
through the privileged connection, and runs each task's own queries as the runtime role.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import sync_to_async
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend, TaskResult
from django_tasks_db.compat import TaskResultDoesNotExist, normalize_json, task_enqueued
from django_tasks_db.models import DBTaskResult

from shared.db import OWNER_ALIAS, require_owner
from shared.tenancy import get_current_tenant

if TYPE_CHECKING:
    from django_tasks_db.compat import Task

    from shared.tenancy import TenantLike

# Where a queue row records its tenant: beside "args" and "kwargs" in its JSON, which the
# backend reads by those two keys only. None: a cross-tenant task.
TENANT_KEY = "tenant"
_CROSS_TENANT = "_tenancy_cross_tenant"

T = TypeVar("T")


class NoTenantActive(Exception):
    """A task that runs in a tenant was enqueued with none active: nothing was enqueued."""


def cross_tenant(task: T) -> T:
    """Declare a task (apply above ``@task``) as working across tenants: it may be enqueued
    with no tenant active, and it runs with none, whatever was active when it was enqueued."""
    # Task is a frozen dataclass with slots: mark its function instead, which the worker
    # finds again by the task's import path.
    setattr(task.func, _CROSS_TENANT, True)  # type: ignore[attr-defined]
    return task


def is_cross_tenant(task: Task[Any, Any]) -> bool:
    return bool(getattr(task.func, _CROSS_TENANT, False))


def recorded_tenant(tenant: TenantLike | None) -> dict[str, Any] | None:
    return None if tenant is None else {"slug": tenant.slug, "id": tenant.pk}


class TenantDatabaseBackend(DatabaseBackend):
    """django-tasks-db's backend, with each row recording its tenant and written where the
    strategy says."""

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any, Any]:
        from shared.strategy import get_strategy

        self.validate_task(task)
        tenant = None if is_cross_tenant(task) else get_current_tenant()
        if tenant is None and not is_cross_tenant(task):
            raise NoTenantActive(
                f"{task.name} runs in a tenant and none is active: enqueue it inside "
                "shared.tenancy.activate(tenant), or declare it @cross_tenant"
            )
        row: DBTaskResult[Any, Any] = DBTaskResult(
            id=self._get_id(),
            args_kwargs={
                **normalize_json({"args": args, "kwargs": kwargs}),
                TENANT_KEY: recorded_tenant(tenant),
            },
            priority=task.priority,
            task_path=task.module_path,
            queue_name=task.queue_name,
            run_after=task.run_after,
            backend_name=self.alias,
            enqueued_at=timezone.now(),  # the insert sets it again; this is for the caller
        )
        get_strategy().save_task(row, tenant, lambda: self._enqueued(row))
        return row.task_result

    def _enqueued(self, row: DBTaskResult[Any, Any]) -> None:
        task_enqueued.send(type(self), task_result=row.task_result)

    async def aenqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any, Any]:
        # sync_to_async runs it with a copy of this context: the same tenant.
        result: TaskResult[Any, Any] = await sync_to_async(self.enqueue)(task, args, kwargs)
        return result

    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        # The runtime role cannot read the queue: results are for the privileged path.
        require_owner()
        try:
            return DBTaskResult.objects.using(OWNER_ALIAS).get(id=result_id).task_result
        except (DBTaskResult.DoesNotExist, ValueError) as exc:
            raise TaskResultDoesNotExist(result_id) from exc

    async def aget_result(self, result_id: str) -> TaskResult[Any, Any]:
        result: TaskResult[Any, Any] = await sync_to_async(self.get_result)(result_id)
        return result
