"""What one page view costs the database, counted on the wire: libpq's own trace of every
connection the request uses (the runtime role's, and multidb's tenant role's), read from the
client's side. A round trip is a message the client then waits on (``Sync`` after an extended
query, or a simple ``Query``); a statement is an ``Execute`` or a ``Query``.

The numbers are pinned, so that a change which adds a query to every request shows here. When
a change removes one, lower the number and say what went.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator

import psycopg
import pytest
from django.db import connections
from django.db.backends.postgresql import base
from django.test import Client

# The second view of a page (the first fills what is cached per process), message by message.
PAGE_VIEW = {
    # tracker_account_by_slug(), BEGIN, set_config(app.account_id), count, page, COMMIT
    "rls": {"round_trips": 6, "statements": 6},
    # the tenant comes from the process's cache; a new connection to its database, which
    # Django sets to UTC (set_config TimeZone), BEGIN, count, page, COMMIT
    "multidb": {"round_trips": 5, "statements": 5},
    # the domain, BEGIN, set_config(search_path), count, page, COMMIT
    "schemas": {"round_trips": 6, "statements": 6},
}


def sent_messages(trace: str) -> Counter[str]:
    """The messages the client sent (``F`` lines of a PQtrace log), by type."""
    sent: Counter[str] = Counter()
    for line in trace.splitlines():
        fields = line.split("\t")
        if len(fields) > 3 and fields[1] == "F":
            sent[fields[3]] += 1
    return sent


@pytest.fixture
def wire(monkeypatch) -> Iterator[Callable[[], Counter[str]]]:
    """Every connection Django takes from here on traces what it sends into one file."""
    fd, path = tempfile.mkstemp(prefix="tenancy-trace-")
    traced: list[psycopg.Connection] = []
    get_new_connection = base.DatabaseWrapper.get_new_connection

    def tracing(self, conn_params):
        connection = get_new_connection(self, conn_params)
        connection.pgconn.trace(fd)
        traced.append(connection)
        return connection

    def stop() -> None:
        for connection in traced:
            if not connection.closed:
                connection.pgconn.untrace()
        traced.clear()

    def read() -> Counter[str]:
        stop()
        with open(path) as file:
            return sent_messages(file.read())

    monkeypatch.setattr(base.DatabaseWrapper, "get_new_connection", tracing)
    try:
        yield read
    finally:
        stop()
        os.close(fd)
        os.unlink(path)


def test_one_page_view_costs_what_it_did(live_db, strategy, two_tenants, wire, monkeypatch):
    tenant_a, _ = two_tenants
    if strategy.name == "multidb":  # however slow the machine, the second view is a cache hit
        monkeypatch.setattr("multidb.strategy.CACHE_SECONDS", 600.0)
    client = Client()
    assert client.get("/subtasks/", headers={"host": tenant_a.host}).status_code == 200
    connections.close_all()  # as at the end of a request: the next one takes them anew
    assert client.get("/subtasks/", headers={"host": tenant_a.host}).status_code == 200
    sent = wire()
    measured = {
        "round_trips": sent["Sync"] + sent["Query"],
        "statements": sent["Execute"] + sent["Query"],
    }
    assert measured == PAGE_VIEW[strategy.name], dict(sent)
