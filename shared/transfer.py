"""Export a tenant to an archive (shared.archive) and import one, in any strategy."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from django.db import connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from shared import archive, digest
from shared.erasure import erasures
from shared.strategy import TenantExists
from shared.tenancy import activate

if TYPE_CHECKING:
    from collections.abc import Iterator

    from django.db.backends.base.base import BaseDatabaseWrapper

    from shared.strategy import Strategy
    from shared.tenancy import TenantLike

APP = "tracker"  # the tenant's tables; every strategy names its app so


class DigestMismatch(Exception):
    """The rows as loaded differ from the archive's: the import is rolled back."""


@contextmanager
def snapshot(alias: str) -> Iterator[BaseDatabaseWrapper]:
    """One REPEATABLE READ transaction on ``alias``: every table is read as of one moment,
    while other sessions go on writing. Times come out in UTC, in ISO form."""
    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    before = raw.isolation_level
    raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # BEGIN ISOLATION LEVEL ...
    try:
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute("SET LOCAL timezone = 'UTC'")
            cursor.execute("SET LOCAL datestyle = 'ISO, YMD'")
            yield connection
    finally:
        raw.isolation_level = before


def applied_migrations(alias: str) -> list[str]:
    """The tenant tables' migrations applied where ``alias`` reads them (in the active tenant's
    schema, for schemas), in the order they were applied."""
    recorded = MigrationRecorder(connections[alias]).migration_qs.filter(app=APP)
    return [
        f"{APP}.{name}"
        for name in recorded.order_by("applied", "id").values_list("name", flat=True)
    ]


def project_migrations() -> list[str]:
    """The tenant tables' migrations this project's code has, in the order they apply."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    leaves = graph.leaf_nodes(APP)
    plan = graph.forwards_plan(leaves[0]) if leaves else []
    return [f"{app}.{name}" for app, name in plan if app == APP]


def _copy_sql(strategy: Strategy, alias: str) -> dict[str, tuple[str, list[Any]]]:
    """A COPY statement per table that reads the active tenant's rows through the strategy's
    own managers (so exactly that tenant's, in every strategy), numbering each parent's rows
    for the references."""

    def rows(table: str, *fields: str) -> tuple[str, list[Any]]:
        query = (
            strategy.model(table)._default_manager.using(alias).order_by("id").values_list(*fields)
        )
        sql, params = query.query.sql_with_params()
        return sql, list(params)

    def numbered(table: str) -> tuple[str, list[Any]]:
        sql, params = rows(table, "id")
        return f"SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM ({sql}) AS s", params

    users, user_params = rows("user", *archive.COLUMNS["user"])
    projects, project_params = rows("project", "name", "details")
    project_numbers, pn_params = numbered("project")
    tasks, task_params = rows("task", "id", "project_id", "name", "is_complete", "details")
    task_numbers, tn_params = numbered("task")
    subtasks, subtask_params = rows("subtask", "id", "task_id", "name", "is_complete", "details")
    return {
        "user": (f"COPY ({users}) TO STDOUT", user_params),
        "project": (f"COPY ({projects}) TO STDOUT", project_params),
        "task": (
            f"COPY (SELECT p.n, t.name, t.is_complete, t.details "
            f"FROM ({tasks}) AS t (id, project_id, name, is_complete, details) "
            f"JOIN ({project_numbers}) AS p ON p.id = t.project_id ORDER BY t.id) TO STDOUT",
            task_params + pn_params,
        ),
        "subtask": (
            f"COPY (SELECT k.n, s.name, s.is_complete, s.details "
            f"FROM ({subtasks}) AS s (id, task_id, name, is_complete, details) "
            f"JOIN ({task_numbers}) AS k ON k.id = s.task_id ORDER BY s.id) TO STDOUT",
            subtask_params + tn_params,
        ),
    }


@dataclass
class Exported:
    manifest: archive.Manifest
    bytes: int


def export_tenant(
    strategy: Strategy, tenant: TenantLike, path: Path, progress: Callable[[str], None]
) -> Exported:
    with tempfile.TemporaryDirectory(prefix="exporttenant-") as scratch:
        files = {table: Path(scratch) / f"{table}.copy" for table in archive.TABLES}
        with (
            strategy.tenant_alias(tenant) as alias,
            activate(tenant),
            snapshot(alias) as connection,
        ):
            migrations = applied_migrations(alias)
            with connection.cursor() as cursor:
                for table, (sql, params) in _copy_sql(strategy, alias).items():
                    progress(f"copying {table} rows")
                    with open(files[table], "wb") as out, cursor.copy(sql, params) as copy:
                        for chunk in copy:
                            out.write(chunk)
            progress("computing the digest")
            found = digest.of_tenant(strategy, tenant, using=alias)
        manifest = archive.Manifest(
            strategy=strategy.name,
            slug=tenant.slug,
            name=tenant.name,
            migrations=migrations,
            exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
            tables={
                table: {"columns": list(columns), "rows": rows, "sha256": sha}
                for (table, columns), (rows, sha) in zip(
                    archive.COLUMNS.items(),
                    (found.tables[t] for t in archive.TABLES),
                    strict=True,
                )
            },
            digest=found.value,
        )
        progress("writing the archive")
        archive.write(path, manifest, files)
    return Exported(manifest, path.stat().st_size)


def check_migrations(strategy: Strategy, source: str, theirs: list[str]) -> None:
    """Rows from the same strategy (``source``) must come from tables at this project's
    migrations. From another strategy the migrations' names say nothing here (each strategy
    has its own); the columns, which the archive checked against this project's, decide."""
    if source != strategy.name:
        return
    ours = project_migrations()
    unknown = [m for m in theirs if m not in ours]
    if unknown:
        raise archive.ArchiveRefused(
            f"refused: the archive's tables are at {unknown[-1]}, which this project does not "
            "have (update the code first)"
        )
    newer = [m for m in ours if m not in theirs]
    if newer:
        raise archive.ArchiveRefused(
            f"refused: this project has moved past the archive's migrations ({newer[0]} is "
            "not in it); import it into a project at the same migrations, migrate, then export"
        )


def import_tenant(
    strategy: Strategy,
    path: Path,
    slug: str | None,
    progress: Callable[[str], None],
    *,
    allow_erased: bool = False,
) -> tuple[archive.Manifest, TenantLike]:
    progress(f"reading {path}")
    manifest, tables = archive.read(path)
    check_migrations(strategy, manifest.strategy, manifest.migrations)
    slug = slug or manifest.slug
    if strategy.get_tenant(slug) is not None:
        raise TenantExists(f"tenant {slug} exists already")
    erased = erasures(slug, manifest.digest)
    if erased and not allow_erased:
        what = f"{slug} was" if erased[0].slug == slug else f"these rows ({erased[0].slug}) were"
        raise archive.ArchiveRefused(
            f"refused: {what} erased at {erased[0].erased_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(digest {erased[0].digest}); pass --allow-erased to bring them back"
        )
    strategy.check_slug(slug)
    progress("checking the rows against the manifest")
    data = archive.tenant_data(manifest, tables, slug)

    def verify(tenant: TenantLike, alias: str) -> None:
        progress("checking the loaded rows")
        loaded = digest.of_tenant(strategy, tenant, using=alias)
        if loaded.value != manifest.digest:
            raise DigestMismatch(
                f"refused: the rows as loaded have digest {loaded.value}, the archive's are "
                f"{manifest.digest}; nothing was imported"
            )

    progress(f"loading {sum(data.counts().values()):,} rows")
    tenant = strategy.load_tenant(data, verify=verify)
    return manifest, tenant
