"""docker compose cannot run everywhere the tests run, so the file itself is checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services(compose):
    assert set(compose["services"]) == {"db", "app"}
    assert compose["services"]["db"]["image"] == "postgres:17"


def test_db_runs_the_same_bootstrap_sql_as_the_local_cluster(compose):
    volumes = compose["services"]["db"]["volumes"]
    assert "./shared/db/bootstrap.sql:/bootstrap/bootstrap.sql:ro" in volumes
    init = next(v for v in volumes if "/docker-entrypoint-initdb.d/" in v)
    script = ROOT / init.split(":")[0]
    assert script.exists()
    assert "/bootstrap/bootstrap.sql" in script.read_text()
    env = compose["services"]["db"]["environment"]
    assert {"OWNER_PASSWORD", "RUNTIME_PASSWORD"} <= set(env)


def test_db_healthcheck_waits_for_the_bootstrapped_database(compose):
    check = compose["services"]["db"]["healthcheck"]
    command = " ".join(check["test"])
    assert "pg_isready" in command
    assert "-h 127.0.0.1" in command  # TCP: not the image's init-time server
    assert "tenancy_rls" in command
    assert check["retries"] >= 10


def test_ports_are_published_on_loopback_only(compose):
    assert compose["services"]["app"]["ports"] == ["127.0.0.1:${PORT:-8000}:8000"]
    assert compose["services"]["db"]["ports"] == ["127.0.0.1:${PGPORT:-54320}:5432"]


def test_app_waits_for_a_healthy_db(compose):
    assert compose["services"]["app"]["depends_on"] == {"db": {"condition": "service_healthy"}}


def test_strategy_switch(compose):
    app = compose["services"]["app"]
    assert app["environment"]["STRATEGY"] == "${STRATEGY:-rls}"
    command = " ".join(app["command"])
    assert '"$$STRATEGY/manage.py" migrate' in command
    assert 'createtestdata --accounts "$$ACCOUNTS" --if-empty' in command
    assert 'gunicorn "$$STRATEGY.wsgi" --bind 0.0.0.0:8000' in command
    # Every strategy the Makefile accepts has the module the command names.
    makefile = (ROOT / "Makefile").read_text()
    strategies = next(line for line in makefile.splitlines() if line.startswith("STRATEGIES"))
    for name in strategies.split(":=")[1].split():
        assert (ROOT / name / "manage.py").exists()
        assert (ROOT / name / "wsgi.py").exists()


def test_app_uses_both_roles(compose):
    env = compose["services"]["app"]["environment"]
    assert env["OWNER_DATABASE_URL"].startswith("postgresql://tenancy_owner:")
    assert env["RUNTIME_DATABASE_URL"].startswith("postgresql://tenancy_app:")
    bootstrap = (ROOT / "shared/db/bootstrap.sql").read_text()
    assert r"\set owner_role tenancy_owner" in bootstrap
    assert r"\set runtime_role tenancy_app" in bootstrap


def test_dockerfile_installs_the_lock_file():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    assert "USER app" in dockerfile
