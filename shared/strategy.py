"""The one interface through which shared code (views, commands, tests, benchmarks) uses
a strategy: everything they use is declared here, and each strategy's class types its
overrides to match (mypy checks them against it)."""

from __future__ import annotations

import functools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django.db.models import Model, QuerySet
    from django_tasks_db.models import DBTaskResult

    from shared.migrating import Unit
    from shared.tenancy import TenantLike
    from shared.testdata import TenantData

    # load_tenant's check of the rows it loaded: (tenant, alias of the connection holding them).
    Verify = Callable[[TenantLike, str], None]

TABLES = ("user", "project", "task", "subtask")
_found_lock = threading.Lock()  # Strategy.find_tenant's memory, shared by a process's threads


class TenantExists(Exception):
    """Creating a tenant whose slug the registry already holds: nothing was changed."""


class ServerRefused(ValueError):
    """A server was named for a tenant by a strategy that keeps every tenant on one server."""


class MoveRefused(ValueError):
    """A tenant cannot be moved as asked; nothing was moved."""


@dataclass(frozen=True)
class Moved:
    server: str  # where the tenant is now
    rows: int
    closed_seconds: float  # how long its requests got the 503 page


class Strategy(ABC):
    name: ClassVar[str]
    # Whether create_tenant() takes the server for the tenant's data (multidb does).
    places_tenants_on_servers: ClassVar[bool] = False

    @abstractmethod
    def get_tenant(self, slug: str) -> TenantLike | None:
        """The tenant with this slug, looked up with the runtime role's rights."""

    def find_tenant(self, slug: str) -> TenantLike | None:
        """``get_tenant`` for Host routing: a tenant found is remembered by this process for
        ``TENANCY_TENANT_CACHE_SECONDS``, which saves a round trip on most requests; a miss
        always asks, so a new tenant is served at once.

        What a remembered tenant that another process dropped meanwhile costs: in rls and
        schemas, nothing, because the statement that sets the tenant for a transaction checks
        that it still exists with the same id (a 404 otherwise). multidb has no such statement:
        until the entry expires, a dropped tenant's requests fail (its database is gone: the
        503 page; behind PgBouncer, after the connect timeout: shared.env), and a slug made
        again meanwhile is served from its new database under the old name and id (so also
        under the old id's cache keys). Never the dropped tenant's rows to anyone: they went
        with its database.
        """
        seconds = settings.TENANCY_TENANT_CACHE_SECONDS
        with _found_lock:
            hit = self._found.get(slug)
        if hit is not None and time.monotonic() - hit[0] < seconds:
            return hit[1]
        tenant = self.get_tenant(slug)
        with _found_lock:
            if tenant is None:
                self._found.pop(slug, None)
            elif seconds > 0:
                self._found[slug] = (time.monotonic(), tenant)
        return tenant

    def forget_tenant(self, slug: str) -> None:
        """Drop what ``find_tenant`` remembers of ``slug`` (it was just dropped or changed)."""
        with _found_lock:
            self._found.pop(slug, None)

    @property
    def _found(self) -> dict[str, tuple[float, TenantLike]]:
        found: dict[str, tuple[float, TenantLike]] = self.__dict__.setdefault("_found_by_slug", {})
        return found

    def activation(self, tenant: TenantLike | None) -> AbstractContextManager[object]:
        """What activating ``tenant`` does beyond making it current (the ContextVar)."""
        return nullcontext()

    @abstractmethod
    def list_tenants(self) -> Sequence[TenantLike]:
        """Every tenant, ordered by slug."""

    def index_tenants(self) -> Sequence[TenantLike]:
        """What the bare host's index lists (only while ``TENANCY_INDEX`` is on), read with
        the runtime role's rights."""
        return self.list_tenants()

    @abstractmethod
    def create_tenant(
        self, slug: str, name: str, *, host: str = "", port: int | None = None
    ) -> TenantLike:
        """Create an empty tenant. Raises ``SlugRefused`` (see ``check_slug``) or
        ``TenantExists`` before anything is created, and never drops or takes over anything
        it did not create in the same call. ``host`` and ``port`` name the server for its
        data where ``places_tenants_on_servers``; elsewhere naming one raises
        ``ServerRefused``."""

    def refuse_server(self, host: str, port: int | None) -> None:
        if (host or port) and not self.places_tenants_on_servers:
            raise ServerRefused(
                f"the {self.name} strategy keeps every tenant on one server; "
                "a server cannot be chosen"
            )

    def check_slug(self, slug: str) -> None:
        """Raise ``shared.slugs.SlugRefused`` unless ``slug`` may name a new tenant."""
        from shared.slugs import check_slug

        check_slug(slug, self.slug_taken)

    def slug_taken(self, slug: str) -> bool:
        """Whether the server has something by a name ``slug`` maps onto, right now (one
        query, whatever the number of tenants). Here: a role, since a schema named after a role
        is on that role's default ``search_path`` (``"$user", public``)."""
        from django.db import connections

        from shared.db import OWNER_ALIAS
        from shared.slugs import identifier

        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT FROM pg_roles WHERE replace(rolname, '-', '_') = %s)",
                [identifier(slug)],
            )
            row = cursor.fetchone()
            return bool(row and row[0])

    @abstractmethod
    def drop_tenant(self, slug: str) -> None:
        """Drop the tenant with everything it holds (its rows, schema or database)."""

    @abstractmethod
    def load_tenant(
        self, data: TenantData, *, commit: bool = True, verify: Verify | None = None
    ) -> TenantLike:
        """Create the tenant and bulk-load its rows, all or nothing. Refuses a slug as
        ``create_tenant`` does. ``verify(tenant, alias)`` runs once the rows are in, before
        they are committed, with the tenant active and ``alias`` the connection that holds
        them; if it raises, nothing is left."""

    @abstractmethod
    def remains(self, tenant: TenantLike) -> list[str]:
        """What the privileged path still finds of ``tenant`` (rows, a schema, a database, a
        role, a catalogue entry), described for an operator: empty once it is erased."""

    def tenant_lock(self, slug: str) -> AbstractContextManager[object]:
        """Held while a tenant is erased: where a tenant's data may move (multidb), the lock its
        moves take, so that an erase never looks in the place the data just left."""
        return nullcontext()

    def reclaim(self) -> None:
        """Make the space of deleted rows reusable, after a tenant's rows were deleted (where
        they share tables with other tenants' rows); by default there is nothing to do."""
        return None

    def move_tenant(
        self, slug: str, host: str, port: int, progress: Callable[[str], None]
    ) -> Moved:
        """Move the tenant's data to the server at ``host``:``port``, where
        ``places_tenants_on_servers``."""
        raise self._one_server()

    def abort_move(self, slug: str, host: str, port: int) -> str:
        """Undo what a move of ``slug`` to ``host``:``port`` that did not finish left: the
        tenant reopened where it is, nothing of it on the other server."""
        raise self._one_server()

    def _one_server(self) -> ServerRefused:
        return ServerRefused(
            f"the {self.name} strategy keeps every tenant on one server: move a tenant to "
            "another server or strategy with exporttenant, then importtenant there "
            '(README, "A tenant\'s life")'
        )

    @contextmanager
    def tenant_alias(self, tenant: TenantLike) -> Iterator[str]:
        """The connection of the privileged path to ``tenant``'s rows (read with the tenant
        active), for the block."""
        from shared.db import OWNER_ALIAS

        yield OWNER_ALIAS

    @abstractmethod
    def migration_units(
        self, *, only: set[str] | None = None, retry_failed: bool = False
    ) -> tuple[list[Unit], list[Unit]]:
        """What `migratetenants` migrates: units to migrate first, one at a time (templates),
        then units that may be migrated in parallel."""

    @abstractmethod
    def subtask_list(self) -> QuerySet[Any]:
        """The active tenant's subtasks for the list page, ordered, each with ``account_name``
        and ``task.project`` loaded."""

    @abstractmethod
    def row_counts(self, slugs: Sequence[str] | None = None) -> dict[str, int]:
        """Rows per table (``TABLES``) over the given tenants (all when ``None``), read through
        the privileged path."""

    def holds_tenant_per_transaction(self) -> bool:
        """Whether activation lasts no longer than a transaction on the runtime connection, so
        that PgBouncer in transaction mode cannot carry it to another client."""
        from django.db import connections

        from shared.db import RUNTIME_ALIAS
        from shared.db.per_transaction import PerTransactionSetting

        return isinstance(connections[RUNTIME_ALIAS], PerTransactionSetting)

    def save_task(
        self, row: DBTaskResult[Any, Any], tenant: TenantLike | None, enqueued: Callable[[], None]
    ) -> None:
        """Write a task's queue row (shared.tasks), then call ``enqueued``. Here: on the
        runtime connection, inside whatever transaction it has open, so the task is enqueued
        only if that transaction commits."""
        from shared.db import RUNTIME_ALIAS

        row.save(using=RUNTIME_ALIAS, force_insert=True)
        enqueued()

    def task_alias(self, tenant: TenantLike | None) -> str | None:
        """The runtime connection that serves ``tenant`` (None: none in particular)."""
        from shared.db import RUNTIME_ALIAS

        return RUNTIME_ALIAS

    def task_atomic(self, tenant: TenantLike | None) -> AbstractContextManager[object]:
        """The transaction a task runs in, on the runtime connection that serves ``tenant``
        (which is active): a task's writes are all or nothing, like a request's."""
        from django.db import transaction

        alias = self.task_alias(tenant)
        return nullcontext() if alias is None else transaction.atomic(using=alias)

    def set_limits(
        self,
        slug: str,
        *,
        statement_timeout: int | None = None,
        connection_limit: int | None = None,
    ) -> None:
        """Change a tenant's limits (``None``: leave as is). The statement timeout applies from
        the tenant's next transaction; a connection limit only where a tenant has a database
        of its own (multidb)."""
        from shared.db import OWNER_ALIAS

        if connection_limit is not None:
            raise ServerRefused(
                f"the {self.name} strategy has no database per tenant: a tenant's connections "
                "cannot be limited apart from the others'"
            )
        if statement_timeout is not None:
            self.tenant_model()._default_manager.using(OWNER_ALIAS).filter(slug=slug).update(
                statement_timeout=statement_timeout
            )
        self.forget_tenant(slug)

    def limits(self, tenant: TenantLike, *, privileged: bool = False) -> dict[str, Any]:
        """The tenant's limits, for the health report (``privileged``: the owner role may look
        at what the server applies)."""
        return {"statement_timeout_ms": getattr(tenant, "statement_timeout", None)}

    def recorded_error(self, slug: str) -> str:
        """The last error the strategy recorded for the tenant (a failed migration, say)."""
        return ""

    def tenant_model(self) -> type[Model]:
        """The model whose rows are the tenants (each strategy's Account, multidb's catalogue
        Tenant)."""
        return self.model("account")

    @abstractmethod
    def model(self, name: str) -> type[Model]:
        """The concrete model for ``account``, ``user``, ``project``, ``task`` or ``subtask``."""


@functools.cache
def _load(path: str) -> Strategy:
    strategy = import_string(path)()
    if not isinstance(strategy, Strategy):
        raise TypeError(f"TENANCY_STRATEGY {path!r} is not a shared.strategy.Strategy")
    return strategy


def get_strategy() -> Strategy:
    return _load(str(settings.TENANCY_STRATEGY))
