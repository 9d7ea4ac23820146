"""Two tenants with data, loaded once per session through the strategy interface."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from shared.testdata import Volumes, generate_tenant

# Far above the numbers createtestdata's tests use (1..20), so both can share a database.
A_NUMBER, B_NUMBER = 901, 902
VOLUMES = Volumes(users=(2, 3), projects=(3, 4), tasks=(2, 3), subtasks=(3, 4))


# What identifies a row across strategies: its content. Primary keys do not, since a strategy
# with a schema or a database per tenant gives every tenant its own sequences.
CONTENT = {
    "user": ("email",),
    "project": ("name", "details"),
    "task": ("name", "details"),
    "subtask": ("name", "details"),
}


@dataclass
class TenantFixture:
    tenant: object
    ids: dict[str, list]  # primary keys per table name
    rows: dict[str, set[tuple]]  # content per table name
    subtask_names: set[str]

    @property
    def slug(self) -> str:
        return self.tenant.slug

    @property
    def host(self) -> str:
        return f"{self.tenant.slug}.localhost"


def _snapshot(strategy, tenant) -> TenantFixture:
    from shared.tenancy import activate

    with activate(tenant):
        ids = {
            name: list(strategy.model(name).objects.order_by("pk").values_list("pk", flat=True))
            for name in CONTENT
        }
        rows = {
            name: set(strategy.model(name).objects.values_list(*fields))
            for name, fields in CONTENT.items()
        }
        names = set(strategy.model("subtask").objects.values_list("name", flat=True))
    return TenantFixture(tenant, ids, rows, names)


@pytest.fixture(scope="session")
def strategy(django_db_setup):
    from shared.strategy import get_strategy

    return get_strategy()


@pytest.fixture(scope="session")
def two_tenants(strategy, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        tenants = []
        for number in (A_NUMBER, B_NUMBER):
            slug = f"tenant-{number}"
            tenant = strategy.get_tenant(slug) or strategy.load_tenant(
                generate_tenant(number, volumes=VOLUMES)
            )
            tenants.append(_snapshot(strategy, strategy.get_tenant(slug) or tenant))
    a, b = tenants
    for name in CONTENT:  # so that "only B's rows" and "none of A's rows" mean the same
        assert a.rows[name] and not a.rows[name] & b.rows[name], name
    return a, b


@pytest.fixture
def tenant_a(two_tenants):
    return two_tenants[0]


@pytest.fixture
def tenant_b(two_tenants):
    return two_tenants[1]
