"""Refuse to serve in a configuration where a tenant could outlive its transaction."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from shared.db import RUNTIME_ALIAS, connect_directly

POOLING_MODES = ("session", "transaction")


def pooling_problems() -> list[checks.Error]:
    mode = settings.TENANCY_RUNTIME_POOLING
    if mode not in POOLING_MODES:
        return [
            checks.Error(
                f"RUNTIME_DATABASE_POOLING is {mode!r}; use one of {', '.join(POOLING_MODES)}",
                id="tenancy.E001",
            )
        ]
    if mode != "transaction":
        return []
    from shared.strategy import get_strategy

    errors = []
    if not settings.DATABASES[RUNTIME_ALIAS].get("DISABLE_SERVER_SIDE_CURSORS"):
        errors.append(
            checks.Error(
                "server-side cursors are enabled behind a transaction pooler: a cursor "
                "declared on one server connection would be fetched from another",
                hint="Set DISABLE_SERVER_SIDE_CURSORS on the runtime database.",
                id="tenancy.E002",
            )
        )
    strategy = get_strategy()
    if not strategy.holds_tenant_per_transaction():
        engine = settings.DATABASES[RUNTIME_ALIAS]["ENGINE"]
        errors.append(
            checks.Error(
                f"the {strategy.name} strategy's runtime backend ({engine}) keeps the tenant in "
                "the database session, which a transaction pooler hands to other clients",
                hint="Use the strategy's own backend, or a session-mode pooler.",
                id="tenancy.E003",
            )
        )
    return errors


# Before 15, every role could create objects in the public schema of every database.
OLDEST_SERVER = 150000


def server_problems(facts: tuple[int, bool] | None = None) -> list[checks.Error]:
    """What the runtime connection's server allows that it must not. ``facts``: its
    ``server_version_num`` and whether the runtime role may create temporary tables in its
    database, read from the runtime connection when not given."""
    if facts is None:
        facts = _server_facts()
    if facts is None:
        return []
    version, temporary = facts
    errors = []
    if version < OLDEST_SERVER:
        errors.append(
            checks.Error(
                f"PostgreSQL {version // 10000} is too old: 15 or newer is needed (before 15, "
                "every role could create objects in the public schema)",
                id="tenancy.E004",
            )
        )
    if temporary:
        errors.append(
            checks.Error(
                "the runtime role may create temporary tables: one would sit in front of a "
                "tenant's table of that name for every later request on the same pooled "
                "session, and in front of what a SECURITY DEFINER function reads",
                hint="REVOKE TEMPORARY ON DATABASE ... FROM PUBLIC, as shared/db/bootstrap.sql "
                "does.",
                id="tenancy.E005",
            )
        )
    return errors


def _server_facts() -> tuple[int, bool] | None:
    """None when the server cannot be reached now: its requests get the 503 page until it is
    back, and a server that starts meanwhile is not refused for it."""
    import psycopg

    try:
        return server_facts()
    except psycopg.OperationalError:
        return None


@functools.cache
def server_facts() -> tuple[int, bool]:
    """The runtime connection's ``server_version_num``, and whether its role may create
    temporary tables: read once per process (neither changes while it runs).

    On a connection of its own, closed at once, never the pool's: a server that forks its
    workers after loading the application (gunicorn --preload, uWSGI) would otherwise hand
    every worker the same PostgreSQL session. (Being plain psycopg, it also runs where an ASGI
    server loads the middleware inside its event loop, which Django's connections refuse.)
    """

    with connect_directly(RUNTIME_ALIAS, connect_timeout=10, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int, "
            "has_database_privilege(current_database(), 'TEMPORARY')"
        ).fetchone()
    assert row is not None
    return int(row[0]), bool(row[1])


def check_pooling(app_configs: object = None, **kwargs: object) -> Sequence[checks.CheckMessage]:
    return pooling_problems()


def refuse_unsafe_configuration() -> None:
    """Called as the request handler loads: no server starts in an unsafe configuration."""
    if errors := pooling_problems() + server_problems():
        lines = "\n".join(f"  {e.id}: {e.msg}" for e in errors)
        raise ImproperlyConfigured(f"refusing to serve; tenants could leak:\n{lines}")
