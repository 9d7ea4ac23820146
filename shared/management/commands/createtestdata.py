import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from itertools import islice
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import Error as DatabaseError

from shared.db import require_owner
from shared.db.locks import Busy
from shared.slugs import SlugRefused
from shared.strategy import TABLES, Strategy, TenantExists, get_strategy
from shared.testdata import TenantData, Volumes, generate_tenant, slug_for

COLUMNS = ("account", *TABLES)
# Test users all get the password "password"; hashed once, with a fixed salt so every run and
# every strategy stores the same value.
PASSWORD = "password"
PASSWORD_SALT = "tenancytestdata"


def _generate(job: tuple[int, int, Volumes, str]) -> TenantData:
    number, seed, volumes, password = job
    return generate_tenant(number, seed=seed, volumes=volumes, password=password)


def _ranges(text: str) -> str:
    """'tenant-1, tenant-2, tenant-3, tenant-7' -> 'tenant-1..tenant-3, tenant-7'."""
    numbers = sorted(int(s.rsplit("-", 1)[1]) for s in text.split(","))
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
        "subtasks, each account in its own transaction, loaded with COPY."
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
            help="processes generating data while this one loads it",
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
                f"cannot read the tenants ({str(exc).strip().splitlines()[0]}): is PostgreSQL "
                "running (`make up`) and migrated (`manage.py migrate`)?"
            ) from None
        if options["if_empty"] and existing:
            self.stdout.write(f"{len(existing)} accounts exist already; nothing to do.")
            return
        present = [slug_for(n) for n in range(1, count + 1) if slug_for(n) in existing]
        if present and not options["skip_existing"]:
            raise CommandError(
                f"{len(present)} of the {count} accounts exist already "
                f"({_ranges(','.join(present))}); nothing was changed. "
                "Use --skip-existing to create only the missing ones."
            )
        if present:
            self.stdout.write(
                f"Skipping {len(present)} existing accounts: {_ranges(','.join(present))}"
            )
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
        password = make_password(PASSWORD, salt=PASSWORD_SALT)
        jobs = [(n, options["seed"], volumes, password) for n in numbers]
        created = dict.fromkeys(COLUMNS, 0)
        started = last = time.monotonic()
        done = 0
        pool = None
        if options["jobs"] > 1 and len(jobs) > 1:
            pool = multiprocessing.get_context("spawn").Pool(options["jobs"])
            # imap keeps the order (so progress is readable); windows bound what waits in memory.
            window = options["jobs"] * 8
            pending = iter(jobs)
            batches = iter(lambda: list(islice(pending, window)), [])
            generated: Iterator[TenantData] = (
                data for batch in batches for data in pool.imap(_generate, batch)
            )
        else:
            generated = map(_generate, jobs)
        try:
            for data in generated:
                strategy.load_tenant(data, commit=not options["rollback"])
                for table, rows in data.counts().items():
                    created[table] += rows
                done += 1
                now = time.monotonic()
                if now - last >= 1 or done == len(jobs):
                    last = now
                    self.progress(done, len(jobs), sum(created.values()), now - started)
        except SlugRefused as exc:  # something else holds the name: running again cannot help
            raise CommandError(
                f"account {done + 1} of {len(jobs)} cannot be created: {exc}; nothing of it was "
                f"written, and the {done} before it are complete."
            ) from None
        except (DatabaseError, TenantExists, Busy) as exc:
            raise CommandError(
                f"loading account {done + 1} of {len(jobs)} failed and was rolled back; the "
                f"{done} before it are complete ({str(exc).strip().splitlines()[0]}). Run again "
                "with --skip-existing to finish."
            ) from None
        except KeyboardInterrupt:
            raise CommandError(
                f"interrupted: {done} accounts were loaded completely; the one in progress was "
                "rolled back. Run again with --skip-existing to finish.",
                returncode=130,
            ) from None
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
        return created

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
