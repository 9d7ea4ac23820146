"""Advisory locks that serialise provisioning across processes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connections

from shared.db import OWNER_ALIAS


@contextmanager
def advisory_lock(scope: str, name: str) -> Iterator[None]:
    """Hold PostgreSQL's advisory lock on (``scope``, ``name``) for the block, waiting for it.

    It lives on a connection of its own: the work inside closes and reopens Django's
    connections (migrations do), and a lock held by one of them would be let go with it.
    """
    conf = connections.settings[OWNER_ALIAS]
    with psycopg.connect(
        host=conf["HOST"],
        port=conf["PORT"],
        user=conf["USER"],
        password=conf["PASSWORD"],
        dbname=conf["NAME"],
        autocommit=True,
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))", [scope, name])
        yield
