"""Background tasks keep their tenant (shared.tasks, shared.worker): the attacker's view.

B tries to make a task run in A, to read A's queued tasks, to enqueue with no tenant, and to
leave its tenant on the worker for the next task; a request that fails takes its tasks with
it; a task whose tenant was dropped fails with the reason and touches nothing.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid

import pytest
from django.db import DatabaseError, ProgrammingError, connections, transaction
from django.http import Http404
from django_tasks_db.models import DBTaskResult

from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.env import ROOT
from shared.tasks import NoTenantActive
from shared.tenancy import activate, get_current_tenant
from shared.testdata import Volumes, generate_tenant
from shared.worker import work
from tests.contract import tasks

QUEUE = DBTaskResult._meta.db_table


@pytest.fixture
def queue(live_db):
    """An empty queue, and the worker that runs it here, on this thread, until none is ready."""
    DBTaskResult.objects.using(OWNER_ALIAS).all().delete()
    yield lambda: work(worker_id="contract", batch=True)
    DBTaskResult.objects.using(OWNER_ALIAS).all().delete()


def outcome(result_id: str) -> DBTaskResult:
    return DBTaskResult.objects.using(OWNER_ALIAS).get(id=result_id)


def queued() -> int:
    return DBTaskResult.objects.using(OWNER_ALIAS).count()


@pytest.mark.case("task-runs-in-enqueuing-tenant")
def test_a_task_runs_in_the_tenant_that_enqueued_it(queue, strategy, tenant_a, tenant_b):
    with activate(tenant_a.tenant):
        for_a = tasks.where_am_i.enqueue()
    with activate(tenant_b.tenant):
        for_b = tasks.where_am_i.enqueue()
    assert queue() == 2
    a, b = outcome(for_a.id), outcome(for_b.id)
    assert (a.status, b.status) == ("SUCCESSFUL", "SUCCESSFUL"), (a.traceback, b.traceback)
    assert a.return_value["tenant"] == tenant_a.slug
    assert set(a.return_value["names"]) == tenant_a.subtask_names
    assert b.return_value["tenant"] == tenant_b.slug
    assert set(b.return_value["names"]) == tenant_b.subtask_names
    assert get_current_tenant() is None


@pytest.mark.case("task-runs-in-enqueuing-tenant")
def test_the_apps_task_changes_only_its_own_tenant(queue, strategy, tenant_a, tenant_b):
    project = strategy.model("project")

    def progress(fixture):
        with activate(fixture.tenant):
            return dict(project._default_manager.values_list("name", "progress"))

    def reset(fixture):
        with activate(fixture.tenant):
            project._default_manager.update(progress=None)

    from shared.progress import recompute_progress

    for each in (tenant_a, tenant_b):
        reset(each)
    try:
        with activate(tenant_b.tenant):
            result = recompute_progress.enqueue()
        queue()
        assert outcome(result.id).status == "SUCCESSFUL"
        assert set(progress(tenant_a).values()) == {None}
        after = progress(tenant_b)
        assert after and None not in after.values()
        assert all(0 <= value <= 100 for value in after.values())
    finally:
        for each in (tenant_a, tenant_b):
            reset(each)


@pytest.mark.case("task-runs-in-enqueuing-tenant")
def test_a_write_task_of_b_leaves_a_alone(queue, strategy, tenant_a, tenant_b):
    subtask = strategy.model("subtask")
    with activate(tenant_b.tenant):
        before_b = dict(subtask._default_manager.values_list("pk", "name"))
        result = tasks.rename_subtasks.enqueue("renamed by B's task")
    try:
        queue()
        assert outcome(result.id).return_value == len(before_b)
        with activate(tenant_a.tenant):
            assert set(subtask._default_manager.values_list("name", flat=True)) == (
                tenant_a.subtask_names
            )
    finally:
        with activate(tenant_b.tenant), strategy.task_atomic(tenant_b.tenant):
            for pk, name in before_b.items():
                subtask._default_manager.filter(pk=pk).update(name=name)


@pytest.mark.case("task-without-tenant-refused")
def test_a_tenant_task_with_no_tenant_active_is_refused(queue):
    with pytest.raises(NoTenantActive, match="where_am_i runs in a tenant and none is active"):
        tasks.where_am_i.enqueue()
    with pytest.raises(NoTenantActive):
        asyncio.run(tasks.where_am_i.aenqueue())
    with activate(None), pytest.raises(NoTenantActive):
        tasks.where_am_i.enqueue()
    assert queued() == 0
    # Declared cross-tenant, it may be enqueued with none, and runs with none.
    result = tasks.across_tenants.enqueue()
    queue()
    assert outcome(result.id).return_value["tenant"] is None


@pytest.mark.case("task-without-tenant-refused")
def test_an_async_enqueue_keeps_the_tenant(queue, tenant_a):
    async def enqueue():
        with activate(tenant_a.tenant):
            return await tasks.where_am_i.aenqueue()

    result = asyncio.run(enqueue())
    queue()
    assert outcome(result.id).return_value["tenant"] == tenant_a.slug


@pytest.mark.case("task-without-tenant-refused")
def test_the_runtime_role_cannot_read_or_change_the_queue(queue, tenant_a, tenant_b):
    """B cannot read A's queued tasks (their arguments), count them, or change them."""
    with activate(tenant_a.tenant):
        tasks.where_am_i.enqueue()
    runtime = connections[RUNTIME_ALIAS]
    for statement in (
        f"SELECT args_kwargs FROM {QUEUE}",
        f"SELECT count(*) FROM {QUEUE}",
        f"UPDATE {QUEUE} SET priority = 0",
        f"DELETE FROM {QUEUE}",
    ):
        with (
            activate(tenant_b.tenant),
            pytest.raises(ProgrammingError, match="permission denied"),
            transaction.atomic(using=RUNTIME_ALIAS),
            runtime.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert queued() == 1


def _insert(recorded: object, status: str = "READY", traceback: str = "") -> None:
    """As the runtime role, a queue row written by hand, recording ``recorded`` as its tenant."""
    args_kwargs = {"args": ["renamed by hand"], "kwargs": {}, "tenant": recorded}
    with connections[RUNTIME_ALIAS].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {QUEUE} (id, status, enqueued_at, args_kwargs, priority, task_path, "
            "worker_ids, queue_name, backend_name, run_after, exception_class_path, traceback) "
            "VALUES (%s, %s, now(), %s, 0, %s, '[]', 'default', 'default', "
            "'9999-01-01', '', %s)",
            [
                str(uuid.uuid4()),
                status,
                json.dumps(args_kwargs),
                "tests.contract.tasks.rename_subtasks",
                traceback,
            ],
        )


@pytest.mark.case("task-without-tenant-refused")
def test_b_cannot_enqueue_a_task_that_names_a(queue, strategy, tenant_a, tenant_b):
    a, b = tenant_a.tenant, tenant_b.tenant
    forged = [
        {"slug": a.slug, "id": a.pk},  # A
        {"slug": b.slug, "id": a.pk},  # B's slug with A's id
        {"slug": a.slug, "id": b.pk},  # A's slug with B's id (the worker would run it as A)
        {"slug": b.slug, "id": str(b.pk)},  # an id of another JSON type
        {"slug": b.slug},
        {"id": b.pk},
    ]
    # No strategy takes a task that looks as if it had run already: a planted failure.
    with (
        activate(b),
        pytest.raises(DatabaseError, match="row-level security"),
        transaction.atomic(using=RUNTIME_ALIAS),
    ):
        _insert({"slug": b.slug, "id": b.pk}, status="FAILED", traceback="planted")
    if strategy.name == "multidb":
        # The queue is in the catalogue, which knows no tenant per transaction: what a task
        # records is what the application says (README, "Background tasks"), and the worker
        # runs a task only in the tenant whose slug and id it records.
        with activate(b), transaction.atomic(using=RUNTIME_ALIAS):
            _insert({"slug": a.slug, "id": b.pk})
        queue()
        (row,) = DBTaskResult.objects.using(OWNER_ALIAS).all()
        assert row.status == "FAILED" and "made again" in row.traceback
        return
    for recorded in forged:
        with (
            activate(b),
            pytest.raises(DatabaseError, match="row-level security"),
            transaction.atomic(using=RUNTIME_ALIAS),
        ):
            _insert(recorded)
    with activate(b), transaction.atomic(using=RUNTIME_ALIAS):
        _insert({"slug": b.slug, "id": b.pk})  # its own tenant: allowed, as the backend does
    assert queued() == 1


@pytest.mark.case("worker-no-stale-tenant")
def test_one_worker_thread_never_carries_a_tenant_to_the_next_task(queue, tenant_a, tenant_b):
    order = []
    for fixture, task in (
        (tenant_a, tasks.where_am_i),
        (tenant_a, tasks.fail_in_tenant),
        (tenant_b, tasks.where_am_i),
        (tenant_a, tasks.where_am_i),
    ):
        with activate(fixture.tenant):
            order.append((fixture, task.enqueue()))
    cross = tasks.across_tenants.enqueue()
    assert queue() == 5
    for fixture, result in order:
        row = outcome(result.id)
        if row.task_path.endswith("fail_in_tenant"):
            assert row.status == "FAILED" and "on purpose" in row.traceback
            continue
        assert row.return_value["tenant"] == fixture.slug
        assert set(row.return_value["names"]) == fixture.subtask_names
    across = outcome(cross.id).return_value
    assert across["tenant"] is None
    assert across["names"] == [], "a cross-tenant task saw a tenant's rows"
    assert get_current_tenant() is None


@pytest.mark.case("worker-no-stale-tenant")
def test_a_task_whose_transaction_rolled_back_is_recorded_failed(queue, strategy, tenant_b):
    subtask = strategy.model("subtask")
    with activate(tenant_b.tenant):
        before = set(subtask._default_manager.values_list("name", flat=True))
        swallowed = tasks.rename_then_swallow_an_error.enqueue("renamed, then rolled back")
        raw = tasks.rename_then_swallow_a_raw_error.enqueue("renamed, then rolled back too")
        unstorable = tasks.rename_then_return_what_json_cannot.enqueue("renamed, not stored")
        nan = tasks.rename_then_return_nan.enqueue("renamed, NaN not stored")
    queue()
    for result, reason in (
        (swallowed, "rolled back"),
        (raw, "rolled back"),
        (unstorable, "not JSON serializable"),
        (nan, "Out of range float values are not JSON compliant"),
    ):
        row = outcome(result.id)
        assert row.status == "FAILED", row.traceback
        assert reason in row.traceback
    with activate(tenant_b.tenant):
        assert set(subtask._default_manager.values_list("name", flat=True)) == before


@pytest.mark.case("task-rolled-back-with-request")
def test_a_rolled_back_transaction_enqueues_nothing(queue, strategy, tenant_a):
    with activate(tenant_a.tenant):
        with pytest.raises(RuntimeError), strategy.task_atomic(tenant_a.tenant):
            tasks.where_am_i.enqueue()
            raise RuntimeError("the request fails after enqueueing")
        assert queued() == 0
        with strategy.task_atomic(tenant_a.tenant):
            tasks.where_am_i.enqueue()
    assert queued() == 1


@pytest.mark.case("task-rolled-back-with-request")
def test_a_failed_request_enqueues_nothing(queue, tenant_a, settings):
    from django.test import Client

    settings.ROOT_URLCONF = "tests.contract.urls"
    client = Client(raise_request_exception=False)
    failed = client.get("/enqueue-then-fail/", headers={"host": tenant_a.host})
    assert failed.status_code == 500
    assert queued() == 0
    done = client.get("/enqueue/", headers={"host": tenant_a.host})
    assert done.status_code == 200
    assert queued() == 1
    queue()
    assert outcome(done.json()["id"]).return_value["tenant"] == tenant_a.slug


@pytest.mark.case("task-tenant-dropped")
def test_a_task_whose_tenant_was_dropped_fails_and_touches_nothing(
    queue, strategy, tenant_a, tenant_b
):
    number = 951
    data = generate_tenant(number, volumes=Volumes(users=(1, 1), projects=(1, 1)))
    slug = data.slug
    if strategy.get_tenant(slug):
        strategy.drop_tenant(slug)
    before = strategy.row_counts([tenant_a.slug, tenant_b.slug])
    doomed = strategy.load_tenant(data)
    with activate(doomed):
        gone = tasks.rename_subtasks.enqueue("written by a dropped tenant's task")
    strategy.drop_tenant(slug)
    queue()
    row = outcome(gone.id)
    assert row.status == "FAILED"
    assert row.exception_class_path == "shared.worker.TenantGone"
    assert f"tenant {slug} was dropped after this task was enqueued" in row.traceback

    # Made again under the same slug, it is another tenant: the old one's task does not run.
    again = strategy.load_tenant(data)
    try:
        with activate(doomed):  # the old tenant object, as a request that found it would hold
            stale = tasks.rename_subtasks.enqueue("written by the old tenant's task")
    except (DatabaseError, Http404):
        stale = None  # rls and schemas check the tenant as they enqueue: refused already
    try:
        if stale is not None:
            queue()
            row = outcome(stale.id)
            assert row.status == "FAILED"
            assert "was dropped and made again" in row.traceback
        with activate(again):
            names = set(strategy.model("subtask")._default_manager.values_list("name", flat=True))
        assert not {n for n in names if n.startswith("written by")}
        assert strategy.row_counts([tenant_a.slug, tenant_b.slug]) == before
    finally:
        strategy.drop_tenant(slug)


@pytest.mark.case("task-runs-in-enqueuing-tenant")
def test_the_worker_command_runs_a_tenants_task_and_only_its_page_shows_it(
    queue, strategy, tenant_a, tenant_b
):
    """What `make worker` runs, as its own process: the app's task for A changes A's page."""
    from django.test import Client

    from tests.contract.test_faults import app_env

    project = strategy.model("project")
    for fixture in (tenant_a, tenant_b):
        with activate(fixture.tenant):
            project._default_manager.update(progress=None)
    manage = [sys.executable, str(ROOT / strategy.name / "manage.py")]
    enqueued = subprocess.run(
        [*manage, "recomputeprogress", tenant_a.slug],
        env=app_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert enqueued.returncode == 0, enqueued.stderr
    assert f"Enqueued recompute_progress for {tenant_a.slug}" in enqueued.stdout
    worker = subprocess.Popen(
        [*manage, "runworker", "--interval", "0.1"],
        env=app_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if DBTaskResult.objects.using(OWNER_ALIAS).filter(status="SUCCESSFUL").exists():
                break
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "Ran 1 task." in err
    try:
        client = Client()
        page_a = client.get("/subtasks/", headers={"host": tenant_a.host}).content.decode()
        page_b = client.get("/subtasks/", headers={"host": tenant_b.host}).content.decode()
        assert "% done)" in page_a
        assert "% done)" not in page_b
    finally:
        with activate(tenant_a.tenant):
            project._default_manager.update(progress=None)


def test_django_tasks_dbs_own_worker_refuses_to_run(live_db):
    """It would run every task with no tenant: the project's runworker replaces it."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=r"run `manage\.py runworker`"):
        call_command("db_worker")


@pytest.mark.case("worker-no-stale-tenant")
def test_a_task_its_worker_abandoned_is_recorded_failed_not_run_again(queue, tenant_a):
    from datetime import timedelta

    from django.utils import timezone

    from shared.worker import claim, fail_abandoned, finish

    with activate(tenant_a.tenant):
        result = tasks.where_am_i.enqueue()
    row = claim("a worker that then died", "default", None)
    assert row is not None and str(row.id) == result.id
    DBTaskResult.objects.using(OWNER_ALIAS).filter(id=row.id).update(
        started_at=timezone.now() - timedelta(hours=2)
    )
    assert fail_abandoned("default", timedelta(hours=1)) == 1
    assert queue() == 0
    abandoned = outcome(result.id)
    assert abandoned.status == "FAILED"
    assert "its worker stopped" in abandoned.traceback
    # Its worker, alive after all, finishing late does not overwrite what was recorded.
    assert not finish(row, "SUCCESSFUL", return_value="late")
    assert outcome(result.id).status == "FAILED"
