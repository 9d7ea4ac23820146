"""docker compose cannot run everywhere the tests run, so the file itself is checked."""

from __future__ import annotations

import pytest
import yaml

from shared.env import ROOT


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


CITUS = {"citus-coordinator", "citus-worker-1", "citus-worker-2", "citus-setup"}


def test_services(compose):
    assert set(compose["services"]) == {"db", "setup", "app", "worker"} | CITUS
    assert compose["services"]["db"]["image"] == "postgres:17"
    # The Citus nodes start only in the citus profile (make up CLUSTER=citus).
    for name in CITUS:
        assert compose["services"][name]["profiles"] == ["citus"], name
    assert "profiles" not in compose["services"]["db"]


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


def test_setup_waits_for_a_healthy_db_and_the_app_for_the_setup(compose):
    services = compose["services"]
    assert services["setup"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        # In the citus profile, after the nodes are registered; elsewhere it does not exist.
        "citus-setup": {"condition": "service_completed_successfully", "required": False},
    }
    assert services["app"]["depends_on"] == {
        "setup": {"condition": "service_completed_successfully"}
    }


def test_strategy_switch(compose):
    setup, app = compose["services"]["setup"], compose["services"]["app"]
    assert setup["environment"]["STRATEGY"] == app["environment"]["STRATEGY"] == "${STRATEGY:-rls}"
    setup_command, app_command = " ".join(setup["command"]), " ".join(app["command"])
    assert '"$$STRATEGY/manage.py" migrate' in setup_command
    assert 'createtestdata --accounts "$$ACCOUNTS" --if-empty' in setup_command
    assert 'gunicorn "$$STRATEGY.wsgi" --bind 0.0.0.0:8000' in app_command
    assert "manage.py" not in app_command
    # Every strategy the Makefile accepts has the module the command names.
    makefile = (ROOT / "Makefile").read_text()
    strategies = next(line for line in makefile.splitlines() if line.startswith("STRATEGIES"))
    for name in strategies.split(":=")[1].split():
        assert (ROOT / name / "manage.py").exists()
        assert (ROOT / name / "wsgi.py").exists()


def test_only_the_setup_gets_the_owner_role(compose):
    setup = compose["services"]["setup"]["environment"]
    app = compose["services"]["app"]["environment"]
    assert setup["OWNER_DATABASE_URL"].startswith("postgresql://tenancy_owner:")
    assert setup["RUNTIME_DATABASE_URL"] == app["RUNTIME_DATABASE_URL"]
    assert app["RUNTIME_DATABASE_URL"].startswith("postgresql://tenancy_app:")
    # The web server holds no owner credentials in any form.
    assert not any("owner" in f"{k}={v}".lower() for k, v in app.items())
    bootstrap = (ROOT / "shared/db/bootstrap.sql").read_text()
    assert r"\set owner_role tenancy_owner" in bootstrap
    assert r"\set runtime_role tenancy_app" in bootstrap


def test_the_worker_runs_the_strategys_tasks_after_the_setup(compose):
    worker = compose["services"]["worker"]
    assert worker["depends_on"] == {"setup": {"condition": "service_completed_successfully"}}
    assert worker["environment"]["STRATEGY"] == "${STRATEGY:-rls}"
    assert '"$$STRATEGY/manage.py" runworker' in " ".join(worker["command"])
    # It claims tasks as the owner and runs them as the runtime role: it needs both.
    setup = compose["services"]["setup"]["environment"]
    for url in ("OWNER_DATABASE_URL", "RUNTIME_DATABASE_URL"):
        assert worker["environment"][url] == setup[url]
    assert "ports" not in worker


def test_a_secret_key_is_required_and_passwords_stay_off_command_lines(compose):
    for name in ("setup", "app", "worker"):
        assert compose["services"][name]["environment"]["DJANGO_SECRET_KEY"].startswith(
            "${DJANGO_SECRET_KEY:?"
        )
    script = (ROOT / "shared/db/compose-init.sh").read_text()
    assert "password" not in script.split("set -eu", 1)[1].lower()
    bootstrap = (ROOT / "shared/db/bootstrap.sql").read_text()
    assert r"\getenv owner_password OWNER_PASSWORD" in bootstrap
    assert r"\getenv runtime_password RUNTIME_PASSWORD" in bootstrap


def test_dockerfile_installs_the_lock_file():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    assert "USER app" in dockerfile


def test_the_citus_profile_is_a_coordinator_and_two_workers_bootstrapped_like_db(compose):
    services = compose["services"]
    nodes = ["citus-coordinator", "citus-worker-1", "citus-worker-2"]
    for name in nodes:
        node = services[name]
        assert node["image"].startswith("citusdata/citus:")
        assert "./shared/db/bootstrap.sql:/bootstrap/bootstrap.sql:ro" in node["volumes"]
        assert any("/docker-entrypoint-initdb.d/" in v for v in node["volumes"])
        assert "wal_level=logical" in node["command"]  # the rebalancer moves shards with it
        assert {"OWNER_PASSWORD", "RUNTIME_PASSWORD"} <= set(node["environment"])
    # Each node keeps its own data.
    data = [next(v for v in services[n]["volumes"] if v.endswith(":/var/lib/postgresql/data"))
            for n in nodes]  # fmt: skip
    assert len(set(data)) == 3
    setup = services["citus-setup"]
    assert set(setup["depends_on"]) == set(nodes)
    command = " ".join(setup["command"])
    assert "shared.citus register" in command
    assert "--coordinator=citus-coordinator:5432" in command
    assert command.count("--worker=") == 2
    # The app reaches the coordinator when make up says so, and sets the tenant for Citus.
    for name in ("setup", "app", "worker"):
        env = services[name]["environment"]
        assert "@${DB_HOST:-db}:5432/" in env["RUNTIME_DATABASE_URL"]
        assert env["TENANCY_CITUS"] == "${TENANCY_CITUS:-0}"


def test_make_up_with_citus_picks_the_profile_and_the_coordinator():
    makefile = (ROOT / "Makefile").read_text()
    assert "DB_HOST=citus-coordinator TENANCY_CITUS=1 COMPOSE_PROFILES=citus" in makefile
