"""A tenant whose database lives on another PostgreSQL server than the catalogue."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test import Client

from multidb.catalogue.models import Tenant
from shared.cluster import Credentials, bootstrap, temporary_cluster
from shared.tenancy import activate


@pytest.fixture(scope="module")
def second_server():
    with temporary_cluster(prefix="tenancy-second-") as cluster:
        bootstrap(
            cluster.admin_url(),
            Credentials(
                settings.DATABASES["owner"]["PASSWORD"], settings.DATABASES["default"]["PASSWORD"]
            ),
        )
        yield cluster


def test_a_tenant_on_a_second_server(live_db, strategy, second_server, tmp_path):
    slug = "tenant-888"
    tenant = strategy.create_tenant(slug, "Far Away", host="127.0.0.1", port=second_server.port)
    try:
        assert Tenant.objects.get(slug=slug).server == f"127.0.0.1:{second_server.port}"
        with activate(strategy.get_tenant(slug)):
            project = strategy.model("project").objects.create(name="Remote project")
            task = strategy.model("task").objects.create(project=project, name="Remote task")
            strategy.model("subtask").objects.create(task=task, name="Remote subtask")
        response = Client().get("/subtasks/", headers={"host": f"{slug}.localhost"})
        assert response.status_code == 200
        assert "Remote subtask" in response.content.decode()

        import psycopg

        with psycopg.connect(second_server.admin_url(tenant.db_name)) as conn:
            assert conn.execute("SELECT name FROM tracker_subtask").fetchall() == [
                ("Remote subtask",)
            ]

        report = tmp_path / "report.json"
        call_command(
            "migratetenants", "--only", slug, "--report", str(report), stdout=io.StringIO()
        )
        names = {r["name"]: r["status"] for r in json.loads(report.read_text())["results"]}
        assert names[slug] == "current"
        assert f"_template@127.0.0.1:{second_server.port}" in names
    finally:
        strategy.drop_tenant(slug)
    import psycopg

    with psycopg.connect(second_server.admin_url()) as conn:
        gone = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [tenant.db_name]
        ).fetchall()
    assert gone == []


def test_a_stopped_tenant_server_is_a_503_for_that_tenant_only(
    live_db, strategy, second_server, tenant_a
):
    """The fault: one tenant's server goes away. Its tenant gets a clear 503, every other
    tenant goes on, and it is served again once the server is back, with no restart."""
    slug = "tenant-887"
    strategy.create_tenant(slug, "Sometimes Away", host="127.0.0.1", port=second_server.port)
    client = Client(raise_request_exception=False)
    host = f"{slug}.localhost"

    def get(host: str):  # a request, ended as a server ends it (the test Client does not)
        try:
            return client.get("/subtasks/", headers={"host": host})
        finally:
            connections.close_all()

    try:
        with activate(strategy.get_tenant(slug)):
            project = strategy.model("project").objects.create(name="Remote project")
            task = strategy.model("task").objects.create(project=project, name="Remote task")
            strategy.model("subtask").objects.create(task=task, name="Remote subtask")
        assert get(host).status_code == 200

        second_server.stop()
        try:
            for _ in range(3):  # not only the first request: the kept-alive connection is gone
                response = get(host)
                assert response.status_code == 503
                assert response["Retry-After"] == "5"
                assert f"The database of “{slug}” cannot be reached" in response.content.decode()
                other = get(tenant_a.host)
                assert other.status_code == 200
                assert tenant_a.tenant.name in other.content.decode()
        finally:
            second_server.start()

        response = get(host)
        assert response.status_code == 200
        assert "Remote subtask" in response.content.decode()
    finally:
        strategy.drop_tenant(slug)


def test_a_slug_made_again_elsewhere_by_another_process_is_served_from_there(
    live_db, strategy, second_server
):
    """This process keeps a connection alias per tenant. Another process drops the tenant and
    makes the slug again on another server: this process must follow the catalogue, which it
    can only do if its aliases are keyed by the tenant's permanent id, not by the slug."""
    import subprocess
    import sys

    from shared.env import ROOT
    from tests.contract.test_faults import app_env

    slug = "tenant-889"
    strategy.create_tenant(slug, "Here First")

    def manage(*args: str) -> None:
        command = [sys.executable, str(ROOT / "multidb" / "manage.py"), *args]
        result = subprocess.run(command, capture_output=True, text=True, env=app_env())
        assert result.returncode == 0, result.stderr

    try:
        with activate(strategy.get_tenant(slug)):
            strategy.model("project").objects.create(name="On the first server")
        manage("droptenant", slug, "--yes")
        manage("createtenant", slug, "--server", f"127.0.0.1:{second_server.port}")
        strategy.forget_tenant(slug)  # as 2 s later
        with activate(strategy.get_tenant(slug)):
            strategy.model("project").objects.create(name="On the second server")
            names = list(strategy.model("project").objects.values_list("name", flat=True))
        assert names == ["On the second server"]
    finally:
        strategy.drop_tenant(slug)
