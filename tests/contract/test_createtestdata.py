"""createtestdata: deterministic per account, whole accounts only, never touches existing data."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from shared.tenancy import activate

SMALL = [
    "--min-projects",
    "1",
    "--max-projects",
    "3",
    "--min-tasks",
    "1",
    "--max-tasks",
    "3",
    "--min-subtasks",
    "1",
    "--max-subtasks",
    "3",
]


@pytest.fixture
def numbered_tenants(live_db, strategy):
    """Removes tenant-1..tenant-99 before and after, leaving other tenants alone: also what a
    killed load left unfinished, which list_tenants does not show."""

    def clean():
        for number in range(1, 100):
            strategy.drop_tenant(f"tenant-{number}")

    clean()
    yield
    clean()


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("createtestdata", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def dump(strategy, slug: str) -> list[tuple]:
    """Everything tenant ``slug`` holds, without database ids."""
    tenant = strategy.get_tenant(slug)
    with activate(tenant):
        users = sorted(
            strategy.model("user").objects.values_list(
                "email", "first_name", "last_name", "password", "is_active", "date_joined"
            )
        )
        subtasks = sorted(
            strategy.model("subtask").objects.values_list(
                "task__project__name",
                "task__project__details",
                "task__name",
                "task__is_complete",
                "task__details",
                "name",
                "is_complete",
                "details",
            )
        )
    return [("account", tenant.name), *users, *subtasks]


def counts_line(output: str, title: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if line.startswith(title))
    counts = {k: int(v.replace(",", "")) for k, v in re.findall(r"(\w+)s ([\d,]+)", line)}
    assert counts.pop("row") == sum(counts.values())
    return counts


def test_an_account_is_identical_whatever_the_number_of_accounts(numbered_tenants, strategy):
    run("--accounts", "8", *SMALL)
    first = dump(strategy, "tenant-7")
    for tenant in strategy.list_tenants():
        if tenant.slug.startswith("tenant-") and int(tenant.slug[7:]) <= 8:
            strategy.drop_tenant(tenant.slug)
    run("--accounts", "20", "--jobs", "1", *SMALL)
    assert dump(strategy, "tenant-7") == first
    assert len(first) > 3


def test_a_second_run_reports_what_exists_and_changes_nothing(numbered_tenants, strategy):
    output = run("--accounts", "20", *SMALL)
    slugs = [f"tenant-{n}" for n in range(1, 21)]
    created = counts_line(output, "Created:")
    assert created == strategy.row_counts(slugs)
    assert counts_line(output, "In the database now:") == strategy.row_counts()
    before = strategy.row_counts()
    seven = dump(strategy, "tenant-7")

    with pytest.raises(
        CommandError,
        match=r"20 of the 20 accounts exist already "
        r"\(tenant-1\.\.tenant-20\); nothing was changed",
    ):
        run("--accounts", "20", *SMALL)
    assert strategy.row_counts() == before
    assert dump(strategy, "tenant-7") == seven


def test_skip_existing_completes_a_partial_run(numbered_tenants, strategy):
    run("--accounts", "3", *SMALL)
    output = run("--accounts", "5", "--skip-existing", *SMALL)
    assert "Skipping 3 existing accounts: tenant-1..tenant-3" in output
    assert counts_line(output, "Created:")["account"] == 2


def test_rollback_leaves_nothing(numbered_tenants, strategy):
    before = strategy.row_counts()
    output = run("--accounts", "4", "--rollback", *SMALL)
    assert counts_line(output, "Generated and rolled back:")["account"] == 4
    assert strategy.row_counts() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--accounts", "0"], "--accounts must be at least 1"),
        (["--min-tasks", "5", "--max-tasks", "2"], "--min-tasks and --max-tasks"),
        (["--min-users", "0"], "at least one user"),
    ],
)
def test_bad_options_are_one_line_errors(numbered_tenants, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
