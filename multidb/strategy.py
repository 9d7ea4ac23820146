from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.db import connections, transaction
from django.db.models import Model, QuerySet, Value

from multidb import provisioning
from multidb.catalogue.models import Tenant
from multidb.moving import abort_move, move_tenant
from multidb.provisioning import Place
from multidb.routing import alias_for, forget
from shared.copy import load_contained
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.migrating import Result, Unit
from shared.slugs import SlugRefused
from shared.strategy import TABLES, Moved, Strategy, TenantExists
from shared.tenancy import TenantLike, activate, get_current_tenant
from shared.testdata import TenantData

if TYPE_CHECKING:
    from django_tasks_db.models import DBTaskResult

    from shared.strategy import Verify


class DatabasePerTenant(Strategy):
    name = "multidb"
    places_tenants_on_servers = True

    def model(self, name: str) -> type[Model]:
        return apps.get_model("tracker", name)

    def tenant_model(self) -> type[Tenant]:
        return Tenant

    def limits(self, tenant: TenantLike, *, privileged: bool = False) -> dict[str, Any]:
        tenant = cast(Tenant, tenant)
        limits: dict[str, Any] = {
            "statement_timeout_ms": tenant.statement_timeout,
            "connection_limit": tenant.connection_limit,
        }
        if privileged:  # what its server applies to its role, which may differ
            with provisioning.server_connection(tenant.db_host, tenant.db_port) as conn:
                applied = provisioning.role_limits(conn, tenant.db_name)
            if applied is not None and applied != (
                tenant.statement_timeout,
                tenant.connection_limit,
            ):
                limits["server_applies"] = {
                    "statement_timeout_ms": applied[0],
                    "connection_limit": applied[1],
                }
        return limits

    def recorded_error(self, slug: str) -> str:
        found = Tenant.objects.using(OWNER_ALIAS).filter(slug=slug).first()
        if found is None:
            return ""
        if found.error:
            return f"provisioning: {found.error}"
        return f"migration: {found.migration_error}" if found.migration_error else ""

    def save_task(
        self, row: DBTaskResult[Any, Any], tenant: TenantLike | None, enqueued: Callable[[], None]
    ) -> None:
        # The queue is in the catalogue's database, not the tenant's: a transaction cannot
        # span both, so the row is written once the tenant's transaction has committed (at
        # once outside one). A process that dies between the two loses the task; see README.
        def save() -> None:
            row.save(using=RUNTIME_ALIAS, force_insert=True)
            enqueued()

        alias = None if tenant is None else alias_for(cast(Tenant, tenant))
        if alias is not None and connections[alias].in_atomic_block:
            # robust: a failure to enqueue, once the tenant's writes are committed, is logged
            # (django.db.backends.base) and does not turn a done request or task into an error.
            transaction.on_commit(save, using=alias, robust=True)
        else:
            # Outside a transaction there is nothing to wait for (and on_commit would open a
            # connection to the tenant's database only to find that out).
            save()

    def task_alias(self, tenant: TenantLike | None) -> str | None:
        return None if tenant is None else alias_for(cast(Tenant, tenant))

    def set_limits(
        self,
        slug: str,
        *,
        statement_timeout: int | None = None,
        connection_limit: int | None = None,
    ) -> None:
        with provisioning.slug_lock(slug):  # not while it moves
            tenant = Tenant.objects.using(OWNER_ALIAS).get(slug=slug)
            if statement_timeout is not None:
                tenant.statement_timeout = statement_timeout
            if connection_limit is not None:
                tenant.connection_limit = connection_limit
            with provisioning.server_connection(tenant.db_host, tenant.db_port) as conn:
                provisioning.apply_limits(
                    conn, tenant.db_name, tenant.statement_timeout, tenant.connection_limit
                )
                # Sessions keep the settings they opened with: end the tenant's, so that pools
                # (each process's warm connections, PgBouncer's) open new ones with the new
                # limits. The owner cannot tell an idle session of another role's from a busy
                # one (pg_stat_activity hides its state), so a request of this tenant's that
                # is running just then gets the 503 page.
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND usename = %s",
                    [tenant.db_name, tenant.db_name],
                )
            tenant.save(using=OWNER_ALIAS, update_fields=["statement_timeout", "connection_limit"])
        forget(tenant)  # this process's connections to it, ended above
        self.forget_tenant(slug)

    def holds_tenant_per_transaction(self) -> bool:
        return True  # activation picks a database; it sets nothing in any session

    def get_tenant(self, slug: str) -> Tenant | None:
        return Tenant.objects.filter(slug=slug, state=Tenant.State.READY).first()

    def list_tenants(self) -> list[Tenant]:
        return list(Tenant.objects.filter(state=Tenant.State.READY).order_by("slug"))

    def slug_taken(self, slug: str) -> bool:
        # A database that is no tenant's by the name the slug's would have (the template's,
        # any other), or a role by that name, since a tenant's role is named like its
        # database: provisioning never takes one over.
        if super().slug_taken(slug):
            return True
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT FROM (SELECT datname::text FROM pg_database "
                "UNION SELECT rolname::text FROM pg_roles) AS taken (name) "
                "WHERE replace(name, '-', '_') = replace(%s, '-', '_') "
                f"AND name NOT IN (SELECT db_name FROM {Tenant._meta.db_table}))",
                [provisioning.database_name(slug)],
            )
            row = cursor.fetchone()
            return bool(row and row[0])

    def check_slug(self, slug: str) -> None:
        super().check_slug(slug)
        name = provisioning.database_name(slug)
        if len(name.encode()) > 63:  # PostgreSQL would cut it, and two slugs could meet
            raise SlugRefused(
                f"{slug!r} is refused: its database name {name!r} is longer than 63 bytes"
            )

    def create_tenant(
        self, slug: str, name: str, *, host: str = "", port: int | None = None, ready: bool = True
    ) -> Tenant:
        """Record the tenant as provisioning, create its database from the template, grant
        the runtime role, and only then mark it ready (or leave that to the caller). A failure
        leaves it `failed`, with the reason; calling again finishes the job. One process at a
        time provisions a slug (an advisory lock), and the catalogue decides whether it exists."""
        self.check_slug(slug)
        with provisioning.slug_lock(slug):
            return self._create(slug, name, host, port, ready)

    def _create(self, slug: str, name: str, host: str, port: int | None, ready: bool) -> Tenant:
        tenant, created = Tenant.objects.using(OWNER_ALIAS).get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "db_name": provisioning.database_name(slug),
                "db_host": host,
                "db_port": port,
            },
        )
        if tenant.state == Tenant.State.READY:
            raise TenantExists(f"tenant {slug} exists already")
        try:
            # A database the catalogue did not record as this tenant's is someone else's.
            provisioning.create_database(
                tenant.db_name,
                tenant.db_host,
                tenant.db_port,
                generation=tenant.role_generation,
                adopt=not created,
                statement_timeout=tenant.statement_timeout,
                connection_limit=tenant.connection_limit,
            )
            tenant.migration = provisioning.applied_label(alias_for(tenant, owner=True))
        except provisioning.DatabaseTaken as exc:
            tenant.delete(using=OWNER_ALIAS)
            raise SlugRefused(f"{slug!r} is refused: {exc}") from None
        except Exception as exc:
            tenant.state, tenant.error = Tenant.State.FAILED, str(exc).strip()
            tenant.save(using=OWNER_ALIAS)
            raise
        tenant.name = name
        if ready:
            self._mark_ready(tenant)
        else:
            tenant.save(using=OWNER_ALIAS)
        return tenant

    def _mark_ready(self, tenant: Tenant) -> None:
        tenant.state, tenant.error = Tenant.State.READY, ""
        tenant.save(using=OWNER_ALIAS)
        self.forget_tenant(tenant.slug)

    def drop_tenant(self, slug: str) -> None:
        with provisioning.slug_lock(slug):  # not while it moves
            tenant = Tenant.objects.using(OWNER_ALIAS).filter(slug=slug).first()
            if tenant is None:
                return
            self.forget_tenant(slug)
            provisioning.drop_database(tenant)
            tenant.delete(using=OWNER_ALIAS)

    def tenant_lock(self, slug: str) -> AbstractContextManager[None]:
        return provisioning.slug_lock(slug)

    def load_tenant(
        self, data: TenantData, *, commit: bool = True, verify: Verify | None = None
    ) -> Tenant:
        self.check_slug(data.slug)
        with provisioning.slug_lock(data.slug):
            return self._load(data, commit, verify)

    def remains(self, tenant: TenantLike) -> list[str]:
        placed = cast(Tenant, tenant)
        found = []
        with provisioning.server_connection(placed.db_host, placed.db_port) as conn:
            if provisioning.database_exists(conn, placed.db_name):
                found.append(f"database {placed.db_name}")
            if conn.execute("SELECT FROM pg_roles WHERE rolname = %s", [placed.db_name]).fetchone():
                found.append(f"role {placed.db_name}")
        if Tenant.objects.using(OWNER_ALIAS).filter(slug=placed.slug).exists():
            found.append("its catalogue entry")
        return found

    def move_tenant(
        self, slug: str, host: str, port: int, progress: Callable[[str], None]
    ) -> Moved:
        return move_tenant(self, slug, host, port, progress)

    def abort_move(self, slug: str, host: str, port: int) -> str:
        return abort_move(slug, host, port)

    @contextmanager
    def tenant_alias(self, tenant: TenantLike) -> Iterator[str]:
        alias = alias_for(cast(Tenant, tenant), owner=True)
        try:
            yield alias
        finally:
            connections[alias].close()  # a tenant's own database: not kept open

    def _load(self, data: TenantData, commit: bool, verify: Verify | None) -> Tenant:
        # A tenant that is not ready is what a killed earlier attempt left: its database may
        # hold some rows or all of them. Start it over.
        if (
            Tenant.objects.using(OWNER_ALIAS)
            .filter(slug=data.slug)
            .exclude(state=Tenant.State.READY)
        ):
            self.drop_tenant(data.slug)
        tenant = self._create(data.slug, data.name, "", None, ready=False)
        alias = alias_for(tenant, owner=True)
        try:
            with transaction.atomic(using=alias):
                with connections[alias].cursor() as cursor:
                    load_contained(cursor, data)
                if verify is not None:
                    with activate(tenant):
                        verify(tenant, alias)
        except BaseException:
            self.drop_tenant(data.slug)  # all or nothing: no tenant with half its rows
            raise
        finally:
            connections[alias].close()
        if commit:
            self._mark_ready(tenant)  # only now is it listed and served
        else:
            self.drop_tenant(data.slug)
        return tenant

    def subtask_list(self) -> QuerySet[Any]:
        tenant = get_current_tenant()
        assert tenant is not None, "the subtask list is a tenant's"
        return (
            self.model("subtask")
            ._default_manager.select_related("task__project")
            .annotate(account_name=Value(tenant.name))
            .order_by("name", "id")
        )

    def row_counts(self, slugs: Sequence[str] | None = None) -> dict[str, int]:
        tenants = Tenant.objects.using(OWNER_ALIAS).filter(state=Tenant.State.READY)
        if slugs is not None:
            tenants = tenants.filter(slug__in=list(slugs))
        counts = dict.fromkeys(("account", *TABLES), 0)
        for tenant in tenants:
            counts["account"] += 1
            alias = alias_for(tenant, owner=True)
            with connections[alias].cursor() as cursor:
                for name in TABLES:
                    cursor.execute(f"SELECT count(*) FROM tracker_{name}")
                    (count,) = cursor.fetchone() or (0,)
                    counts[name] += count
            connections[alias].close()
        return counts

    def migration_units(
        self, *, only: set[str] | None = None, retry_failed: bool = False
    ) -> tuple[list[Unit], list[Unit]]:
        chosen = Tenant.objects.using(OWNER_ALIAS).filter(state=Tenant.State.READY)
        if only:
            chosen = chosen.filter(slug__in=only)
        if retry_failed:
            chosen = chosen.exclude(migration_error="")
        tenants = list(chosen.order_by("slug"))
        servers = {("", None)} | {(t.db_host, t.db_port) for t in tenants if t.db_host}
        templates = []
        for host, port in sorted(servers, key=str):
            place = provisioning.template(host, port)
            with provisioning.server_connection(host, port) as conn:
                if provisioning.database_exists(conn, place.db_name):
                    templates.append(
                        Unit(
                            place.slug,
                            alias_for(place, owner=True),
                            context=partial(_template_unit, host, port, place),
                        )
                    )
        units = [
            Unit(
                t.slug,
                alias,
                record=partial(_record, t.pk),
                finish=partial(provisioning.grant_tenant_role, alias),
            )
            for t in tenants
            for alias in [alias_for(t, owner=True)]
        ]
        return templates, units


def _record(pk: int, result: Result) -> None:
    changes = {"migration_error": result.error}
    if result.migration:
        changes["migration"] = result.migration
    Tenant.objects.using(OWNER_ALIAS).filter(pk=pk).update(**changes)


@contextmanager
def _template_unit(host: str, port: int | None, place: Place) -> Iterator[None]:
    # Migrated while nobody copies it, and left with no session open for the next copy.
    with provisioning.template_lock(host, port):
        try:
            yield
        finally:
            connections[alias_for(place, owner=True)].close()
