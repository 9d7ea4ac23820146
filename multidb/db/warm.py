"""Warm connections to tenant databases: shared by every thread of a process, within one budget.

A request takes its tenant's connection from here and gives it back when it ends, so the next
request for that tenant (in any thread: ASGI's threads are short-lived) finds it open. Each
connection is kept under a key made of everything it was opened with (server, database, role,
password), so it is only ever handed to a request for the same tenant database, logged in as the
same role: a tenant that moved or whose password was rotated never gets an old one.

The budget counts every connection the process has open to tenant databases, idle or in use. When
a new one is needed and the budget is spent, the least recently used idle connection (another
tenant's, usually) is closed first; when none is idle, the request waits up to ``timeout`` and then
fails as the database being unavailable (the 503 page). Nothing else opens or closes connections
behind the caller's back: there is no background thread.
"""

from __future__ import annotations

import gc
import select
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable

import psycopg
from psycopg.pq import TransactionStatus

# An idle connection unused for this long is closed the next time the pool is touched, so a
# process that served a burst of tenants gives their connections back.
MAX_IDLE_SECONDS = 300.0


class BudgetExhausted(psycopg.OperationalError):
    """Every connection of the budget is in use; Django reports it as the database being
    unavailable, like psycopg_pool's PoolTimeout."""


class WarmConnections:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        # Idle connections, least recently given back first: (key, connection, when).
        self._idle: OrderedDict[int, tuple[Hashable, psycopg.Connection, float]] = OrderedDict()
        # The same, by key (most recently given back last): finding one is not a scan of all.
        self._idle_by_key: dict[Hashable, dict[int, None]] = {}
        # Connections handed out and not given back. Weak: a connection dropped by a thread
        # that ended without closing it is no longer counted once it is collected.
        self._in_use: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()

    def take(
        self,
        key: Hashable,
        connect: Callable[[], psycopg.Connection],
        *,
        budget: int,
        timeout: float,
    ) -> psycopg.Connection:
        deadline = time.monotonic() + timeout
        doomed: list[psycopg.Connection] = []
        collected = False
        try:
            with self._lock:
                while True:
                    self._expire(doomed)
                    found = self._pop_idle(key)
                    if found is not None:
                        if _usable(found):
                            self._in_use.add(found)
                            return found
                        doomed.append(found)
                        continue
                    # (A loop: the budget may have been lowered below what is open.)
                    while len(self._idle) + len(self._in_use) >= budget and self._idle:
                        doomed.append(self._remove_idle(next(iter(self._idle))))
                    if len(self._idle) + len(self._in_use) < budget:
                        # A place is reserved by a stand-in until the connection exists.
                        placeholder = _Reserved()
                        self._in_use.add(placeholder)  # type: ignore[arg-type]
                        break
                    if not collected:
                        # A thread that ended without closing its connection leaves it to
                        # the garbage collector; collected, it no longer counts.
                        gc.collect()
                        collected = True
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise BudgetExhausted(
                            f"all {budget} connections to tenant databases of this process "
                            f"are in use (waited {timeout:g} s)"
                        )
                    self._lock.wait(remaining)
        finally:
            for connection in doomed:  # outside the lock: closing talks to the server
                connection.close()
        try:
            connection = connect()
        except BaseException:
            with self._lock:
                self._in_use.discard(placeholder)  # type: ignore[arg-type]
                self._lock.notify()
            raise
        with self._lock:
            self._in_use.discard(placeholder)  # type: ignore[arg-type]
            self._in_use.add(connection)
        return connection

    def give_back(self, key: Hashable, connection: psycopg.Connection) -> None:
        """The caller is done with ``connection``: keep it for the next request, unless it is
        broken or still inside a transaction, which is then closed (rolling it back)."""
        keep = _usable(connection) and (
            connection.info.transaction_status == TransactionStatus.IDLE
        )
        with self._lock:
            self._in_use.discard(connection)
            if keep:
                self._idle[id(connection)] = (key, connection, time.monotonic())
                self._idle_by_key.setdefault(key, {})[id(connection)] = None
            self._lock.notify()
        if not keep:
            connection.close()

    def discard(self, match: Callable[[Hashable], bool]) -> None:
        """Close the idle connections whose key matches (a database dropped, a tenant moved)."""
        with self._lock:
            doomed = [
                self._remove_idle(ident)
                for ident, (key, _, _) in list(self._idle.items())
                if match(key)
            ]
            self._lock.notify_all()
        for connection in doomed:
            connection.close()

    def close_idle(self) -> None:
        with self._lock:
            doomed = [c for _, c, _ in self._idle.values()]
            self._idle.clear()
            self._idle_by_key.clear()
            self._lock.notify_all()
        for connection in doomed:
            connection.close()

    def counts(self) -> tuple[int, int]:
        """(idle, in use), for tests and the benchmarks."""
        with self._lock:
            return len(self._idle), sum(not isinstance(c, _Reserved) for c in self._in_use)

    def _pop_idle(self, key: Hashable) -> psycopg.Connection | None:
        # The most recently given back: the likeliest to be alive, and the others may expire.
        idents = self._idle_by_key.get(key)
        return self._remove_idle(next(reversed(idents))) if idents else None

    def _remove_idle(self, ident: int) -> psycopg.Connection:
        key, connection, _ = self._idle.pop(ident)
        idents = self._idle_by_key[key]
        del idents[ident]
        if not idents:
            del self._idle_by_key[key]
        return connection

    def _expire(self, doomed: list[psycopg.Connection]) -> None:
        cutoff = time.monotonic() - MAX_IDLE_SECONDS
        while self._idle:
            ident, (_, _, since) = next(iter(self._idle.items()))
            if since >= cutoff:
                break
            doomed.append(self._remove_idle(ident))


class _Reserved:
    """Holds a place in the budget while a connection is being opened."""


def _usable(connection: psycopg.Connection) -> bool:
    """Whether an idle connection can be handed out, without a round trip to ask.

    An idle connection has nothing to read: the server speaks first only when it ends the
    session (a restart, ``pg_terminate_backend``, a dropped database), and then the socket is
    readable (the error, or the end of the stream). A notice would make it readable too; such a
    connection is closed as well, which costs one new connection and nothing else.
    """
    if connection.closed or connection.broken:
        return False
    # poll(), not select(): select() cannot watch a descriptor numbered 1024 or more.
    poller = select.poll()
    try:
        poller.register(connection.fileno(), select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


# One per process: every thread's Django connections take from it.
pool = WarmConnections()
