"""Every way of running a query refuses when it is not scoped to the active tenant."""

from __future__ import annotations

import pytest
from django.db.models import Count

from rls.scoping import TenantScopeError
from rls.tracker.models import Account, Project, Subtask, Task
from shared.tenancy import activate


def table(model) -> str:
    return model._meta.db_table


# Each takes the ids of an existing project, task and subtask (tenant A's) and runs a query.
SYNC = {
    "iterate": lambda p, t, s: list(Subtask.objects.all()),
    "len": lambda p, t, s: len(Subtask.objects.all()),
    "bool": lambda p, t, s: bool(Subtask.objects.all()),
    "index": lambda p, t, s: Subtask.objects.all()[0],
    "slice": lambda p, t, s: list(Subtask.objects.all()[:5]),
    "get": lambda p, t, s: Subtask.objects.get(pk=s),
    "first": lambda p, t, s: Subtask.objects.first(),
    "last": lambda p, t, s: Subtask.objects.last(),
    "earliest": lambda p, t, s: Subtask.objects.earliest("pk"),
    "latest": lambda p, t, s: Subtask.objects.latest("pk"),
    "count": lambda p, t, s: Subtask.objects.count(),
    "exists": lambda p, t, s: Subtask.objects.exists(),
    "contains": lambda p, t, s: Subtask.objects.contains(Subtask(pk=s)),
    "aggregate": lambda p, t, s: Subtask.objects.aggregate(n=Count("pk")),
    "annotate": lambda p, t, s: list(Task.objects.annotate(n=Count("subtasks"))),
    "values": lambda p, t, s: list(Subtask.objects.values("name")),
    "values_list": lambda p, t, s: list(Subtask.objects.values_list("name", flat=True)),
    "in_bulk": lambda p, t, s: Subtask.objects.in_bulk([s]),
    "in_bulk_all": lambda p, t, s: Subtask.objects.in_bulk(),
    "iterator": lambda p, t, s: list(Subtask.objects.iterator()),
    "explain": lambda p, t, s: Subtask.objects.all().explain(),
    "select_related": lambda p, t, s: list(Subtask.objects.select_related("task")),
    "prefetch_related": lambda p, t, s: list(Task.objects.prefetch_related("subtasks")),
    "union": lambda p, t, s: list(Subtask.objects.filter(pk=s).union(Subtask.objects.all())),
    "update": lambda p, t, s: Subtask.objects.filter(pk=s).update(name="x"),
    "delete": lambda p, t, s: Subtask.objects.filter(pk=s).delete(),
    "bulk_update": lambda p, t, s: Subtask.objects.bulk_update([Subtask(pk=s, name="x")], ["name"]),
    "bulk_create": lambda p, t, s: Subtask.objects.bulk_create([Subtask(task_id=t, name="x")]),
    "create": lambda p, t, s: Subtask.objects.create(task_id=t, name="x"),
    "get_or_create": lambda p, t, s: Subtask.objects.get_or_create(task_id=t, name="x"),
    "update_or_create": lambda p, t, s: Subtask.objects.update_or_create(
        pk=s, defaults={"name": "x"}
    ),
    "raw": lambda p, t, s: list(Subtask.objects.raw(f"SELECT * FROM {table(Subtask)}")),
    "related_manager": lambda p, t, s: list(Project(pk=p).tasks.all()),
    "related_manager_count": lambda p, t, s: Project(pk=p).tasks.count(),
    "related_manager_create": lambda p, t, s: Task(pk=t).subtasks.create(name="x"),
    "foreign_key_access": lambda p, t, s: Subtask(pk=s, task_id=t).task,
    "save_new": lambda p, t, s: Subtask(task_id=t, account_id=1, name="x").save(),
    "save_existing": lambda p, t, s: Subtask(pk=s, task_id=t, account_id=1, name="x").save(),
    "instance_delete": lambda p, t, s: Subtask(pk=s, task_id=t, account_id=1).delete(),
    "refresh_from_db": lambda p, t, s: Subtask(pk=s).refresh_from_db(),
    "account_table": lambda p, t, s: list(Account.objects.all()),
}


async def _aiter(p, t, s):
    return [x async for x in Subtask.objects.all()]


async def _aiterator(p, t, s):
    return [x async for x in Subtask.objects.aiterator()]


async def _related_aiter(p, t, s):
    return [x async for x in Project(pk=p).tasks.all()]


ASYNC = {
    "async_for": _aiter,
    "aiterator": _aiterator,
    "aget": lambda p, t, s: Subtask.objects.aget(pk=s),
    "afirst": lambda p, t, s: Subtask.objects.afirst(),
    "alast": lambda p, t, s: Subtask.objects.alast(),
    "aearliest": lambda p, t, s: Subtask.objects.aearliest("pk"),
    "alatest": lambda p, t, s: Subtask.objects.alatest("pk"),
    "acount": lambda p, t, s: Subtask.objects.acount(),
    "aexists": lambda p, t, s: Subtask.objects.aexists(),
    "acontains": lambda p, t, s: Subtask.objects.acontains(Subtask(pk=s)),
    "aaggregate": lambda p, t, s: Subtask.objects.aaggregate(n=Count("pk")),
    "ain_bulk": lambda p, t, s: Subtask.objects.ain_bulk([s]),
    "aexplain": lambda p, t, s: Subtask.objects.all().aexplain(),
    "aupdate": lambda p, t, s: Subtask.objects.filter(pk=s).aupdate(name="x"),
    "adelete": lambda p, t, s: Subtask.objects.filter(pk=s).adelete(),
    "abulk_create": lambda p, t, s: Subtask.objects.abulk_create([Subtask(task_id=t, name="x")]),
    "abulk_update": lambda p, t, s: Subtask.objects.abulk_update(
        [Subtask(pk=s, name="x")], ["name"]
    ),
    "acreate": lambda p, t, s: Subtask.objects.acreate(task_id=t, name="x"),
    "aget_or_create": lambda p, t, s: Subtask.objects.aget_or_create(task_id=t, name="x"),
    "aupdate_or_create": lambda p, t, s: Subtask.objects.aupdate_or_create(
        pk=s, defaults={"name": "x"}
    ),
    "related_async_for": _related_aiter,
    "related_acount": lambda p, t, s: Project(pk=p).tasks.acount(),
    "asave": lambda p, t, s: Subtask(task_id=t, account_id=1, name="x").asave(),
    "adelete_instance": lambda p, t, s: Subtask(pk=s, task_id=t, account_id=1).adelete(),
    "arefresh_from_db": lambda p, t, s: Subtask(pk=s).arefresh_from_db(),
}


