"""Which database a query goes to, and how many tenant connections stay open.

Each tenant's database gets a connection alias the first time it is needed (``tenant:<id>``
for the runtime role, ``owner:<id>`` for the owner role, by the catalogue's id), built from
the ``default`` or ``owner`` settings with the tenant's database name and server. A tenant
created while the server runs is therefore served at once, with nothing to restart.

The runtime role's connections to tenant databases are warm: when a request ends, its
connection goes back to the process's pool (multidb.db.warm), which every thread shares and
which holds at most ``TENANCY_TENANT_CONNECTIONS`` of them, giving back the least recently used
when it needs room. A thread that uses many tenants outside requests (a command) holds at most
``HELD_PER_THREAD`` tenant connections at once, runtime and owner aliases alike; the owner's are
closed, never kept, because a database with a session open cannot be a template or be dropped.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any, Protocol, cast

from django.db import connections
from django.db.models import Model

from multidb.credentials import role_password
from multidb.db.warm import pool
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.tenancy import get_current_tenant

TENANT_APPS = frozenset({"tracker"})
RUNTIME_PREFIX = "tenant:"
OWNER_PREFIX = "owner:"
# Tenant connections one thread holds at once outside requests (requests hold one).
HELD_PER_THREAD = 4
_local = threading.local()


class NoTenantError(Exception):
    pass


class Placed(Protocol):
    """Where a tenant's database is: the catalogue's Tenant, or provisioning's Place."""

    @property
    def pk(self) -> object: ...
    @property
    def db_name(self) -> str: ...
    @property
    def db_host(self) -> str: ...
    @property
    def db_port(self) -> int | None: ...
    @property
    def role_generation(self) -> int: ...


def alias_for(tenant: Placed, *, owner: bool = False) -> str:
    # Keyed by the catalogue's id, never the slug: a slug dropped and created again (perhaps
    # on another server) is another tenant, and must not find the old one's settings here.
    alias = f"{OWNER_PREFIX if owner else RUNTIME_PREFIX}{tenant.pk}"
    base = connections.settings[OWNER_ALIAS if owner else RUNTIME_ALIAS]
    where = {
        "NAME": tenant.db_name,
        "HOST": tenant.db_host or base["HOST"],
        "PORT": str(tenant.db_port or base["PORT"]),
    }
    if not owner:  # the tenant's own role (multidb.provisioning), never one shared by all
        password = role_password(tenant.db_name, tenant.role_generation)
        where |= {
            "USER": tenant.db_name,
            "PASSWORD": password,
            # The statement timeout is the tenant role's setting, which a session gets when it
            # opens (multidb.provisioning.apply_limits): a changed limit needs new connections,
            # and the warm pool keys its connections by this too (multidb.db.base).
            "LIMITS": getattr(tenant, "statement_timeout", None),
        }
    known = connections.settings.get(alias)
    if known is not None and any(known.get(k) != v for k, v in where.items()):
        _unregister(alias)  # moved, new limits or password: never keep the old connection
        known = None
    if known is None:
        conf = copy.deepcopy(base)
        options = dict(conf.get("OPTIONS", {}))
        options.pop("pool", None)  # one pool per tenant would multiply connections by tenants
        if not owner:
            # pg_stat_activity names the tenant of each session (PgBouncer passes it on).
            options["application_name"] = getattr(tenant, "slug", tenant.db_name)
        conf.update(
            **where,
            OPTIONS=options,
            ATOMIC_REQUESTS=False,  # per-request atomicity: see multidb.middleware
            # Given back at the end of each request: to the warm pool (runtime), or closed.
            CONN_MAX_AGE=0,
            TEST={**conf.get("TEST", {}), "NAME": tenant.db_name},
        )
        if not owner:
            conf["ENGINE"] = "multidb.db"
        connections.settings[alias] = conf
    _used(alias)
    return alias


def forget(tenant: Placed) -> None:
    """Close and unregister a tenant's aliases (its database is being dropped)."""
    for alias in (f"{RUNTIME_PREFIX}{tenant.pk}", f"{OWNER_PREFIX}{tenant.pk}"):
        _unregister(alias)


def _unregister(alias: str) -> None:
    if alias in connections.settings:
        name = connections.settings[alias]["NAME"]
        connections[alias].close()
        del connections[alias]
        del connections.settings[alias]
        # And the idle ones other threads gave back: nobody asks for this key again.
        pool.discard(lambda key: ("dbname", name) in cast(tuple[object, ...], key))
    _recent().pop(alias, None)


def _recent() -> OrderedDict[str, None]:
    if not hasattr(_local, "recent"):
        _local.recent = OrderedDict()
    recent: OrderedDict[str, None] = _local.recent
    return recent


def _used(alias: str) -> None:
    recent = _recent()
    recent[alias] = None
    recent.move_to_end(alias)
    limit = HELD_PER_THREAD
    for old in list(recent)[:-limit] if len(recent) > limit else []:
        connection = connections[old]
        if connection.in_atomic_block:
            continue  # in use right now; it will be closed on a later call
        connection.close()
        # And the thread forgets the wrapper: Django visits every wrapper a thread has made
        # at the start and end of each request, which would grow with the tenants it served.
        del connections[old]
        del recent[old]


class TenantRouter:
    """Tenant models go to the current tenant's database, and never anywhere else."""

    def _tenant_alias(self, model: type[Model], hints: dict[str, Any]) -> str | None:
        if model._meta.app_label not in TENANT_APPS:
            return None  # the catalogue, in `default`
        tenant = get_current_tenant()
        if tenant is None:
            raise NoTenantError(
                f"{model.__name__} lives in a tenant's database and no tenant is active: run "
                "the query inside shared.tenancy.activate(tenant)"
            )
        alias = alias_for(cast(Placed, tenant))
        instance = hints.get("instance")
        db = getattr(getattr(instance, "_state", None), "db", None)
        # Compared by name: registering the owner alias here would also count it against what
        # this thread holds, on every query.
        if db is not None and db not in (alias, f"{OWNER_PREFIX}{tenant.pk}"):
            raise NoTenantError(
                f"this {model.__name__} was loaded from {db} but {tenant.slug} is active"
            )
        return db or alias

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return self._tenant_alias(model, hints)

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return self._tenant_alias(model, hints)

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return obj1._state.db == obj2._state.db

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        # Schema changes run as the owner role only: tenant apps in tenant databases (and the
        # template), the catalogue in the catalogue database.
        if app_label in TENANT_APPS:
            return db.startswith(OWNER_PREFIX)
        return db == OWNER_ALIAS
