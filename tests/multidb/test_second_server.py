"""A tenant whose database lives on another PostgreSQL server than the catalogue."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from multidb.catalogue.models import Tenant
from shared.localdb import Cluster, bootstrap, free_port
from shared.tenancy import activate


@pytest.fixture(scope="module")
def second_server():
    base = Path(tempfile.mkdtemp(prefix="tenancy-second-"))
    base.chmod(0o755)
    cluster = Cluster(base / "pg", free_port())
    cluster.init()
    cluster.start()
    bootstrap(
        cluster.admin_url(),
        settings.DATABASES["owner"]["PASSWORD"],
        settings.DATABASES["default"]["PASSWORD"],
    )
    yield cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


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
