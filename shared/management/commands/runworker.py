import os
import signal
import socket
import threading
from datetime import timedelta
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shared.db import RUNTIME_ALIAS, require_owner
from shared.health import printable
from shared.tasks import TENANT_KEY
from shared.worker import work


class Command(BaseCommand):
    # Run in handle(), with the database checks too.
    requires_system_checks: list[str] = []
    help = (
        "Run queued tasks, each in the tenant it was enqueued in (shared.tasks). Ctrl-C or "
        "SIGTERM stops it once the task it is running has finished."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            metavar="NAME",
            help="run only this queue's tasks (repeatable; default: every queue)",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=0.5,
            help="seconds to wait when no task is ready (default 0.5)",
        )
        parser.add_argument(
            "--batch", action="store_true", help="run the tasks that are ready, then stop"
        )
        parser.add_argument("--max-tasks", type=int, help="stop after this many tasks")
        parser.add_argument(
            "--abandoned-after",
            type=float,
            default=3600,
            metavar="SECONDS",
            help="record as failed a task still running after this long: its worker stopped "
            "(default 3600)",
        )

    def handle(
        self,
        *args: Any,
        queues: list[str] | None,
        interval: float,
        batch: bool,
        max_tasks: int | None,
        **options: Any,
    ) -> None:
        require_owner()
        # Tasks run as the runtime role: the system checks with those a web server makes on
        # its database (rls: row-level security in force, and on Citus the tenant set so the
        # workers see it), or a task would run where a page would be refused.
        self.check(databases=[RUNTIME_ALIAS], display_num_errors=False)
        if interval < 0 or (max_tasks is not None and max_tasks < 1):
            raise CommandError("--interval must be 0 or more, and --max-tasks 1 or more")
        stop = threading.Event()

        def finish(signum: int, frame: FrameType | None) -> None:
            if stop.is_set():
                raise KeyboardInterrupt  # asked twice: stop now (the task is recorded failed)
            self.stderr.write("Stopping once the running task has finished (again: at once).")
            stop.set()

        signal.signal(signal.SIGINT, finish)
        signal.signal(signal.SIGTERM, finish)
        worker_id = f"{socket.gethostname()}:{os.getpid()}"[:64]
        if options["verbosity"] >= 1:
            self.stderr.write(
                f"Worker {worker_id} running {', '.join(queues) if queues else 'every'} "
                f"queue's tasks{'' if batch else '; Ctrl-C stops it'}."
            )
        ran = work(
            abandoned_after=timedelta(seconds=options["abandoned_after"]),
            worker_id=worker_id,
            queues=queues,
            interval=interval,
            batch=batch,
            max_tasks=max_tasks,
            stop=stop,
            report=self.report if options["verbosity"] >= 1 else lambda row: None,
        )
        if options["verbosity"] >= 1:
            self.stderr.write(f"Ran {ran} task{'' if ran == 1 else 's'}.")

    def report(self, row: Any) -> None:
        tenant = (row.args_kwargs.get(TENANT_KEY) or {}).get("slug", "no tenant")
        took = (row.finished_at - row.started_at).total_seconds() if row.finished_at else 0
        name = row.task_path.rsplit(".", 1)[-1]
        line = f"{tenant}: {name} {row.status.lower()} in {took * 1000:.0f} ms"
        if row.status == "FAILED":
            reason = [x for x in row.traceback.strip().splitlines() if x.strip()][-1:]
            line += f" ({printable(reason[0]) if reason else row.exception_class_path})"
        self.stderr.write(line)