def ids(fixture):
    return fixture.ids["project"][0], fixture.ids["task"][0], fixture.ids["subtask"][0]


@pytest.mark.parametrize("entry", SYNC)
def test_sync_entry_point_refuses_without_a_tenant(live_db, tenant_a, entry):
    with pytest.raises(TenantScopeError, match="no tenant is active"):
        SYNC[entry](*ids(tenant_a))


@pytest.mark.asyncio
@pytest.mark.parametrize("entry", ASYNC)
async def test_async_entry_point_refuses_without_a_tenant(live_db, tenant_a, entry):
    with pytest.raises(TenantScopeError, match="no tenant is active"):
        await ASYNC[entry](*ids(tenant_a))


def test_the_error_names_the_model_and_the_ways_out(live_db, two_tenants):
    with pytest.raises(TenantScopeError) as caught:
        Subtask.objects.count()
    message = str(caught.value)
    assert message.startswith("Subtask.count() refused: no tenant is active.")
    assert "shared.tenancy.activate(tenant)" in message
    assert "Subtask.objects.cross_tenant()" in message


def test_a_queryset_built_for_one_tenant_cannot_run_under_another(live_db, tenant_a, tenant_b):
    with activate(tenant_a.tenant):
        queryset = Subtask.objects.all()
        related = Project.objects.get(pk=tenant_a.ids["project"][0]).tasks.all()
    with activate(tenant_b.tenant):
        with pytest.raises(TenantScopeError, match="built for account"):
            list(queryset)
        with pytest.raises(TenantScopeError, match="built for account"):
            queryset.count()
        with pytest.raises(TenantScopeError, match="built for account"):
            list(related)
    with pytest.raises(TenantScopeError, match="no tenant is active"):
        list(queryset)
    unscoped = Subtask.objects.all()
    with activate(tenant_a.tenant), pytest.raises(TenantScopeError, match="no tenant was active"):
        list(unscoped)


def test_an_instance_of_another_account_cannot_be_deleted(live_db, tenant_a, tenant_b):
    with activate(tenant_a.tenant):
        mine = Subtask.objects.get(pk=tenant_a.ids["subtask"][0])
    with activate(tenant_b.tenant), pytest.raises(TenantScopeError, match="built for account"):
        mine.delete()


@pytest.mark.parametrize(
    "entry",
    [
        "iterate",
        "get",
        "count",
        "exists",
        "aggregate",
        "values",
        "in_bulk",
        "related_manager",
        "foreign_key_access",
        "raw",
    ],
)
def test_the_same_entry_points_work_inside_the_tenant(live_db, tenant_a, entry):
    with activate(tenant_a.tenant):
        assert SYNC[entry](*ids(tenant_a)) is not None


def test_scoped_queries_return_exactly_the_tenants_rows(live_db, tenant_a):
    with activate(tenant_a.tenant):
        assert sorted(Subtask.objects.values_list("pk", flat=True)) == tenant_a.ids["subtask"]
        assert [a.slug for a in Account.objects.all()] == [tenant_a.slug]
        raw = Subtask.objects.raw(f"SELECT * FROM {table(Subtask)}")
        assert sorted(s.pk for s in raw) == tenant_a.ids["subtask"]


def test_cross_tenant_is_explicit_and_privileged(live_db, tenant_a, tenant_b):
    queryset = Subtask.objects.cross_tenant()
    assert queryset.db == "owner"
    found = set(
        queryset.filter(account__slug__in=[tenant_a.slug, tenant_b.slug]).values_list(
            "pk", flat=True
        )
    )
    assert found == set(tenant_a.ids["subtask"]) | set(tenant_b.ids["subtask"])


def test_values_read_across_a_foreign_key_stay_in_the_rows_account(live_db, tenant_a):
    """What lets Citus send such a query to one worker (rls.citus); a reverse relation keeps
    its outer join, so a project without tasks is still listed."""
    from django.db import transaction

    with activate(tenant_a.tenant):
        sql = str(Subtask.objects.values_list("task__project__name").query)
        assert '"tracker_task"."account_id" = ("tracker_subtask"."account_id")' in sql
        assert '"tracker_project"."account_id" = ("tracker_subtask"."account_id")' in sql
        names = set(Subtask.objects.values_list("task__project__name", flat=True))
        assert names == {name for name, _ in tenant_a.rows["project"]} & names and names
        with transaction.atomic(using="default"):
            empty = Project.objects.create(name="no tasks yet")
            rows = list(Project.objects.filter(pk=empty.pk).values("name", "tasks__name"))
            transaction.set_rollback(True, using="default")
    assert rows == [{"name": "no tasks yet", "tasks__name": None}]
