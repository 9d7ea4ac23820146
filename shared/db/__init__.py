"""The two connections every strategy has: the runtime role (what the web server uses) and the
owner role (migrations, provisioning, cross-tenant work)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

RUNTIME_ALIAS = "default"
OWNER_ALIAS = "owner"


def require_owner() -> None:
    """For commands that need the owner role: one line when it is not configured (a web
    server never has it; see shared.env.owner_database)."""
    from django.db import connections

    from shared.env import SettingError

    if OWNER_ALIAS not in connections.settings:
        raise SettingError(
            "this command needs the owner role: set OWNER_DATABASE_URL (the web server "
            "never gets it; see .env.example)"
        )


def connect_directly(alias: str, **overrides: Any) -> psycopg.Connection[tuple[Any, ...]]:
    """A psycopg connection with ``alias``'s role and server, outside Django and its pool
    (``overrides``: psycopg's keyword arguments, such as ``dbname`` or ``host``)."""
    import psycopg
    from django.db import connections

    from shared.env import URL_OPTIONS

    conf = connections.settings[alias]
    params = {
        # What libpq itself reads from the URL's options (TLS, timeouts), as Django's own
        # connections get them; not Django's or the pool's.
        **{k: v for k, v in conf.get("OPTIONS", {}).items() if k in URL_OPTIONS},
        "host": conf["HOST"],
        "port": conf["PORT"],
        "user": conf["USER"],
        "password": conf["PASSWORD"],
        "dbname": conf["NAME"],
    }
    return psycopg.connect(**(params | overrides))
