"""The backend keeps app.account_id equal to the current tenant in every transaction."""

from __future__ import annotations

import pytest
from django.db import connections, transaction

from rls.tracker.models import Subtask
from shared.tenancy import activate


def setting() -> str | None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_setting('app.account_id', true)")
        return cursor.fetchone()[0]


def raw_count() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracker_subtask")
        return cursor.fetchone()[0]


def test_a_query_outside_a_transaction_gets_its_own_and_leaves_nothing(live_db, tenant_a):
    connection = connections["default"]
    with activate(tenant_a.tenant):
        assert raw_count() == len(tenant_a.ids["subtask"])
        assert connection.get_autocommit()
        assert not connection.in_atomic_block
    assert setting() in (None, "")
    assert raw_count() == 0


def test_tenants_switch_inside_one_transaction(live_db, tenant_a, tenant_b):
    with transaction.atomic():
        with activate(tenant_a.tenant):
            assert raw_count() == len(tenant_a.ids["subtask"])
        with activate(tenant_b.tenant):
            assert raw_count() == len(tenant_b.ids["subtask"])
        # Leaving the activation inside the same transaction must not leave B's id behind.
        assert raw_count() == 0
        assert setting() == ""


def test_rolling_back_a_savepoint_cannot_leave_another_tenant_behind(live_db, tenant_a, tenant_b):
    with transaction.atomic():
        with activate(tenant_b.tenant):
            savepoint = transaction.savepoint()  # taken while B was set
        with activate(tenant_a.tenant):
            assert raw_count() == len(tenant_a.ids["subtask"])  # A set inside the savepoint
            # The rollback restores the setting as it was at the savepoint: B's id. The backend
            # must forget what it set, or A's next query would run as B.
            transaction.savepoint_rollback(savepoint)
            assert raw_count() == len(tenant_a.ids["subtask"])
            assert setting() == str(tenant_a.tenant.pk)


def test_a_rolled_back_transaction_does_not_lose_the_tenant(live_db, tenant_a):
    with activate(tenant_a.tenant):
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            assert raw_count() == len(tenant_a.ids["subtask"])
            1 / 0  # noqa: B018
        with transaction.atomic():
            assert raw_count() == len(tenant_a.ids["subtask"])


def test_server_side_cursors_see_the_tenant(live_db, tenant_a):
    with activate(tenant_a.tenant):
        pks = [s.pk for s in Subtask.objects.order_by("pk").iterator(chunk_size=2)]
    assert pks == tenant_a.ids["subtask"]


def test_a_request_leaves_no_tenant_on_its_pooled_connection(live_db, tenant_a):
    from django.test import Client

    assert Client().get("/subtasks/", headers={"host": tenant_a.host}).status_code == 200
    assert setting() in (None, "")
    assert raw_count() == 0
