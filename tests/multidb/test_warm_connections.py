"""The budget of warm tenant connections (multidb.db.warm): what a process keeps open, who
shares it, and what happens past it. Connections are counted where they are real: in the
server's pg_stat_activity, by backend pid."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import Client, override_settings

from multidb.db.warm import pool
from multidb.routing import alias_for
from shared.tenancy import activate

SLUGS = [f"tenant-{n}" for n in range(721, 731)]


@pytest.fixture
def ten_tenants(cleanup, strategy):
    cleanup.extend(SLUGS)
    tenants = [strategy.create_tenant(slug, slug) for slug in SLUGS]
    pool.close_idle()  # start from nothing kept
    yield tenants
    pool.close_idle()


def backends() -> set[tuple[str, int]]:
    """(slug, pid) of every session these tenants' roles have open to their own databases."""
    names = {f"{settings.DATABASES['default']['NAME']}_{slug}": slug for slug in SLUGS}
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT datname, pid FROM pg_stat_activity WHERE usename = datname "
            "AND datname = ANY(%s)",
            [list(names)],
        )
        return {(names[name], pid) for name, pid in cursor.fetchall()}


def view(slug: str) -> int:
    try:
        return Client().get("/subtasks/", headers={"host": f"{slug}.localhost"}).status_code
    finally:
        connections.close_all()  # what the end of a request does in a server's thread


def in_new_thread(slug: str) -> int:
    """A request in a thread of its own that ends with it, as ASGI runs sync views."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(view, slug).result()


def test_a_warm_tenant_opens_no_connection_in_any_thread(ten_tenants):
    for slug in SLUGS:
        assert in_new_thread(slug) == 200
    warm = backends()
    assert {slug for slug, _ in warm} == set(SLUGS)
    assert len(warm) == len(SLUGS)
    for slug in SLUGS * 3:
        assert in_new_thread(slug) == 200
    # The same ten sessions served the next 30 requests, each from a thread of its own.
    assert backends() == warm
    # Concurrent requests for one tenant need a session each; the budget still holds.
    with ThreadPoolExecutor(8) as threads:
        assert set(threads.map(view, SLUGS * 5)) == {200}
    assert warm <= backends()
    assert len(backends()) <= settings.TENANCY_TENANT_CONNECTIONS


def test_past_the_budget_the_least_recently_used_go_back(ten_tenants):
    with override_settings(TENANCY_TENANT_CONNECTIONS=3):
        for slug in SLUGS * 2:
            assert view(slug) == 200
            assert len(backends()) <= 3
        assert {slug for slug, _ in backends()} == set(SLUGS[-3:])
        assert pool.counts() == (3, 0)


def test_with_every_connection_in_use_a_request_waits_then_gets_the_503(
    ten_tenants, strategy, monkeypatch
):
    monkeypatch.setattr("multidb.db.base.WAIT_SECONDS", 0.3)
    holding, release = threading.Barrier(3), threading.Event()

    def hold(tenant) -> None:  # a request that keeps its connection busy
        try:
            with activate(tenant), transaction.atomic(using=alias_for(tenant)):
                strategy.model("subtask").objects.count()
                holding.wait(10)
                release.wait(10)
        finally:
            connections.close_all()

    with override_settings(TENANCY_TENANT_CONNECTIONS=2), ThreadPoolExecutor(2) as threads:
        held = [threads.submit(hold, tenant) for tenant in ten_tenants[:2]]
        holding.wait(10)
        client = Client(raise_request_exception=False)
        response = client.get("/subtasks/", headers={"host": f"{SLUGS[5]}.localhost"})
        assert response.status_code == 503
        assert response["Retry-After"]
        release.set()
        for future in held:
            future.result()
        assert view(SLUGS[5]) == 200  # room again
    connections.close_all()


def test_a_connection_the_server_ended_is_not_handed_out(ten_tenants):
    assert view(SLUGS[0]) == 200
    ((_, pid),) = backends()
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    # No round trip asks whether it is alive: its socket already says so.
    assert view(SLUGS[0]) == 200
    ((_, new_pid),) = backends()
    assert new_pid != pid


def test_a_request_that_fails_mid_transaction_gives_back_nothing(ten_tenants, strategy):
    tenant = ten_tenants[0]
    with (
        activate(tenant),
        pytest.raises(ZeroDivisionError),
        transaction.atomic(using=alias_for(tenant)),
    ):
        strategy.model("subtask").objects.count()
        connections[alias_for(tenant)].close()  # closed inside its transaction
        raise ZeroDivisionError
    connections.close_all()
    assert pool.counts() == (0, 0)  # rolled back and closed, not kept
