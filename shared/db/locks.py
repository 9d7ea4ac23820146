"""Advisory locks that serialise provisioning across processes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connections

from shared.db import OWNER_ALIAS, connect_directly


class Busy(Exception):
    """Another process held the lock for longer than ``WAIT``."""


WAIT = "30s"

# The locks this thread holds: taking one again inside its block is a no-op, so that work
# done under a lock may call code that takes the same lock (dropping a half-made tenant).
_held = threading.local()


@contextmanager
def advisory_lock(scope: str, name: str) -> Iterator[None]:
    """Hold PostgreSQL's advisory lock on (``scope``, ``name``) for the block, waiting up to
    ``WAIT`` for it (then ``Busy``).

    It lives on a connection of its own: the work inside closes and reopens Django's
    connections (migrations do), and a lock held by one of them would be let go with it. The
    connection is to the maintenance database, where only the owner may connect: a session of
    the runtime role, which may connect to the strategy's database, could otherwise take the
    lock first and hold it. The owner must reach PostgreSQL directly, not through a pooler in
    transaction mode, for a session-level lock to mean anything.
    """
    database = connections.settings[OWNER_ALIAS]["NAME"]
    held: set[tuple[str, str, str]] = _held.__dict__.setdefault("keys", set())
    key = (database, scope, name)
    if key in held:
        yield
        return
    with connect_directly(OWNER_ALIAS, dbname="postgres", autocommit=True) as conn:
        conn.execute(f"SET lock_timeout = '{WAIT}'")
        try:
            conn.execute(
                "SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))",
                [f"{database}:{scope}", name],
            )
        except psycopg.errors.LockNotAvailable:
            raise Busy(f"another process has been provisioning {name} for {WAIT}") from None
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
