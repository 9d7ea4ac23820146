"""Environment for the settings: the process environment, then the git-ignored ``.env`` file."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip().strip("'\"")
    return values


_file = read_env_file(Path(os.environ.get("TENANCY_ENV_FILE", ROOT / ".env")))


class MissingSetting(ImproperlyConfigured):
    """A setting the user must provide; manage.py prints it as one line."""


def env(name: str, default: str = "") -> str:
    return os.environ.get(name) or _file.get(name) or default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    return default if not value else value.lower() in {"1", "true", "yes", "on"}


def database(url_variable: str, dbname: str, **extra) -> dict:
    """Django's DATABASES entry for a ``postgresql://user:password@host:port/[dbname]`` URL.

    The URL names the server and the role; a strategy's settings name its own database, which a
    path in the URL overrides.
    """
    url = env(url_variable)
    if not url:
        raise MissingSetting(
            f"{url_variable} is not set: run `make up` (it writes .env), or see .env.example"
        )
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or dbname,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        **extra,
    }


# Set by the wsgi and asgi modules before the settings load: a web server process.
SERVING = "TENANCY_SERVING"
SERVER_COMMANDS = (["runserver"], ["testserver"], ["runserver_plus"])


def owner_database(dbname: str, **extra) -> dict[str, dict]:
    """The ``owner`` entry of DATABASES: migrations, provisioning and cross-tenant commands.

    A web server serves with the runtime role alone, so it gets none even where
    ``OWNER_DATABASE_URL`` is set (as in ``.env``): no code running in it can reach a role
    that bypasses row-level security or creates databases. Nor does a process without the
    variable; a command that needs the owner then says so in one line.
    """
    # Django's own web servers too, however they are started (manage.py, django-admin,
    # python -m django): the subcommand is always the first argument.
    serving = os.environ.get(SERVING) or sys.argv[1:2] in SERVER_COMMANDS
    if serving or not env("OWNER_DATABASE_URL"):
        return {}
    return {"owner": database("OWNER_DATABASE_URL", dbname, **extra)}
