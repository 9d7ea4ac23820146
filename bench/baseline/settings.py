"""Settings of the unsafe baseline (see bench/baseline/__init__.py): what a first version has."""

import os
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

BASELINE = os.environ["BASELINE"]  # "shared" or "multidb"
DEBUG = True  # as the talk's app ran: every query is kept in connection.queries
SECRET_KEY = "baseline"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bench.baseline.urls"
INSTALLED_APPS = ["bench.baseline"]
MIDDLEWARE: list[str] = []
USE_TZ = True
# The strategies' own template of the page, so that the pages compare byte for byte.
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parents[2] / "shared" / "templates"],
    }
]


def _database(url: str, name: str) -> dict[str, object]:
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": parts.username,
        "PASSWORD": parts.password,
        "HOST": parts.hostname,
        "PORT": str(parts.port),
        "CONN_MAX_AGE": None,  # one persistent connection per alias per worker
    }


if BASELINE == "shared":
    # The rls data, in the control copy whose policies are off, read by the runtime role.
    DATABASES = {"default": _database(os.environ["RUNTIME_DATABASE_URL"], "tenancy_rls_control")}
else:
    # Every tenant database in settings, found in the catalogue at start, logged in as the
    # owner: one role that may read every tenant.
    owner = os.environ["OWNER_DATABASE_URL"]
    with psycopg.connect(owner.rstrip("/") + "/tenancy_multidb") as catalogue:
        rows = catalogue.execute(
            "SELECT slug, name, db_name FROM catalogue_tenant WHERE state = 'ready'"
        ).fetchall()
    TENANTS = {slug: name for slug, name, _ in rows}
    DATABASES = {
        "default": _database(owner, "tenancy_multidb"),
        **{slug: _database(owner, db_name) for slug, _, db_name in rows},
    }
