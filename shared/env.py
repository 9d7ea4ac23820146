"""Environment for the settings: the process environment, then the git-ignored ``.env`` file."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines, with the quoting and escapes of shell-style .env files. A ``$`` is
    kept as it is: passwords and URLs are never expanded."""
    if not path.exists():
        return {}
    values = dotenv_values(path, interpolate=False)
    return {key: value for key, value in values.items() if value is not None}


_file = read_env_file(Path(os.environ.get("TENANCY_ENV_FILE", ROOT / ".env")))


class SettingError(ImproperlyConfigured):
    """A setting the user must provide or correct; manage.py prints it as one line."""


def env(name: str, default: str = "") -> str:
    return os.environ.get(name) or _file.get(name) or default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    return default if not value else value.lower() in {"1", "true", "yes", "on"}


# What a database URL may say beyond the server and the role (?sslmode=require): how libpq
# connects, never session settings (options=-c ...), which would outlive transactions.
URL_OPTIONS = frozenset(
    {"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl", "connect_timeout",
     "application_name", "target_session_attrs", "channel_binding", "gssencmode"}
)  # fmt: skip


# Seconds a connection may take to open, unless the URL says (?connect_timeout=N). libpq would
# wait for ever, and a pooler can hold a login that cannot succeed: PgBouncer before 1.19 runs
# its auth_query in the database asked for, so a login to a database that is gone (a multidb
# tenant dropped a moment ago) waits for its query_wait_timeout, two minutes by default.
CONNECT_TIMEOUT = 5


def database(url_variable: str, dbname: str, **extra: Any) -> dict[str, Any]:
    """Django's DATABASES entry for a ``postgresql://user:password@host:port/[dbname]`` URL.

    The URL names the server and the role; a strategy's settings name its own database, which a
    path in the URL overrides.
    """
    url = env(url_variable)
    if not url:
        raise SettingError(
            f"{url_variable} is not set: run `make up` (it writes .env), or see .env.example"
        )
    try:
        parsed: dict[str, Any] = dict(dj_database_url.parse(url))
    except ValueError as exc:
        raise SettingError(f"{url_variable} is not a database URL: {exc}") from None
    if parsed["ENGINE"] != "django.db.backends.postgresql":
        raise SettingError(f"{url_variable} must be a postgresql:// URL")
    if unknown := sorted(set(parsed.get("OPTIONS", {})) - URL_OPTIONS):
        raise SettingError(
            f"{url_variable}: {', '.join(unknown)} cannot be set in the URL (it may say how "
            f"to connect: {', '.join(sorted(URL_OPTIONS))})"
        )
    return {
        **parsed,
        "NAME": parsed["NAME"] or dbname,
        "HOST": parsed["HOST"] or "127.0.0.1",
        "PORT": str(parsed["PORT"] or 5432),
        **extra,
        # The URL's own options (?sslmode=require) and the strategy's, which win.
        "OPTIONS": {
            "connect_timeout": CONNECT_TIMEOUT,
            **parsed.get("OPTIONS", {}),
            **extra.get("OPTIONS", {}),
        },
    }


# Set by the wsgi and asgi modules before the settings load: a web server process.
SERVING = "TENANCY_SERVING"
SERVER_COMMANDS = (["runserver"], ["testserver"], ["runserver_plus"])


def owner_database(dbname: str, **extra: Any) -> dict[str, dict[str, Any]]:
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
