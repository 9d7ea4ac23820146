import os
import sys
import time
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import Error as DatabaseError

from shared.db import require_owner
from shared.loading import Loaders, LoadersDied, Outcome, Plan, first_line, load_one
from shared.strategy import TABLES, Strategy, get_strategy
from shared.testdata import Volumes, slug_for

COLUMNS = ("account", *TABLES)
# Test users all get the password "password"; hashed once, with a fixed salt so every run and
# every strategy stores the same value.
PASSWORD = "password"
PASSWORD_SALT = "tenancytestdata"


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7] -> 'tenant-1..tenant-3, tenant-7'."""
    numbers = sorted(numbers)
    spans, start = [], numbers[0]
    for prev, cur in zip(numbers, [*numbers[1:], None], strict=True):
        if cur != prev + 1:
            spans.append(
                slug_for(start) if start == prev else f"{slug_for(start)}..{slug_for(prev)}"
            )
            if cur is not None:
                start = cur
    return ", ".join(spans)


class Command(BaseCommand):
    help = (
        "Create accounts tenant-1..tenant-N with deterministic users, projects, tasks and "
        "subtasks, each account in its own transaction, loaded with COPY by --jobs processes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--accounts", type=int, default=10, help="accounts (default 10)")
        for name, (low, high) in vars(Volumes()).items():
            parser.add_argument(
                f"--min-{name}",
                type=int,
                default=low,
                metavar="N",
                help=f"fewest {name} per parent (default {low})",
            )
            parser.add_argument(
                f"--max-{name}",
                type=int,
                default=high,
                metavar="N",
                help=f"most {name} per parent (default {high})",
            )
        parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
        parser.add_argument(
            "--rollback",
            action="store_true",
            help="generate and load everything, then roll each account back",
        )
        parser.add_argument(
            "--skip-existing",
            action="store_true",
            help="create only the accounts that do not exist yet",
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing (and succeed) if any account exists"
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=min(2, os.cpu_count() or 1),
            help="processes that each generate accounts and load them on a connection of their "
            "own (default: 2, or 1 on one CPU)",
        )

    def handle(self, *args: str, **options: Any) -> None:
        require_owner()
        volumes = self.volumes(options)
        count, jobs = options["accounts"], options["jobs"]
        if count < 1:
            raise CommandError("--accounts must be at least 1")
        if jobs < 1:
            raise CommandError("--jobs must be at least 1")
        strategy = get_strategy()
        try:
            existing = {tenant.slug for tenant in strategy.list_tenants()}
        except DatabaseError as exc:
            raise CommandError(
                f"cannot read the tenants ({first_line(exc)}): is PostgreSQL "
                "running (`make up`) and migrated (`manage.py migrate`)?"
            ) from None
        if options["if_empty"] and existing:
            self.stdout.write(f"{len(existing)} accounts exist already; nothing to do.")
            return
        present = [n for n in range(1, count + 1) if slug_for(n) in existing]
        if present and not options["skip_existing"]:
            raise CommandError(
                f"{len(present)} of the {count} accounts exist already "
                f"({_ranges(present)}); nothing was changed. "
                "Use --skip-existing to create only the missing ones."
            )
        if present:
            self.stdout.write(f"Skipping {len(present)} existing accounts: {_ranges(present)}")
        todo = [n for n in range(1, count + 1) if slug_for(n) not in existing]
        if not todo:
            self.stdout.write("All accounts exist already; nothing to do.")
            return
        created = self.load(strategy, todo, volumes, options)
        verb = "Generated and rolled back" if options["rollback"] else "Created"
        self.stdout.write(self.table(f"{verb}:", created))
        self.stdout.write(self.table("In the database now:", strategy.row_counts()))

    def volumes(self, options: dict[str, Any]) -> Volumes:
        ranges = {}
        for name in vars(Volumes()):
            low, high = options[f"min_{name}"], options[f"max_{name}"]
            if low < 0 or high < low:
                raise CommandError(
                    f"--min-{name} and --max-{name} must satisfy 0 <= min <= max "
                    f"(got {low} and {high})"
                )
            ranges[name] = (low, high)
        if ranges["users"][0] < 1:
            raise CommandError("every account needs at least one user: --min-users >= 1")
        return Volumes(**ranges)

    def load(
        self, strategy: Strategy, numbers: list[int], volumes: Volumes, options: dict[str, Any]
    ) -> dict[str, int]:
        plan = Plan(
            seed=options["seed"],
            volumes=volumes,
            password=make_password(PASSWORD, salt=PASSWORD_SALT),
            commit=not options["rollback"],
        )
        processes = min(options["jobs"], len(numbers))
        created = dict.fromkeys(COLUMNS, 0)
        done: list[int] = []
        failed: Outcome | None = None
        started = last = time.monotonic()

        def take(outcome: Outcome) -> None:
            nonlocal failed, last
            if outcome.counts is None:
                failed = failed or outcome
                return
            done.append(outcome.number)
            for table, rows in outcome.counts.items():
                created[table] += rows
            now = time.monotonic()
            if now - last >= 1 or len(done) == len(numbers):
                last = now
                self.progress(len(done), len(numbers), sum(created.values()), now - started)

        try:
            if processes == 1:
                for number in numbers:
                    take(load_one(strategy, number, plan))
                    if failed:
                        break
            else:
                with Loaders(numbers, plan, processes) as loaders:
                    # Ctrl-C while they load ends this loop once the loaders have reported
                    # the accounts they were on, so that every complete one is named.
                    for outcome in loaders:
                        take(outcome)
                if loaders.interrupted:
                    raise KeyboardInterrupt
        except LoadersDied as exc:
            # Each account is one transaction: what the dead loader was on is either all there
            # (it died between its commit and its report) or not at all. Look, to name it.
            try:
                existing = {tenant.slug for tenant in strategy.list_tenants()}
            except DatabaseError:
                maybe = ", ".join(slug_for(n) for n in exc.unknown)
                raise CommandError(
                    f"{exc}; {self.complete(done, len(numbers))}, {maybe} may be complete too, "
                    "and nothing else was written. Run again with --skip-existing to finish."
                ) from None
            done.extend(n for n in exc.unknown if slug_for(n) in existing)
            raise CommandError(
                f"{exc}; {self.complete(done, len(numbers))}; nothing else was written. "
                "Run again with --skip-existing to finish."
            ) from None
        except KeyboardInterrupt:
            raise CommandError(
                f"interrupted: {self.complete(done, len(numbers))}; nothing else was written. "
                "Run again with --skip-existing to finish.",
                returncode=130,
            ) from None
        if failed is not None:
            slug = slug_for(failed.number)
            if failed.refused:  # something else holds the name: running again cannot help
                raise CommandError(
                    f"{slug} cannot be created: {failed.error}; nothing of it was written, and "
                    f"{self.complete(done, len(numbers))}."
                )
            raise CommandError(
                f"loading {slug} failed and was rolled back ({failed.error}); "
                f"{self.complete(done, len(numbers))}. Run again with --skip-existing to finish."
            )
        return created

    def complete(self, done: list[int], total: int) -> str:
        if not done:
            return f"none of the {total} accounts is complete"
        return f"{len(done)} of {total} accounts are complete ({_ranges(done)})"

    def progress(self, done: int, total: int, rows: int, seconds: float) -> None:
        rate = rows / seconds if seconds else 0
        line = f"  {done}/{total} accounts · {rows:,} rows · {seconds:.1f} s · {rate:,.0f} rows/s"
        if sys.stderr.isatty():
            end = "\n" if done == total else ""
            sys.stderr.write(f"\r{line}{end}")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def table(self, title: str, counts: dict[str, int]) -> str:
        cells = "  ".join(f"{name}s {counts.get(name, 0):,}" for name in COLUMNS)
        return f"{title} {cells}, rows {sum(counts.values()):,}"
