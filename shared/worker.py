"""The worker: claims queued tasks through the privileged connection and runs each one inside
``activate()`` for the tenant it recorded (shared.tasks), as the runtime role, in a transaction
of its own. Nothing carries over from one task to the next: the tenant is set for the task and
reset in ``finally``, whatever the task did or raised.

A task whose tenant is gone (dropped, or dropped and made again under the same slug, which is
another tenant) fails with that reason recorded and runs nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connections, transaction
from django.utils import timezone
from django_tasks_db.compat import TaskContext, task_finished, task_started
from django_tasks_db.models import DBTaskResult, get_date_max
from psycopg.pq import TransactionStatus

from shared.db import OWNER_ALIAS
from shared.strategy import get_strategy
from shared.tasks import TENANT_KEY, is_cross_tenant
from shared.tenancy import TenantLike, activate

logger = logging.getLogger(__name__)
# How often a worker looks for tasks another worker abandoned.
SWEEP_SECONDS = 60.0


class TenantGone(Exception):
    """The task's tenant no longer exists: the task did nothing."""


class RolledBack(Exception):
    """The task returned, but its transaction was rolled back: none of its writes stayed."""


class NoTenantRecorded(Exception):
    """A task that runs in a tenant has none recorded (enqueued around shared.tasks): it did
    nothing."""


# One statement claims the next ready task: the oldest of the highest priority that is due,
# skipping rows another worker is claiming (the queue's ordering and its partial index).
CLAIM = f"""
    UPDATE {DBTaskResult._meta.db_table} SET status = 'RUNNING', started_at = now(),
        worker_ids = worker_ids || jsonb_build_array(%s::text)
    WHERE id = (
        SELECT id FROM {DBTaskResult._meta.db_table}
        WHERE status = 'READY' AND backend_name = %s AND (queue_name = ANY(%s) OR %s)
          AND (run_after = %s OR run_after <= now())
        ORDER BY priority DESC, run_after, enqueued_at
        FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING *
"""


def claim(worker_id: str, backend: str, queues: list[str] | None) -> DBTaskResult[Any, Any] | None:
    """The next ready task, marked as running by ``worker_id``; None when there is none. Other
    workers skip a row one of them is claiming."""
    params = [worker_id, backend, queues or [], not queues, get_date_max()]
    claimed = list(DBTaskResult.objects.using(OWNER_ALIAS).raw(CLAIM, params))
    return claimed[0] if claimed else None


def tenant_of(row: DBTaskResult[Any, Any]) -> TenantLike | None:
    """The tenant ``row`` runs in (None for a cross-tenant task), as it exists now."""
    recorded = row.args_kwargs.get(TENANT_KEY)
    if is_cross_tenant(row.task):
        return None
    if not isinstance(recorded, dict) or not {"slug", "id"} <= recorded.keys():
        raise NoTenantRecorded(f"{row.task_path} runs in a tenant and none was recorded")
    slug, pk = recorded["slug"], recorded["id"]
    tenant = get_strategy().get_tenant(str(slug))
    if tenant is None:
        raise TenantGone(f"tenant {slug} was dropped after this task was enqueued; nothing ran")
    if tenant.pk != pk:
        raise TenantGone(
            f"tenant {slug} was dropped and made again after this task was enqueued (id {pk}, "
            f"now {tenant.pk}); the task was the old tenant's, and nothing ran"
        )
    return tenant


def run(row: DBTaskResult[Any, Any]) -> None:
    """Run a claimed task in its tenant and record how it ended."""
    backend: Any = None
    try:
        task = row.task
        backend = type(task.get_backend())
        tenant = tenant_of(row)
        result = row.task_result  # built once: it imports the task again
        task_started.send(sender=backend, task_result=result)
        args, kwargs = row.args_kwargs["args"], row.args_kwargs["kwargs"]
        strategy = get_strategy()
        with activate(tenant), strategy.task_atomic(tenant):
            if task.takes_context:
                value = task.call(TaskContext(task_result=result), *args, **kwargs)
            else:
                value = task.call(*args, **kwargs)
            # Both checked before the transaction commits, so that the outcome recorded is
            # what happened to the task's writes: a task that caught a database error cannot
            # commit (Django or PostgreSQL then rolls back quietly), and a value the queue
            # cannot store would otherwise fail after the commit.
            refuse_if_rolled_back(strategy.task_alias(tenant))
            check_storable(value)
        finish(row, "SUCCESSFUL", return_value=value)
    except BaseException as exc:
        finish(row, "FAILED", error=exc)
        if not isinstance(exc, Exception):
            raise  # Ctrl-C or SystemExit: recorded, and the worker stops
        logger.warning("Task %s (%s) failed: %s", row.id, row.task_path, exc)
    if backend is not None and task_finished.has_listeners(backend):
        task_finished.send(sender=backend, task_result=row.task_result)


