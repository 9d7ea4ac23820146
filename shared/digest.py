"""A tenant's content digest: the same value for the same rows in every strategy.

Rows are described by what they hold, never by their ids (a database or a schema per tenant
gives every tenant its own sequences), and a reference by the content of the row it points
at: a task by its project's name and details, a subtask by its task's and that task's
project's. Each table's rows are serialised canonically (JSON, times in UTC), sorted, and
hashed; the tenant's digest hashes the tables' counts and digests in a fixed order. The slug
is left out, so that a tenant imported under another slug keeps its digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.strategy import Strategy
    from shared.tenancy import TenantLike
    from shared.testdata import TenantData

ORDER = ("account", "user", "project", "task", "subtask")

# What each table's rows are described by, as ORM lookups from that table.
PROJECT = ("name", "details")
TASK = ("project__name", "project__details", "name", "is_complete", "details")
FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("email", "first_name", "last_name", "password", "is_active", "date_joined"),
    "project": PROJECT,
    "task": TASK,
    "subtask": (*(f"task__{field}" for field in TASK), "name", "is_complete", "details"),
}

Row = Sequence[Any]


@dataclass(frozen=True)
class TenantDigest:
    tables: dict[str, tuple[int, str]]  # table: (rows, sha-256 of its rows)

    @property
    def value(self) -> str:
        lines = "".join(f"{t} {self.tables[t][0]} {self.tables[t][1]}\n" for t in ORDER)
        return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()

    def counts(self) -> dict[str, int]:
        return {table: self.tables[table][0] for table in ORDER}


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def digest(rows: dict[str, Iterable[Row]]) -> TenantDigest:
    tables = {}
    for table in ORDER:
        lines = sorted(
            json.dumps([_canonical(v) for v in row], ensure_ascii=False, separators=(",", ":"))
            for row in rows[table]
        )
        text = "".join(line + "\n" for line in lines)
        tables[table] = (len(lines), hashlib.sha256(text.encode()).hexdigest())
    return TenantDigest(tables)


def of_data(data: TenantData) -> TenantDigest:
    """The digest ``data`` has once loaded (createtestdata's rows, before any database)."""
    projects = [(p.name, p.details) for p in data.projects]
    tasks = [(*projects[t.project], t.name, t.is_complete, t.details) for t in data.tasks]
    return digest(
        {
            "account": [(data.name,)],
            "user": [tuple(u) for u in data.users],
            "project": projects,
            "task": tasks,
            "subtask": [(*tasks[s.task], s.name, s.is_complete, s.details) for s in data.subtasks],
        }
    )


def of_tenant(strategy: Strategy, tenant: TenantLike, using: str | None = None) -> TenantDigest:
    """The digest of ``tenant``'s rows as stored, read inside the tenant as its pages read them,
    or on the connection ``using`` (where an import has just loaded them, uncommitted)."""
    from shared.tenancy import activate

    with activate(tenant):
        rows = {
            table: list(
                strategy.model(table)._default_manager.db_manager(using).values_list(*fields)
            )
            for table, fields in FIELDS.items()
        }
    return digest({"account": [(tenant.name,)], **rows})
