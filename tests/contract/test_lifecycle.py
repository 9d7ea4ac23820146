"""Creating, serving, dropping and migrating tenants through the strategy interface."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from shared.tenancy import activate

SLUG = "tenant-777"


@pytest.fixture
def new_tenant(live_db, strategy):
    if strategy.get_tenant(SLUG):
        strategy.drop_tenant(SLUG)
    yield strategy.create_tenant(SLUG, "Seven Hundred Seventy-Seven Ltd")
    if strategy.get_tenant(SLUG):
        strategy.drop_tenant(SLUG)


def test_a_new_tenant_is_served_at_once_and_empty(new_tenant, strategy, two_tenants):
    found = strategy.get_tenant(SLUG)
    assert (found.slug, found.name) == (SLUG, "Seven Hundred Seventy-Seven Ltd")
    assert SLUG in [t.slug for t in strategy.list_tenants()]
    response = Client().get("/subtasks/", headers={"host": f"{SLUG}.localhost"})
    assert response.status_code == 200
    assert "This tenant has no subtasks yet." in response.content.decode()
    with activate(found):
        assert strategy.model("subtask").objects.count() == 0


def test_a_dropped_tenant_is_gone_everywhere(new_tenant, strategy, two_tenants):
    strategy.drop_tenant(SLUG)
    assert strategy.get_tenant(SLUG) is None
    assert SLUG not in [t.slug for t in strategy.list_tenants()]
    response = Client().get("/subtasks/", headers={"host": f"{SLUG}.localhost"})
    assert response.status_code == 404


def test_migrating_every_tenant_with_nothing_to_do_changes_nothing(live_db, strategy, two_tenants):
    before = strategy.row_counts()
    call_command("migratetenants", verbosity=0)
    assert strategy.row_counts() == before
