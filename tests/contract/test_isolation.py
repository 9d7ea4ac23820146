"""Tenant B tries to read, count, infer, change or delete tenant A's rows, by every path.

Rows are told apart by content, not by primary key: in a strategy with a schema or a database
per tenant, B has rows of its own with A's ids, and reaching those is no leak.
"""

from __future__ import annotations

import html
import re

import pytest
from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import Count, Max, Min
from django.test import Client

from shared.pages import ACCOUNT_CELL
from shared.tenancy import activate
from tests.plugins.tenants import CONTENT

TABLES = tuple(CONTENT)
# A column the attacks overwrite: part of the content, and not unique.
WRITABLE = {"user": "first_name", "project": "name", "task": "name", "subtask": "name"}


def content(model, table: str, queryset=None) -> set[tuple]:
    queryset = model.objects.all() if queryset is None else queryset
    return set(queryset.values_list(*CONTENT[table]))


def page(host: str, path: str = "/subtasks/") -> tuple[int, str]:
    response = Client().get(path, headers={"host": host})
    return response.status_code, response.content.decode()


# -- through the page ----------------------------------------------------------------------


@pytest.mark.case("page-shows-own-rows")
def test_page_shows_only_the_tenants_own_rows(live_db, tenant_a, tenant_b):
    for me, other in ((tenant_a, tenant_b), (tenant_b, tenant_a)):
        status, body = page(me.host)
        assert status == 200
        accounts = {html.unescape(a) for a in ACCOUNT_CELL.findall(body)}
        assert accounts == {me.tenant.name}
        assert f"{len(me.ids['subtask'])} subtasks" in body
        shown = {html.unescape(n) for n in re.findall(r"<tr><td>([^<]*)</td>", body)}
        assert shown, "the page listed no subtasks"
        assert shown <= me.subtask_names
        assert other.tenant.name not in html.unescape(body)


