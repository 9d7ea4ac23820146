"""Refuse to serve in a configuration where a tenant could outlive its transaction."""

from __future__ import annotations

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


def check_pooling(app_configs=None, **kwargs):
    return pooling_problems()


def refuse_unsafe_configuration() -> None:
    """Called as the request handler loads: no server starts in an unsafe configuration."""
    if errors := pooling_problems():
        lines = "\n".join(f"  {e.id}: {e.msg}" for e in errors)
        raise ImproperlyConfigured(f"refusing to serve; tenants could leak:\n{lines}")
