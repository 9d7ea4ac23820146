"""Deterministic test data: account ``tenant-N`` gets the same rows in every strategy and run.

The shape of each row is defined once, with the factories in ``shared.factories``; this module
decides how many rows each account gets and seeds the generators per account, so an account's
rows do not depend on which other accounts are generated or in what order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import factory.random

from shared import factories
from shared.factories import ProjectRow, SubtaskRow, TaskRow, UserRow


@dataclass
class TenantData:
    slug: str
    name: str
    users: list[UserRow] = field(default_factory=list)
    projects: list[ProjectRow] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)
    subtasks: list[SubtaskRow] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "account": 1,
            "user": len(self.users),
            "project": len(self.projects),
            "task": len(self.tasks),
            "subtask": len(self.subtasks),
        }


@dataclass(frozen=True)
class Volumes:
    """Rows per parent, drawn uniformly from each inclusive range (DESIGN's defaults)."""

    users: tuple[int, int] = (1, 5)
    projects: tuple[int, int] = (1, 30)
    tasks: tuple[int, int] = (1, 10)
    subtasks: tuple[int, int] = (1, 10)


def slug_for(number: int) -> str:
    return f"tenant-{number}"


def generate_tenant(
    number: int, *, seed: int = 0, volumes: Volumes = Volumes(), password: str = ""
) -> TenantData:
    # One seed per account: its rows are the same whatever else is generated around it.
    factory.random.reseed_random(f"tenancy:{seed}:{number}")
    rng = factory.random.randgen
    slug = slug_for(number)
    data = TenantData(slug=slug, name=factories.account_name())
    for i in range(rng.randint(*volumes.users)):
        data.users.append(
            factories.UserRowFactory.build(
                number=i + 1, domain=f"{slug}.example", password=password
            )
        )
    for p in range(rng.randint(*volumes.projects)):
        data.projects.append(factories.ProjectRowFactory.build())
        for _ in range(rng.randint(*volumes.tasks)):
            data.tasks.extend(factories.TaskRowFactory.rows(1, project=p))
            subtasks = rng.randint(*volumes.subtasks)
            data.subtasks.extend(
                factories.SubtaskRowFactory.rows(subtasks, task=len(data.tasks) - 1)
            )
    return data