@pytest.mark.case("page-shows-own-rows")
def test_every_page_of_a_tenant_stays_in_that_tenant(live_db, tenant_a):
    pages = -(-len(tenant_a.ids["subtask"]) // 10)
    seen = 0
    for number in range(1, pages + 1):
        status, body = page(tenant_a.host, f"/subtasks/{number}/")
        assert status == 200
        cells = ACCOUNT_CELL.findall(body)
        assert {html.unescape(c) for c in cells} == {tenant_a.tenant.name}
        seen += len(cells)
    assert seen == len(tenant_a.ids["subtask"])
    assert page(tenant_a.host, f"/subtasks/{pages + 1}/")[0] == 404


# -- through the ORM -----------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.case("orm-reads-by-ids-and-counts")
def test_orm_reads_never_return_other_tenants_rows(live_db, strategy, tenant_a, tenant_b, table):
    model = strategy.model(table)
    a_ids = tenant_a.ids[table]
    with activate(tenant_b.tenant):
        # By A's primary keys: at most B's own rows that happen to share them.
        assert content(model, table, model.objects.filter(pk__in=a_ids)) <= tenant_b.rows[table]
        by_id = model.objects.in_bulk(a_ids).values()
        assert {tuple(getattr(o, f) for f in CONTENT[table]) for o in by_id} <= tenant_b.rows[table]
        try:
            one = model.objects.get(pk=a_ids[0])
        except model.DoesNotExist:
            pass
        else:
            assert tuple(getattr(one, f) for f in CONTENT[table]) in tenant_b.rows[table]
        # Everything B can see, counted and aggregated, is exactly B's: nothing to infer from.
        assert content(model, table) == tenant_b.rows[table]
        assert model.objects.count() == len(tenant_b.ids[table])
        stats = model.objects.aggregate(n=Count("pk"), low=Min("pk"), high=Max("pk"))
        assert stats["n"] == len(tenant_b.ids[table])
        assert (stats["low"], stats["high"]) == (min(tenant_b.ids[table]), max(tenant_b.ids[table]))
        # By content: A's rows are not there to be found.
        field = CONTENT[table][0]
        a_values = [row[0] for row in tenant_a.rows[table]]
        assert not model.objects.filter(**{f"{field}__in": a_values}).exists()


@pytest.mark.case("related-lookups")
def test_related_lookups_do_not_cross_tenants(live_db, strategy, tenant_a, tenant_b):
    project, task = strategy.model("project"), strategy.model("task")
    a_names = [name for name, _ in tenant_a.rows["subtask"]]
    with activate(tenant_b.tenant):
        assert not task.objects.filter(subtasks__name__in=a_names).exists()
        reached = set()
        for one in project.objects.prefetch_related("tasks__subtasks"):
            for t in one.tasks.all():
                reached |= {(s.name, s.details) for s in t.subtasks.all()}
        assert reached == tenant_b.rows["subtask"]


def _a_rows_seen_from_inside(strategy, tenant_a, table):
    model = strategy.model(table)
    with activate(tenant_a.tenant):
        return content(model, table)


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.case("orm-writes-by-ids")
def test_orm_writes_by_other_tenants_ids_leave_its_rows_alone(
    live_db, strategy, tenant_a, tenant_b, table
):
    model = strategy.model(table)
    field = WRITABLE[table]
    with activate(tenant_b.tenant):
        alias = router.db_for_write(model)
    with transaction.atomic(using=alias):
        with activate(tenant_b.tenant):
            model.objects.filter(pk__in=tenant_a.ids[table]).update(**{field: "taken"})
            model.objects.filter(pk__in=tenant_a.ids[table]).delete()
        # Still inside B's transaction, before anything is rolled back.
        assert _a_rows_seen_from_inside(strategy, tenant_a, table) == tenant_a.rows[table]
        transaction.set_rollback(True, using=alias)


@pytest.mark.case("key-probes")
def test_a_child_never_lands_under_another_tenants_parent(live_db, strategy, tenant_a, tenant_b):
    subtask = strategy.model("subtask")
    with activate(tenant_b.tenant):
        alias = router.db_for_write(subtask)
    with transaction.atomic(using=alias):
        with activate(tenant_b.tenant):
            try:
                with transaction.atomic(using=alias):
                    subtask.objects.create(task_id=tenant_a.ids["task"][0], name="planted")
            except DatabaseError:
                pass  # refused: the strongest answer
        with activate(tenant_a.tenant):
            assert not subtask.objects.filter(name="planted").exists()
            assert content(subtask, "subtask") == tenant_a.rows["subtask"]
        transaction.set_rollback(True, using=alias)


# -- through raw SQL as the runtime role ---------------------------------------------------


def _columns(table: str) -> str:
    return ", ".join(CONTENT[table])


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.case("raw-sql-reads")
def test_raw_sql_as_the_runtime_role_sees_only_the_active_tenant(
    live_db, strategy, tenant_a, tenant_b, table
):
    model = strategy.model(table)
    with activate(tenant_b.tenant):
        connection = connections[router.db_for_read(model)]
        name = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {_columns(table)} FROM {name}")
            assert set(cursor.fetchall()) == tenant_b.rows[table]
            cursor.execute(
                f"SELECT {_columns(table)} FROM {name} WHERE id = ANY(%s)", [tenant_a.ids[table]]
            )
            assert set(cursor.fetchall()) <= tenant_b.rows[table]
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == connection.settings_dict["USER"]


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.case("raw-sql-writes")
def test_raw_sql_updates_and_deletes_leave_other_tenants_rows_alone(
    live_db, strategy, tenant_a, tenant_b, table
):
    model = strategy.model(table)
    column = WRITABLE[table]
    with activate(tenant_b.tenant):
        alias = router.db_for_write(model)
    connection = connections[alias]
    name = connection.ops.quote_name(model._meta.db_table)
    with transaction.atomic(using=alias):
        with activate(tenant_b.tenant), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {name} SET {column} = 'taken' WHERE id = ANY(%s)",
                [tenant_a.ids[table]],
            )
            cursor.execute(f"DELETE FROM {name} WHERE id = ANY(%s)", [tenant_a.ids[table]])
            try:
                with transaction.atomic(using=alias):
                    cursor.execute(f"DELETE FROM {name}")
            except IntegrityError:
                # Where foreign keys are checked at once (rls on Citus), B's own rows below
                # these still point at them: refused, which is as safe as deleting B's rows.
                pass
        assert _a_rows_seen_from_inside(strategy, tenant_a, table) == tenant_a.rows[table]
        transaction.set_rollback(True, using=alias)


@pytest.mark.case("no-tenant-query")
def test_with_no_tenant_active_a_query_never_returns_rows(live_db, strategy, two_tenants):
    """The contract allows an error or nothing; never all rows."""
    model = strategy.model("subtask")
    with activate(None):
        try:
            rows = list(model.objects.all())
        except Exception:
            return
        assert rows == []
