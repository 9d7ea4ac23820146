import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shared import migrating
from shared.db import require_owner
from shared.env import ROOT
from shared.strategy import get_strategy


class Command(BaseCommand):
    help = (
        "Migrate every tenant, at most --parallel at once. Carries on past a failing tenant, "
        "prints a summary, writes a JSON report, and exits non-zero if any tenant failed. "
        "Tenants already current cost one check each, so a rerun resumes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--parallel", type=int, default=4, metavar="K")
        parser.add_argument("--only", metavar="SLUG,...", help="only these tenants")
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="only the tenants whose last migration failed",
        )
        parser.add_argument(
            "--report",
            type=Path,
            help="where to write the JSON report "
            "(default: results/migratetenants-<strategy>-<time>.json)",
        )

    def handle(
        self,
        *args: str,
        parallel: int,
        only: str | None,
        retry_failed: bool,
        report: Path | None,
        **options: Any,
    ) -> None:
        require_owner()
        if parallel < 1:
            raise CommandError("--parallel must be at least 1")
        strategy = get_strategy()
        only_slugs = {s.strip() for s in only.split(",") if s.strip()} if only else None
        before, units = strategy.migration_units(only=only_slugs, retry_failed=retry_failed)
        if only_slugs:
            known = {u.name for u in units}
            if missing := sorted(only_slugs - known):
                raise CommandError(f"no such tenant: {', '.join(missing)}")
        started = time.monotonic()
        results = [migrating.migrate_unit(u) for u in before]  # templates first, one by one
        for result in results:
            self.show(result, len(results), len(before) + len(units))
        if any(r.status == "failed" for r in results):
            units = []  # tenants copied from a broken template would only fail the same way
        done = len(results)

        def on_result(result: migrating.Result) -> None:
            nonlocal done
            done += 1
            self.show(result, done, len(before) + len(units))

        results += migrating.run(units, parallel, on_result)
        seconds = time.monotonic() - started
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        # TENANCY_RESULTS_DIR: where reports go when --report is not given (the test run
        # points it at its own temporary folder, so tests leave nothing in results/).
        folder = Path(os.environ.get("TENANCY_RESULTS_DIR") or ROOT / "results")
        report = report or folder / f"migratetenants-{strategy.name}-{stamp}.json"
        migrating.write_report(report, strategy.name, parallel, results)
        counts = {s: sum(r.status == s for r in results) for s in ("current", "migrated", "failed")}
        self.stdout.write(
            f"{len(results)} checked in {seconds:.1f} s with --parallel {parallel}: "
            f"{counts['current']} current, {counts['migrated']} migrated, "
            f"{counts['failed']} failed. Report: {report}"
        )
        failed = [r for r in results if r.status == "failed"]
        if failed:
            names = ", ".join(r.name for r in failed[:10]) + (" ..." if len(failed) > 10 else "")
            raise CommandError(
                f"{len(failed)} failed ({names}); fix the cause and run again with --retry-failed"
            )

    def show(self, result: migrating.Result, done: int, total: int) -> None:
        detail = result.error if result.status == "failed" else result.migration
        self.stdout.write(
            f"  [{done}/{total}] {result.name}: {result.status} ({detail}, {result.seconds:.2f} s)"
        )
