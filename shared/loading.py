"""createtestdata's loaders: processes that each generate accounts and load them on a connection
of their own, so that Python generating rows and PostgreSQL writing them overlap, and two COPY
streams keep the server busy. Each account is still one transaction: all or nothing.

A loader finishes the account it is on before it stops (after a failure elsewhere or Ctrl-C),
so the command can name every account that is complete. A loader whose parent dies is killed
with it, and its open transaction dies with its connection.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import Error as DatabaseError

from shared.db.locks import Busy
from shared.slugs import SlugRefused
from shared.strategy import Strategy, TenantExists, get_strategy
from shared.testdata import Volumes, generate_tenant

PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class Plan:
    seed: int
    volumes: Volumes
    password: str
    commit: bool


@dataclass(frozen=True)
class Outcome:
    number: int
    counts: dict[str, int] | None  # None: nothing of the account was written
    error: str = ""
    refused: bool = False  # the name itself is refused: running again cannot help


def load_one(strategy: Strategy, number: int, plan: Plan) -> Outcome:
    data = generate_tenant(number, seed=plan.seed, volumes=plan.volumes, password=plan.password)
    try:
        strategy.load_tenant(data, commit=plan.commit)
    except SlugRefused as exc:
        return Outcome(number, None, str(exc), refused=True)
    except (DatabaseError, psycopg.Error, TenantExists, Busy) as exc:
        return Outcome(number, None, first_line(exc))
    return Outcome(number, data.counts())


def first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


class LoadersDied(Exception):
    """A loader ended without reporting (killed, out of memory); its account was rolled back."""


class Loaders:
    """Loads ``numbers`` in ``processes`` processes; iterate for each account's outcome, in the
    order they finish. After the first failure, or ``stop()``, the loaders take no new account."""

    def __init__(self, numbers: Sequence[int], plan: Plan, processes: int) -> None:
        from django.conf import settings

        context = multiprocessing.get_context("spawn")
        self.todo: Any = context.Queue()
        self.results: Any = context.Queue()
        self.stopping = context.Event()
        self.running = processes
        for number in numbers:
            self.todo.put(number)
        for _ in range(processes):
            self.todo.put(None)
        # The loaders use this process's databases as they are now (under tests, the test
        # databases), not whatever their settings module would say; and its secret key, from
        # which multidb derives the tenant roles' passwords.
        inherited = {
            "DATABASES": {alias: dict(conf) for alias, conf in settings.DATABASES.items()},
            "SECRET_KEY": settings.SECRET_KEY,
        }
        self.processes = [
            context.Process(
                target=_loader,
                args=(os.getpid(), self.todo, self.results, self.stopping, plan, inherited),
                name=f"createtestdata loader {i + 1}",
                daemon=True,
            )
            for i in range(processes)
        ]

    def __enter__(self) -> Loaders:
        # Started with Ctrl-C ignored, which they keep. It reaches the whole process group:
        # the parent decides, and a loader finishes the account it is on (a fraction of a
        # second) so that the parent can say what is done; and one that arrived while a loader
        # was still starting would otherwise end it before it could report.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for process in self.processes:
                process.start()
        finally:
            signal.signal(signal.SIGINT, previous)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        # Numbers nobody will take may still sit in the queue's pipe; exiting must not wait
        # to write them.
        self.todo.cancel_join_thread()
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()

    def stop(self) -> None:
        self.stopping.set()

    def __iter__(self) -> Iterator[Outcome]:
        while self.running:
            try:
                outcome = self.results.get(timeout=1)
            except queue.Empty:
                if not any(process.is_alive() for process in self.processes):
                    raise LoadersDied("the loader processes ended without a word") from None
                continue
            if outcome is None:  # a loader is done
                self.running -= 1
                continue
            if outcome.counts is None:
                self.stopping.set()
            yield outcome


def _loader(
    parent: int,
    todo: Any,
    results: Any,
    stopping: Any,
    plan: Plan,
    inherited: dict[str, Any],
) -> None:
    if sys.platform == "linux":  # die with the parent, even when it is killed
        ctypes.CDLL(None, use_errno=True).prctl(
            ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL)
        )
    import django
    from django.conf import settings
    from django.db import connections

    for name, value in inherited.items():
        setattr(settings, name, value)
    django.setup()
    strategy = get_strategy()
    try:
        while not stopping.is_set() and os.getppid() == parent:
            number = todo.get()
            if number is None:
                break
            try:
                outcome = load_one(strategy, number, plan)
            except Exception as exc:  # a bug: say which, and stop the others
                traceback.print_exc()
                outcome = Outcome(number, None, f"{type(exc).__name__}: {first_line(exc)}")
            results.put(outcome)
            if outcome.counts is None:
                break
    finally:
        connections.close_all()
        results.put(None)
