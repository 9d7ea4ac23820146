"""Per-tenant limits: a noisy tenant's slow statement is stopped at its own limit, and the
other tenants are served as usual meanwhile; every session names its tenant."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.test import Client

from shared.db import OWNER_ALIAS, connect_directly
from shared.models import DEFAULT_STATEMENT_TIMEOUT_MS

LIMIT_MS = 200
SLEEP_SECONDS = 5


@pytest.fixture
def slow_urls(settings):
    settings.ROOT_URLCONF = "tests.contract.urls"


def serve_until(stop: threading.Event, host: str, codes: list[int]) -> None:
    client = Client(raise_request_exception=False)
    try:
        while not stop.is_set():
            codes.append(client.get("/subtasks/", headers={"host": host}).status_code)
    finally:
        connections.close_all()


@pytest.mark.case("noisy-tenant-limited")
def test_a_tenant_past_its_limit_gets_503_while_the_others_get_200(
    live_db, slow_urls, strategy, tenant_a, tenant_b
):
    strategy.set_limits(tenant_a.slug, statement_timeout=LIMIT_MS)
    try:
        others: list[int] = []
        stop = threading.Event()
        thread = threading.Thread(target=serve_until, args=(stop, tenant_b.host, others))
        thread.start()
        noisy = []
        try:
            client = Client(raise_request_exception=False)
            for _ in range(3):
                started = time.monotonic()
                response = client.get(
                    f"/slow/?seconds={SLEEP_SECONDS}", headers={"host": tenant_a.host}
                )
                noisy.append((response, time.monotonic() - started))
            # A's ordinary page still answers: the limit stops long statements, not the tenant.
            page = client.get("/subtasks/", headers={"host": tenant_a.host})
        finally:
            stop.set()
            thread.join()
        for response, seconds in noisy:
            assert response.status_code == 503, response.content[:300]
            assert response["Retry-After"]
            assert b"time limit" in response.content
            # Stopped by its limit, well before the statement would have ended by itself.
            assert seconds < SLEEP_SECONDS - 1, seconds
        assert page.status_code == 200
        assert others and set(others) == {200}, others
    finally:
        strategy.set_limits(tenant_a.slug, statement_timeout=DEFAULT_STATEMENT_TIMEOUT_MS)


@pytest.mark.case("noisy-tenant-limited")
def test_the_limit_is_the_tenants_own(live_db, slow_urls, strategy, tenant_a, tenant_b):
    """B's statements are not bound by A's limit, nor A's by B's."""
    strategy.set_limits(tenant_a.slug, statement_timeout=LIMIT_MS)
    try:
        client = Client(raise_request_exception=False)
        seconds = LIMIT_MS / 1000 * 2.5  # past A's limit, well within B's
        assert (
            client.get(f"/slow/?seconds={seconds}", headers={"host": tenant_b.host}).status_code
            == 200
        )
        assert (
            client.get(f"/slow/?seconds={seconds}", headers={"host": tenant_a.host}).status_code
            == 503
        )
    finally:
        strategy.set_limits(tenant_a.slug, statement_timeout=DEFAULT_STATEMENT_TIMEOUT_MS)


@pytest.mark.case("tenant-in-application-name")
def test_pg_stat_activity_names_the_tenant_of_a_running_statement(
    live_db, slow_urls, strategy, tenant_a
):
    codes: list[int] = []

    def slow_request() -> None:
        try:
            response = Client(raise_request_exception=False).get(
                "/slow/?seconds=2", headers={"host": tenant_a.host}
            )
            codes.append(response.status_code)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_request)
    thread.start()
    seen = set()
    try:
        with connect_directly(OWNER_ALIAS, autocommit=True) as owner:
            deadline = time.monotonic() + 10
            while thread.is_alive() and time.monotonic() < deadline and not seen:
                rows = owner.execute(
                    # What any role sees of another role's sessions: not the query, nor what
                    # it waits for, but the application name.
                    "SELECT application_name FROM pg_stat_activity WHERE application_name = %s",
                    [tenant_a.slug],
                ).fetchall()
                seen |= {name for (name,) in rows}
                time.sleep(0.05)
    finally:
        thread.join()
    assert codes == [200]
    assert seen == {tenant_a.slug}


def test_tenantlimits_shows_changes_and_refuses_bad_input_in_one_line(live_db, strategy, tenant_a):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    def limits(*args: str) -> str:
        out = io.StringIO()
        call_command("tenantlimits", tenant_a.slug, *args, stdout=out)
        return out.getvalue()

    try:
        assert "statement_timeout_ms 1500" in limits("--statement-timeout", "1500ms")
        assert "statement_timeout_ms 2000" in limits("--statement-timeout", "2s")
        for bad in ("-1", "fast", "1.5s", "99999999999"):
            with pytest.raises(CommandError, match="--statement-timeout"):
                limits("--statement-timeout", bad)
        with pytest.raises(CommandError, match="there is no tenant tenant-nobody"):
            call_command("tenantlimits", "tenant-nobody")
        if strategy.name == "multidb":
            assert "connection_limit 7" in limits("--connection-limit", "7")
        else:
            with pytest.raises(CommandError, match="no database per tenant"):
                limits("--connection-limit", "7")
    finally:
        strategy.set_limits(tenant_a.slug, statement_timeout=DEFAULT_STATEMENT_TIMEOUT_MS)
        if strategy.name == "multidb":
            from multidb.catalogue.models import DEFAULT_CONNECTION_LIMIT

            strategy.set_limits(tenant_a.slug, connection_limit=DEFAULT_CONNECTION_LIMIT)
