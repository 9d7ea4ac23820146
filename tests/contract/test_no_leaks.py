"""The tenant never outlives its request: pooled connections, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import html
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections
from django.test import Client

from shared.pages import ACCOUNT_CELL
from shared.tenancy import activate, get_current_tenant


def accounts_on(body: bytes) -> set[str]:
    return {html.unescape(a) for a in ACCOUNT_CELL.findall(body.decode())}


async def asgi_get(app, host: str, path: str) -> tuple[int, bytes]:
    """One GET through Django's ASGI handler, with exactly one Host header as a server sends."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", host.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = []
    requested = False

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects; Django cancels this wait

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.case("pooled-backend-a-then-b")
def test_alternating_tenants_on_pooled_connections(live_db, tenant_a, tenant_b):
    client = Client()
    backends = {}
    for i in range(12):
        me = (tenant_a, tenant_b)[i % 2]
        response = client.get("/subtasks/", headers={"host": me.host})
        assert response.status_code == 200
        assert accounts_on(response.content) == {me.tenant.name}
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.setdefault(cursor.fetchone()[0], set()).add(me.slug)
        # Hand the connection back, as the end of a real request does.
        connections["default"].close()
    assert get_current_tenant() is None
    # The pool really was reused across tenants, so the check above means something.
    assert any(len(slugs) == 2 for slugs in backends.values()), backends


@pytest.mark.case("outer-context-on-bare-host")
def test_a_tenant_set_by_an_outer_context_does_not_reach_the_bare_host(live_db, tenant_a):
    with activate(tenant_a.tenant):
        response = Client().get("/subtasks/", headers={"host": "localhost"})
    assert response.status_code == 404


@pytest.mark.case("concurrent-threads")
def test_concurrent_requests_from_threads(live_db, tenant_a, tenant_b):
    def fetch(i: int) -> tuple[str, set[str]]:
        me = (tenant_a, tenant_b)[i % 2]
        try:
            response = Client().get("/subtasks/", headers={"host": me.host})
            assert response.status_code == 200
            return me.tenant.name, accounts_on(response.content)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(fetch, range(60)))
    assert all(seen == {expected} for expected, seen in results)


@pytest.mark.asyncio
@pytest.mark.case("concurrent-asyncio")
async def test_concurrent_requests_from_asyncio_tasks(live_db, tenant_a, tenant_b):
    app = ASGIHandler()

    async def fetch(i: int) -> tuple[str, set[str]]:
        me = (tenant_a, tenant_b)[i % 2]
        status, body = await asgi_get(app, me.host, "/subtasks/")
        assert status == 200
        return me.tenant.name, accounts_on(body)

    results = await asyncio.gather(*(fetch(i) for i in range(40)))
    assert all(seen == {expected} for expected, seen in results)


@pytest.mark.asyncio
@pytest.mark.case("concurrent-asyncio")
async def test_tasks_with_different_tenants_keep_their_own(live_db, strategy, tenant_a, tenant_b):
    subtask = strategy.model("subtask")

    async def count_for(fixture):
        with activate(fixture.tenant):
            await asyncio.sleep(0)  # let the other task run inside its own activation
            return await subtask.objects.acount(), get_current_tenant().slug

    results = await asyncio.gather(*(count_for(f) for f in (tenant_a, tenant_b) * 5))
    await sync_to_async(connections.close_all)()  # in the thread the ORM calls ran in
    for (count, slug), fixture in zip(results, (tenant_a, tenant_b) * 5, strict=True):
        assert slug == fixture.slug
        assert count == len(fixture.ids["subtask"])


@pytest.mark.case("activation-nests")
def test_activation_nests_and_restores(live_db, tenant_a, tenant_b):
    assert get_current_tenant() is None
    with activate(tenant_a.tenant):
        with activate(tenant_b.tenant):
            assert get_current_tenant().slug == tenant_b.slug
            with activate(None):
                assert get_current_tenant() is None
        assert get_current_tenant().slug == tenant_a.slug
    assert get_current_tenant() is None
