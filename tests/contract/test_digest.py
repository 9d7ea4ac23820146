"""tenantdigest: a tenant's digest depends on its rows only, not on ids or the strategy."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from shared import digest
from shared.tenancy import activate
from shared.testdata import generate_tenant
from tests.plugins.tenants import A_NUMBER, VOLUMES


def test_a_stored_tenant_has_the_digest_of_the_rows_it_was_made_from(
    live_db, strategy, two_tenants
):
    """The value is computed from the generated rows alone, before any database: every
    strategy that stores them faithfully gives the same."""
    tenant_a, tenant_b = two_tenants
    expected = digest.of_data(generate_tenant(A_NUMBER, volumes=VOLUMES))
    stored = digest.of_tenant(strategy, tenant_a.tenant)
    assert stored == expected
    assert stored.counts()["subtask"] == len(tenant_a.subtask_names) > 0
    assert digest.of_tenant(strategy, tenant_b.tenant).value != expected.value


def test_one_changed_value_changes_the_digest(live_db, strategy, two_tenants):
    tenant_a, _ = two_tenants
    before = digest.of_tenant(strategy, tenant_a.tenant)
    subtask = strategy.model("subtask")
    with activate(tenant_a.tenant):
        row = subtask.objects.order_by("pk").first()
        old = row.is_complete
        subtask.objects.filter(pk=row.pk).update(is_complete=not old)
    try:
        after = digest.of_tenant(strategy, tenant_a.tenant)
        assert after.value != before.value
        assert after.tables["task"] == before.tables["task"]  # only the subtasks changed
        assert after.tables["subtask"] != before.tables["subtask"]
    finally:
        with activate(tenant_a.tenant):
            subtask.objects.filter(pk=row.pk).update(is_complete=old)
    assert digest.of_tenant(strategy, tenant_a.tenant) == before


def test_the_command(live_db, strategy, two_tenants):
    tenant_a, _ = two_tenants
    expected = digest.of_tenant(strategy, tenant_a.tenant)
    out = io.StringIO()
    call_command("tenantdigest", tenant_a.slug, stdout=out)
    assert out.getvalue().startswith(f"{tenant_a.slug} {expected.value}\n")
    out = io.StringIO()
    call_command("tenantdigest", tenant_a.slug, "--json", stdout=out)
    document = json.loads(out.getvalue())
    assert document["digest"] == expected.value
    assert document["tables"]["subtask"]["rows"] == expected.counts()["subtask"]
    with pytest.raises(CommandError, match="there is no tenant tenant-nowhere"):
        call_command("tenantdigest", "tenant-nowhere")
