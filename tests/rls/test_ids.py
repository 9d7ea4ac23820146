"""In rls every tenant shares the tables, so A's primary keys are simply out of B's reach:
B's queries by A's ids find nothing, change nothing, and the database refuses a child under A's
parent (the contract suite allows a strategy to answer less strictly)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connections, transaction

from rls.tracker.models import Project, Subtask, Task, User
from shared.tenancy import activate

MODELS = {"user": User, "project": Project, "task": Task, "subtask": Subtask}


@pytest.mark.parametrize("table", MODELS)
def test_other_tenants_ids_find_and_change_nothing(live_db, tenant_a, tenant_b, table):
    model, a_ids = MODELS[table], tenant_a.ids[table]
    field = "email" if table == "user" else "name"
    with activate(tenant_b.tenant), transaction.atomic():
        assert not model.objects.filter(pk__in=a_ids).exists()
        assert model.objects.in_bulk(a_ids) == {}
        with pytest.raises(model.DoesNotExist):
            model.objects.get(pk=a_ids[0])
        assert model.objects.filter(pk__in=a_ids).update(**{field: "x"}) == 0
        assert model.objects.filter(pk__in=a_ids).delete()[0] == 0
        with connections["default"].cursor() as cursor:
            table_name = model._meta.db_table
            cursor.execute(f"UPDATE {table_name} SET {field} = 'x' WHERE id = ANY(%s)", [a_ids])
            assert cursor.rowcount == 0
            cursor.execute(f"DELETE FROM {table_name} WHERE id = ANY(%s)", [a_ids])
            assert cursor.rowcount == 0
        transaction.set_rollback(True)


def test_a_subtask_under_another_accounts_task_is_refused(live_db, tenant_a, tenant_b):
    with activate(tenant_b.tenant), pytest.raises(DatabaseError), transaction.atomic():
        Subtask.objects.create(task_id=tenant_a.ids["task"][0], name="planted")
