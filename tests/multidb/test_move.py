"""movetenant under load: other tenants served as usual, the moving tenant's requests answered
200 or the 503 page, no write lost, no stale rows after the switch."""

from __future__ import annotations

import html
import http.client
import io
import os
import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client
from psycopg import sql

from bench.server import gunicorn
from multidb import provisioning
from multidb.catalogue.models import Tenant
from shared import digest
from shared.cluster import Cluster
from shared.pages import ACCOUNT_CELL
from shared.tenancy import activate
from shared.testdata import generate_tenant
from tests.contract.test_faults import app_env, forget_connections
from tests.multidb.test_second_server import second_server  # noqa: F401 (a fixture)
from tests.plugins.tenants import VOLUMES

SLUG = "tenant-889"


def get(port: int, host: str) -> tuple[int, str, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/subtasks/", headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode(), response.getheader("Retry-After")
    finally:
        connection.close()


@pytest.fixture
def moving(live_db, strategy):
    if strategy.get_tenant(SLUG) or Tenant.objects.using("owner").filter(slug=SLUG).exists():
        strategy.drop_tenant(SLUG)
    data = generate_tenant(907, volumes=VOLUMES)
    data.slug = SLUG
    yield strategy.load_tenant(data)
    forget_connections()
    strategy.drop_tenant(SLUG)


def test_a_tenant_moves_to_another_server_and_back_under_load(
    moving,
    strategy,
    tenant_a,
    tenant_b,
    second_server,  # noqa: F811
):
    before = digest.of_tenant(strategy, moving)
    results: dict[str, list[tuple[float, int, set[str], str | None]]] = {}
    written: list[str] = []
    refused_writes: list[str] = []
    stop = threading.Event()

    def load(slug: str, name: str) -> None:
        mine = results.setdefault(slug, [])
        while not stop.is_set():
            status, body, retry = get(port, f"{slug}.localhost")
            shown = {html.unescape(a) for a in ACCOUNT_CELL.findall(body)}
            mine.append((time.monotonic(), status, shown, retry))

    def write() -> None:
        # As the app's runtime role, through this process's own lookups and connections.
        try:
            write_until_stopped()
        finally:
            forget_connections()  # this thread's own: they would outlive it, open

    def write_until_stopped() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            name = f"written during the move {n}"
            try:
                tenant = strategy.get_tenant(SLUG)
                with activate(tenant):
                    task = strategy.model("task").objects.order_by("pk").first()
                    strategy.model("subtask").objects.create(task=task, name=name)
                written.append(name)
            except Exception:
                refused_writes.append(name)
                forget_connections()
            time.sleep(0.02)

    with gunicorn("multidb.wsgi", app_env(), workers=2) as (port, _):
        threads = [
            threading.Thread(target=load, args=(t.slug, t.tenant.name))
            for t in (tenant_a, tenant_b)
        ] + [
            threading.Thread(target=load, args=(SLUG, moving.name)),
            threading.Thread(target=write),
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            out = io.StringIO()
            moved_at = time.monotonic()
            call_command(
                "movetenant",
                SLUG,
                "--to",
                f"127.0.0.1:{second_server.port}",
                stdout=out,
                verbosity=0,
            )
            switched = time.monotonic()
            time.sleep(3)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert out.getvalue().startswith(f"Moved {SLUG} to 127.0.0.1:{second_server.port}: ")

    # Other tenants: every request answered, with their own rows.
    for other in (tenant_a, tenant_b):
        answers = results[other.slug]
        assert len(answers) > 20
        assert {status for _, status, _, _ in answers} == {200}
        assert all(shown == {other.tenant.name} for _, _, shown, _ in answers)
    # The moving tenant: its own rows, or the 503 page with Retry-After; never a 500.
    answers = results[SLUG]
    assert {status for _, status, _, _ in answers} <= {200, 503}, answers
    assert all(shown == {moving.name} for _, status, shown, _ in answers if status == 200)
    assert all(retry for _, status, _, retry in answers if status == 503)
    closed = [status for at, status, _, _ in answers if moved_at <= at <= switched]
    assert 503 in closed, "no request came while it moved: the test proved nothing"
    late = [a for a in answers if a[0] > switched + 2]
    assert late and all(status == 200 for _, status, _, _ in late), "not served after the move"

    # Served from the new server, with every write that succeeded, and nothing of it is left
    # on the old one.
    tenant = Tenant.objects.using("owner").get(slug=SLUG)
    assert tenant.server == f"127.0.0.1:{second_server.port}"
    with psycopg.connect(second_server.admin_url(tenant.db_name)) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM tracker_subtask")}
    assert set(written) <= names
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT FROM pg_database WHERE datname = %s", [tenant.db_name])
        assert cursor.fetchone() is None
    moved = digest.of_tenant(strategy, strategy.get_tenant(SLUG))
    assert moved.counts()["subtask"] == before.counts()["subtask"] + len(set(written) & names)
    print(
        f"\nmove under load: {len(answers)} requests to the moving tenant, "
        f"{sum(1 for a in answers if a[1] == 503)} got 503; {len(written)} writes kept, "
        f"{len(refused_writes)} refused"
    )

    # And back to the catalogue's own server, which the catalogue records as no server.
    main = connections.settings["owner"]
    call_command(
        "movetenant",
        SLUG,
        "--to",
        f"{main['HOST']}:{main['PORT']}",
        stdout=io.StringIO(),
        verbosity=0,
    )
    tenant = Tenant.objects.using("owner").get(slug=SLUG)
    assert (tenant.db_host, tenant.db_port) == ("", None)
    assert digest.of_tenant(strategy, strategy.get_tenant(SLUG)) == moved


def test_a_superusers_session_on_the_source_neither_blocks_the_move_nor_goes_unsaid(
    moving,
    strategy,
    second_server,  # noqa: F811
):
    """A pooler's auth_query connection, say: the move does not end it, and when it keeps the
    source from being dropped, the command says where the tenant is and what is left."""
    where = os.environ.get("TENANCY_TEST_CLUSTER")
    if not where:
        pytest.skip("NOT RUN: needs the throwaway cluster of `python -m tests.run`")
    base, _, port = where.rpartition(":")
    main = Cluster(Path(base), int(port))
    to = f"127.0.0.1:{second_server.port}"
    with psycopg.connect(main.admin_url(moving.db_name), autocommit=True) as superuser:
        with pytest.raises(CommandError) as left:
            call_command("movetenant", SLUG, "--to", to, verbosity=0)
        assert superuser.execute("SELECT 1").fetchone() == (1,)  # not ended
    assert str(left.value).startswith(
        f"{SLUG} moved to {to} and is served from there, but its old database "
        f"{moving.db_name} on the catalogue's server could not be dropped ("
    )
    assert Tenant.objects.using("owner").get(slug=SLUG).server == to
    assert digest.of_tenant(strategy, strategy.get_tenant(SLUG)) == digest.of_data(
        generate_tenant(907, volumes=VOLUMES)
    )
    with psycopg.connect(main.admin_url(), autocommit=True) as conn:
        left_behind = sql.Identifier(moving.db_name)  # the database, and its role there
        conn.execute(sql.SQL("DROP DATABASE {}").format(left_behind))
        conn.execute(sql.SQL("DROP ROLE {}").format(left_behind))


def test_a_move_killed_midway_is_undone_by_abort(moving, strategy, second_server):  # noqa: F811
    """What a kill between closing the tenant and switching the catalogue leaves: the tenant
    closed, part of a copy on the target. --abort reopens it and drops the copy."""
    from multidb import moving as move

    tenant = Tenant.objects.using("owner").get(slug=SLUG)
    move._close(tenant)
    provisioning.create_database(tenant.db_name, "127.0.0.1", second_server.port)
    with psycopg.connect(second_server.admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(tenant.db_name), sql.Literal(move._mark(tenant))
            )
        )
    host = {"host": f"{SLUG}.localhost"}
    forget_connections()
    strategy.forget_tenant(SLUG)
    response = Client(raise_request_exception=False).get("/subtasks/", headers=host)
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    out = io.StringIO()
    call_command(
        "movetenant", SLUG, "--to", f"127.0.0.1:{second_server.port}", "--abort", stdout=out
    )
    assert out.getvalue().startswith(f"Reopened {SLUG} on the catalogue's server; dropped ")
    # Named another way, the server the tenant is on is still where it is: nothing dropped.
    main = connections.settings["owner"]
    out = io.StringIO()
    call_command("movetenant", SLUG, "--to", f"localhost:{main['PORT']}", "--abort", stdout=out)
    assert out.getvalue() == f"Reopened {SLUG} on the catalogue's server.\n"
    forget_connections()
    assert Client().get("/subtasks/", headers=host).status_code == 200
    with psycopg.connect(second_server.admin_url(), autocommit=True) as conn:
        for table, column in (("pg_database", "datname"), ("pg_roles", "rolname")):
            found = conn.execute(f"SELECT FROM {table} WHERE {column} = %s", [tenant.db_name])
            assert found.fetchone() is None, table
    # And the move itself works afterwards.
    call_command("movetenant", SLUG, "--to", f"127.0.0.1:{second_server.port}", verbosity=0,
                 stdout=io.StringIO())  # fmt: skip
    assert Tenant.objects.using("owner").get(slug=SLUG).server == f"127.0.0.1:{second_server.port}"


def test_refusals_are_one_line_and_move_nothing(moving, strategy, second_server):  # noqa: F811
    main = connections.settings["owner"]
    with pytest.raises(CommandError, match=f"^{SLUG} is on the catalogue's server already$"):
        call_command("movetenant", SLUG, "--to", f"{main['HOST']}:{main['PORT']}")
    with pytest.raises(CommandError, match=r"^there is no tenant tenant-nowhere$"):
        call_command("movetenant", "tenant-nowhere", "--to", f"127.0.0.1:{second_server.port}")
    with pytest.raises(CommandError, match=r"^--to must be HOST:PORT, not 'nowhere'$"):
        call_command("movetenant", SLUG, "--to", "nowhere")
    # A server that does not answer: the tenant is served where it was.
    with pytest.raises(CommandError, match=f"^moving {SLUG} failed: .*nothing moved$"):
        call_command("movetenant", SLUG, "--to", "127.0.0.1:1", verbosity=0)
    assert Tenant.objects.using("owner").get(slug=SLUG).server == "the catalogue's server"
    assert digest.of_tenant(strategy, strategy.get_tenant(SLUG)) == digest.of_data(
        generate_tenant(907, volumes=VOLUMES)
    )
