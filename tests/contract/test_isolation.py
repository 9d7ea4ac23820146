"""Tenant B tries to read, count, infer, change or delete tenant A's rows, by every path."""

from __future__ import annotations

import re

import pytest
from django.db import DatabaseError, connections, router, transaction
from django.db.models import Count, Max, Min, Sum
from django.test import Client

from shared.tenancy import activate

TABLES = ("user", "project", "task", "subtask")
ACCOUNT_CELL = re.compile(r'<td class="account">([^<]*)</td>')


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def page(host: str, path: str = "/subtasks/") -> tuple[int, str]:
    response = Client().get(path, headers={"host": host})
    return response.status_code, response.content.decode()


# -- through the page ----------------------------------------------------------------------


def test_page_shows_only_the_tenants_own_rows(live_db, tenant_a, tenant_b):
    for me, other in ((tenant_a, tenant_b), (tenant_b, tenant_a)):
        status, body = page(me.host)
        assert status == 200
        accounts = {html_unescape(a) for a in ACCOUNT_CELL.findall(body)}
        assert accounts == {me.tenant.name}
        assert f"{len(me.ids['subtask'])} subtasks" in body
        shown = set(re.findall(r"<tr><td>([^<]*)</td>", body))
        assert shown, "the page listed no subtasks"
        assert shown <= me.subtask_names
        assert other.tenant.name not in html_unescape(body)


def test_every_page_of_a_tenant_stays_in_that_tenant(live_db, tenant_a):
    pages = -(-len(tenant_a.ids["subtask"]) // 10)
    seen = 0
    for number in range(1, pages + 1):
        status, body = page(tenant_a.host, f"/subtasks/{number}/")
        assert status == 200
        cells = ACCOUNT_CELL.findall(body)
        assert {html_unescape(c) for c in cells} == {tenant_a.tenant.name}
        seen += len(cells)
    assert seen == len(tenant_a.ids["subtask"])
    assert page(tenant_a.host, f"/subtasks/{pages + 1}/")[0] == 404


# -- through the ORM -----------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_orm_reads_of_other_tenants_rows_find_nothing(live_db, strategy, tenant_a, tenant_b, table):
    model = strategy.model(table)
    a_ids = tenant_a.ids[table]
    with activate(tenant_b.tenant):
        assert not model.objects.filter(pk__in=a_ids).exists()
        assert model.objects.filter(pk__in=a_ids).count() == 0
        assert list(model.objects.filter(pk__in=a_ids)) == []
        assert model.objects.in_bulk(a_ids) == {}
        with pytest.raises(model.DoesNotExist):
            model.objects.get(pk=a_ids[0])
        # Counting and aggregating see exactly B's rows: nothing to infer A's volume from.
        assert model.objects.count() == len(tenant_b.ids[table])
        stats = model.objects.aggregate(n=Count("pk"), low=Min("pk"), high=Max("pk"))
        assert stats["n"] == len(tenant_b.ids[table])
        assert set(model.objects.values_list("pk", flat=True)) == set(tenant_b.ids[table])


def test_related_lookups_do_not_cross_tenants(live_db, strategy, tenant_a, tenant_b):
    project, task = strategy.model("project"), strategy.model("task")
    with activate(tenant_b.tenant):
        assert not task.objects.filter(subtasks__pk__in=tenant_a.ids["subtask"]).exists()
        assert not project.objects.filter(tasks__pk__in=tenant_a.ids["task"]).exists()
        total = task.objects.aggregate(n=Sum("pk"))["n"] or 0
        assert total == sum(tenant_b.ids["task"])
        for one in project.objects.prefetch_related("tasks__subtasks"):
            for t in one.tasks.all():
                assert t.pk in tenant_b.ids["task"]
                assert {s.pk for s in t.subtasks.all()} <= set(tenant_b.ids["subtask"])


@pytest.mark.parametrize("table", TABLES)
def test_orm_writes_to_other_tenants_rows_change_nothing(
    live_db, strategy, tenant_a, tenant_b, table
):
    model = strategy.model(table)
    field = "email" if table == "user" else "name"
    with activate(tenant_a.tenant):
        before = sorted(model.objects.values_list("pk", field))
    with activate(tenant_b.tenant), transaction.atomic(using=router.db_for_write(model)):
        assert model.objects.filter(pk__in=tenant_a.ids[table]).update(**{field: "taken"}) == 0
        deleted, _ = model.objects.filter(pk__in=tenant_a.ids[table]).delete()
        assert deleted == 0
        transaction.set_rollback(True, using=router.db_for_write(model))
    with activate(tenant_a.tenant):
        assert sorted(model.objects.values_list("pk", field)) == before


def test_a_child_cannot_point_at_another_tenants_parent(live_db, strategy, tenant_a, tenant_b):
    subtask = strategy.model("subtask")
    alias = router.db_for_write(subtask)
    with activate(tenant_b.tenant), pytest.raises(DatabaseError), transaction.atomic(using=alias):
        subtask.objects.create(task_id=tenant_a.ids["task"][0], name="planted")
    with activate(tenant_a.tenant):
        assert not subtask.objects.filter(name="planted").exists()


# -- through raw SQL as the runtime role ---------------------------------------------------


def _cursor(model):
    return connections[router.db_for_read(model)].cursor()


@pytest.mark.parametrize("table", TABLES)
def test_raw_sql_as_the_runtime_role_sees_only_the_active_tenant(
    live_db, strategy, tenant_a, tenant_b, table
):
    model = strategy.model(table)
    name = connections["default"].ops.quote_name(model._meta.db_table)
    with activate(tenant_b.tenant), _cursor(model) as cursor:
        cursor.execute(f"SELECT count(*) FROM {name}")
        assert cursor.fetchone()[0] == len(tenant_b.ids[table])
        cursor.execute(f"SELECT id FROM {name} WHERE id = ANY(%s)", [tenant_a.ids[table]])
        assert cursor.fetchall() == []
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == connections["default"].settings_dict["USER"]


@pytest.mark.parametrize("table", TABLES)
def test_raw_sql_updates_and_deletes_of_other_tenants_rows_touch_nothing(
    live_db, strategy, tenant_a, tenant_b, table
):
    model = strategy.model(table)
    alias = router.db_for_write(model)
    name = connections[alias].ops.quote_name(model._meta.db_table)
    column = "email" if table == "user" else "name"
    with activate(tenant_b.tenant), transaction.atomic(using=alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                f"UPDATE {name} SET {column} = 'x' WHERE id = ANY(%s)", [tenant_a.ids[table]]
            )
            assert cursor.rowcount == 0
            cursor.execute(f"DELETE FROM {name} WHERE id = ANY(%s)", [tenant_a.ids[table]])
            assert cursor.rowcount == 0
        transaction.set_rollback(True, using=alias)


def test_with_no_tenant_active_a_query_never_returns_rows(live_db, strategy, two_tenants):
    """The contract allows an error or nothing; never all rows."""
    model = strategy.model("subtask")
    with activate(None):
        try:
            rows = list(model.objects.all())
        except Exception:
            return
        assert rows == []
