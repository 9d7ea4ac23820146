from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from django.apps import apps
from django.core.management import CommandError
from django.db import IntegrityError, connections, transaction
from django.db.models import F, Model, QuerySet

from rls.scoping import TenantModel
from rls.tracker.models import Account, Project, Subtask, Task, User
from shared.copy import BULK_LOAD_SETTINGS, copy_rows, reserve_ids
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.migrating import Unit
from shared.strategy import TABLES, Strategy, TenantExists
from shared.tenancy import TenantLike, activate
from shared.testdata import TenantData

if TYPE_CHECKING:
    from shared.strategy import Verify


class RowLevelSecurity(Strategy):
    name = "rls"

    def model(self, name: str) -> type[Model]:
        return apps.get_model("tracker", name)

    # The runtime role cannot read the account table across tenants; two functions
    # (SECURITY DEFINER, owned by the owner role) answer exactly what Host routing and the
    # index need, and nothing more.
    def get_tenant(self, slug: str) -> Account | None:
        with connections[RUNTIME_ALIAS].cursor() as cursor:
            cursor.execute(
                "SELECT id, slug, name, statement_timeout FROM tracker_account_by_slug(%s)",
                [slug],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        return Account(id=row[0], slug=row[1], name=row[2], statement_timeout=row[3])

    def list_tenants(self) -> list[Account]:
        return list(Account.objects.cross_tenant().order_by("slug").only("slug", "name"))

    def index_tenants(self) -> list[Account]:
        # tracker_accounts() exists only while TENANCY_INDEX is on (rls.index).
        with connections[RUNTIME_ALIAS].cursor() as cursor:
            cursor.execute("SELECT id, slug, name FROM tracker_accounts()")
            return [Account(id=i, slug=s, name=n) for i, s, n in cursor.fetchall()]

    def create_tenant(
        self, slug: str, name: str, *, host: str = "", port: int | None = None
    ) -> Account:
        self.refuse_server(host, port)
        self.check_slug(slug)
        try:
            with transaction.atomic(using=OWNER_ALIAS):
                return Account.objects.cross_tenant().create(slug=slug, name=name)
        except IntegrityError:  # the unique slug decides, also between concurrent creates
            raise TenantExists(f"tenant {slug} exists already") from None

    def drop_tenant(self, slug: str) -> None:
        self.forget_tenant(slug)
        account = Account.objects.cross_tenant().filter(slug=slug).first()
        if account is None:
            return
        # Table by table, every row by its account, children first: not Django's collector,
        # which deletes children by id alone. On Citus a row's key is (account_id, id), and
        # the runtime role may write an id (rls.citus), so an id alone may name another
        # tenant's row too.
        with transaction.atomic(using=OWNER_ALIAS), connections[OWNER_ALIAS].cursor() as cursor:
            for model in (Subtask, Task, Project, User):
                table = model._meta.db_table
                cursor.execute(f"DELETE FROM {table} WHERE account_id = %s", [account.pk])
            cursor.execute(f"DELETE FROM {Account._meta.db_table} WHERE id = %s", [account.pk])

    def remains(self, tenant: TenantLike) -> list[str]:
        found = []
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {Account._meta.db_table} WHERE id = %s OR slug = %s",
                [tenant.pk, tenant.slug],
            )
            (accounts,) = cursor.fetchone() or (0,)
            if accounts:
                found.append("its account")
            for model in (User, Project, Task, Subtask):
                table = model._meta.db_table
                cursor.execute(f"SELECT count(*) FROM {table} WHERE account_id = %s", [tenant.pk])
                (rows,) = cursor.fetchone() or (0,)
                if rows:
                    found.append(f"{rows} rows in {table}")
        return found

    def reclaim(self) -> None:
        # The deleted rows stay in the tables' pages until VACUUM marks their space free.
        tables = ", ".join(m._meta.db_table for m in (Account, User, Project, Task, Subtask))
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(f"VACUUM {tables}")

    def load_tenant(
        self, data: TenantData, *, commit: bool = True, verify: Verify | None = None
    ) -> Account:
        self.check_slug(data.slug)
        with transaction.atomic(using=OWNER_ALIAS):
            with connections[OWNER_ALIAS].cursor() as cursor:
                cursor.execute(BULK_LOAD_SETTINGS)
                cursor.execute(
                    f"INSERT INTO {Account._meta.db_table} (slug, name) VALUES (%s, %s) "
                    "ON CONFLICT (slug) DO NOTHING RETURNING id",
                    [data.slug, data.name],
                )
                row = cursor.fetchone()
                if row is None:
                    raise TenantExists(f"tenant {data.slug} exists already")
                account_id = row[0]
                project_ids = reserve_ids(cursor, Project._meta.db_table, len(data.projects))
                task_ids = reserve_ids(cursor, Task._meta.db_table, len(data.tasks))
                copy_rows(
                    cursor,
                    User._meta.db_table,
                    (
                        "account_id",
                        "email",
                        "first_name",
                        "last_name",
                        "password",
                        "is_active",
                        "date_joined",
                    ),
                    ((account_id, *user) for user in data.users),
                )
                copy_rows(
                    cursor,
                    Project._meta.db_table,
                    ("id", "account_id", "name", "details"),
                    (
                        (pid, account_id, *project)
                        for pid, project in zip(project_ids, data.projects, strict=True)
                    ),
                )
                copy_rows(
                    cursor,
                    Task._meta.db_table,
                    ("id", "account_id", "project_id", "name", "is_complete", "details"),
                    (
                        (tid, account_id, project_ids[t.project], t.name, t.is_complete, t.details)
                        for tid, t in zip(task_ids, data.tasks, strict=True)
                    ),
                )
                copy_rows(
                    cursor,
                    Subtask._meta.db_table,
                    ("account_id", "task_id", "name", "is_complete", "details"),
                    (
                        (account_id, task_ids[s.task], s.name, s.is_complete, s.details)
                        for s in data.subtasks
                    ),
                )
            account = Account(id=account_id, slug=data.slug, name=data.name)
            if verify is not None:
                with activate(account):
                    verify(account, OWNER_ALIAS)
            if not commit:
                transaction.set_rollback(True, using=OWNER_ALIAS)
        return account

    def migration_units(
        self, *, only: set[str] | None = None, retry_failed: bool = False
    ) -> tuple[list[Unit], list[Unit]]:
        if only or retry_failed:
            raise CommandError(
                "every rls tenant shares one schema, migrated at once: "
                "--only and --retry-failed do not apply"
            )
        return [], [Unit("shared schema (every tenant)", OWNER_ALIAS)]

    def subtask_list(self) -> QuerySet[Subtask]:
        # The joined task and project are tied to the subtask's account as well. The policies
        # add `account_id = <setting>` to every table, which the planner cannot estimate; told
        # that all three share the subtask's account, it keeps the index on (account_id, name,
        # id) and stops after one page. Without this the page query took 2.7x as long with the
        # policies on as with them off (make bench's control), with it about the same.
        return (
            Subtask.objects.select_related("task__project")
            .filter(task__account=F("account"), task__project__account=F("account"))
            .annotate(account_name=F("account__name"))
            .order_by("name", "id")
        )

    def row_counts(self, slugs: Sequence[str] | None = None) -> dict[str, int]:
        accounts = Account.objects.cross_tenant()
        if slugs is not None:
            accounts = accounts.filter(slug__in=list(slugs))
        ids = list(accounts.values_list("id", flat=True))
        counts = {"account": len(ids)}
        for name in TABLES:
            model = cast(type[TenantModel], self.model(name))
            counts[name] = model.objects.cross_tenant().filter(account_id__in=ids).count()
        return counts