def refuse_if_rolled_back(alias: str | None) -> None:
    if alias is None:
        return
    connection = connections[alias]
    aborted = (
        connection.connection is not None
        and connection.connection.info.transaction_status == TransactionStatus.INERROR
    )
    if aborted or transaction.get_rollback(using=alias):
        raise RolledBack("the task caught a database error: its transaction was rolled back")


def check_storable(value: Any) -> None:
    """Raise unless the queue's JSON column can store ``value`` (PostgreSQL's jsonb has no NaN
    or infinity, and its text no NUL)."""
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    text.encode()  # a lone surrogate cannot be stored either
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            raise ValueError("a result with a NUL character cannot be stored")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def finish(
    row: DBTaskResult[Any, Any],
    status: str,
    *,
    return_value: Any = None,
    error: BaseException | None = None,
) -> bool:
    """Record how a task this worker claimed ended, unless it is no longer its own (recorded
    abandoned meanwhile: fail_abandoned); whether it was recorded."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": status,
        "finished_at": now,
        "return_value": return_value,
        "exception_class_path": "",
        "traceback": "",
    }
    if error is not None:
        fields["exception_class_path"] = f"{type(error).__module__}.{type(error).__qualname__}"
        fields["traceback"] = "".join(traceback.format_exception(error))
    recorded = (
        DBTaskResult.objects.using(OWNER_ALIAS)
        .filter(pk=row.pk, status="RUNNING", worker_ids=row.worker_ids)
        .update(**fields)
    )
    for name, value in fields.items():
        setattr(row, name, value)
    if not recorded:
        logger.warning("Task %s ended %s, but was no longer this worker's", row.id, status)
    return bool(recorded)


def fail_abandoned(backend: str, older_than: timedelta) -> int:
    """Record as failed the tasks still running after ``older_than``: their worker stopped
    without finishing them (killed, or its machine gone). They are not run again: a task may
    have done part of its work outside its transaction (an e-mail sent), so running it twice
    is the caller's decision. The number recorded."""
    abandoned = DBTaskResult.objects.using(OWNER_ALIAS).filter(
        backend_name=backend,
        status="RUNNING",
        started_at__lt=timezone.now() - older_than,
    )
    count = 0
    for row in abandoned:
        # Only if still running as it was read: a worker that finished it meanwhile wins.
        error = Abandoned(f"still running after {older_than}: its worker stopped")
        count += finish(row, "FAILED", error=error)
    return count


class Abandoned(Exception):
    """The task's worker stopped while running it (see fail_abandoned)."""


def between_tasks() -> None:
    """What Django does to connections at the end of a request, less the closing: this one
    thread reuses its connections (the queue's, the tenants') from one task to the next, since
    reopening them, or taking them from a pool, was most of what a trivial task cost. Nothing
    of a tenant lives in a session (rls and schemas set it per transaction; multidb's
    connections each belong to one tenant), so a connection carries no tenant over. One an
    error broke, or left outside autocommit, is closed."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"] or (
            connection.errors_occurred and not connection.is_usable()
        ):
            connection.close()


def work(
    *,
    worker_id: str,
    backend: str = "default",
    queues: list[str] | None = None,
    interval: float = 1.0,
    batch: bool = False,
    max_tasks: int | None = None,
    stop: threading.Event | None = None,
    abandoned_after: timedelta = timedelta(hours=1),
    report: Callable[[DBTaskResult[Any, Any]], None] = lambda row: None,
) -> int:
    """Run tasks until ``stop`` is set (or, with ``batch``, until none is ready, or
    ``max_tasks`` have run); the number run."""
    stop = stop or threading.Event()
    ran = 0
    swept = 0.0  # when abandoned tasks were last looked for
    while not stop.is_set():
        between_tasks()
        if time.monotonic() - swept > SWEEP_SECONDS:
            fail_abandoned(backend, abandoned_after)
            swept = time.monotonic()
        row = claim(worker_id, backend, queues)
        if row is None:
            if batch:
                break
            close_old_connections()  # idle: nothing kept open while waiting
            stop.wait(interval)
            continue
        run(row)
        report(row)
        ran += 1
        if max_tasks is not None and ran >= max_tasks:
            break
    close_old_connections()
    return ran
