"""Refuse to serve in a configuration where a tenant could outlive its transaction."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from shared.db import RUNTIME_ALIAS

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


def server_problems(version: int | None = None) -> list[checks.Error]:
    """``version``: the server's ``server_version_num``, read from the runtime connection when
    not given."""
    if version is None:
        version = _server_version()
    if version is None or version >= OLDEST_SERVER:
        return []
    major = version // 10000
    return [
        checks.Error(
            f"PostgreSQL {major} is too old: 15 or newer is needed (before 15, every role "
            "could create objects in the public schema)",
            id="tenancy.E004",
        )
    ]


def _server_version() -> int | None:
    """None when the server cannot be reached now: its requests get the 503 page until it is
    back, and a server that starts meanwhile is not refused for it."""

    def read() -> int | None:
        from django.db import OperationalError, connections

        try:
            return connections[RUNTIME_ALIAS].pg_version
        except OperationalError:
            return None

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return read()
    # An ASGI server loads the middleware inside its event loop, where Django refuses to touch
    # the database: ask from a thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(read).result()


def check_pooling(app_configs=None, **kwargs):
    return pooling_problems()


def refuse_unsafe_configuration() -> None:
    """Called as the request handler loads: no server starts in an unsafe configuration."""
    if errors := pooling_problems() + server_problems():
        lines = "\n".join(f"  {e.id}: {e.msg}" for e in errors)
        raise ImproperlyConfigured(f"refusing to serve; tenants could leak:\n{lines}")
