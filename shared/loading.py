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
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
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
    """A loader ended without reporting (killed, out of memory). The accounts it was on may have
    been committed just before it died, or rolled back: ``unknown`` holds their numbers."""

    def __init__(self, unknown: list[int]) -> None:
        super().__init__("a loader process ended without a word")
        self.unknown = unknown


class Loaders:
    """Loads ``numbers`` in ``processes`` processes; iterate for each account's outcome, in the
    order they finish. After the first failure or Ctrl-C, the loaders take no new account, and
    the iteration ends once each has reported the one it was on.

    Each loader has a pipe of its own: the parent hands it one number at a time and reads back
    its outcome. Pipes need no named semaphores, so nothing is left for multiprocessing's
    resource tracker to report when the command is interrupted (its queues' locks are)."""

    def __init__(self, numbers: Sequence[int], plan: Plan, processes: int) -> None:
        from django.conf import settings

        context = multiprocessing.get_context("spawn")
        self.numbers = iter(numbers)
        self.stopping = False
        self.interrupted = False
        self.died = False
        # The loaders use this process's databases as they are now (under tests, the test
        # databases), not whatever their settings module would say; and its secret key, from
        # which multidb derives the tenant roles' passwords.
        inherited = {
            "DATABASES": {alias: dict(conf) for alias, conf in settings.DATABASES.items()},
            "SECRET_KEY": settings.SECRET_KEY,
        }
        self.pipes: list[tuple[Connection, Connection]] = [context.Pipe() for _ in range(processes)]
        self.processes = [
            context.Process(
                target=_loader,
                args=(os.getpid(), theirs, plan, inherited),
                name=f"createtestdata loader {i + 1}",
                daemon=True,
            )
            for i, (_, theirs) in enumerate(self.pipes)
        ]
        # The loaders that are loading an account: their pipes, and the account.
        self.busy: dict[Connection, int] = {}
        self.unknown: list[int] = []  # what the loaders that died were on

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
        for ours, theirs in self.pipes:
            theirs.close()  # so that a loader's death reads as the end of its pipe
            self._hand_out(ours)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping = True
        for ours, _ in self.pipes:
            ours.close()  # a loader still waiting for a number reads the end, and exits
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()

    def _hand_out(self, pipe: Connection) -> None:
        number = None if self.stopping else next(self.numbers, None)
        try:
            pipe.send(number)  # None: nothing more, the loader exits
        except OSError:  # it died after its last report
            self.stopping = self.died = True
            number = None
        if number is None:
            self.busy.pop(pipe, None)
        else:
            self.busy[pipe] = number

    def _interrupt(self, signum: int, frame: object) -> None:
        # Ctrl-C (once or more): take no new account, and let the iteration end when the
        # loaders have reported the ones they are on. Raising here instead could drop an
        # outcome already read from its pipe.
        self.interrupted = True
        self.stopping = True

    def __iter__(self) -> Iterator[Outcome]:
        previous = signal.signal(signal.SIGINT, self._interrupt)
        try:
            while self.busy:
                # A loader that died wakes this too: its pipe reads as ended.
                for pipe in wait(list(self.busy)):
                    assert isinstance(pipe, Connection)
                    try:
                        outcome: Outcome = pipe.recv()
                    # It died: let the others report the accounts they are on. A reset, not
                    # the end, when it died with a number it had not read yet.
                    except (EOFError, OSError):
                        self.unknown.append(self.busy.pop(pipe))
                        self.stopping = self.died = True
                        continue
                    if outcome.counts is None:
                        self.stopping = True
                    self._hand_out(pipe)
                    yield outcome
        finally:
            signal.signal(signal.SIGINT, previous)
        if self.died:
            raise LoadersDied(self.unknown)


def _loader(parent: int, pipe: Connection, plan: Plan, inherited: dict[str, Any]) -> None:
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
        while os.getppid() == parent:
            try:
                number = pipe.recv()
            except (EOFError, OSError):  # the parent is done with us, or gone
                break
            if number is None:
                break
            try:
                outcome = load_one(strategy, number, plan)
            except Exception as exc:  # a bug: say which, and stop the others
                traceback.print_exc()
                outcome = Outcome(number, None, f"{type(exc).__name__}: {first_line(exc)}")
            try:
                pipe.send(outcome)
            except OSError:  # the parent is gone: nobody to report to
                break
    finally:
        connections.close_all()
