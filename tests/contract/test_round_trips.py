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
from django.conf import settings
from django.db import connections
from django.db.backends.postgresql import base
from django.test import Client

# The second view of a page (the first fills what is cached per process), message by message.
# The tenant comes from the process's memory (shared.strategy.find_tenant), and the page and
# its count from one statement (shared.views.CountingPaginator).
PAGE_VIEW = {
    # BEGIN, set_config(app.account_id) if the account still exists, page, COMMIT
    "rls": {"round_trips": 4, "statements": 4},
    # the page, on the tenant's warm connection (multidb.db.warm), in autocommit
    "multidb": {"round_trips": 1, "statements": 1},
    # BEGIN, set_config(search_path) if the schema still exists, page, COMMIT
    "schemas": {"round_trips": 4, "statements": 4},
}


def sent_messages(trace: str) -> Counter[str]:
    """The messages the client sent (``F`` lines of a PQtrace log), by type."""
    sent: Counter[str] = Counter()
    for line in trace.splitlines():
        fields = line.split("\t")
        if len(fields) > 3 and fields[1] == "F":
            sent[fields[3]] += 1
    return sent


def sent_statements(trace: str) -> list[str]:
    """The text of each statement sent (``Query`` and ``Parse`` lines), for failure messages."""
    return [
        fields[-1][:80]
        for line in trace.splitlines()
        if len(fields := line.split("\t")) > 3
        and fields[1] == "F"
        and fields[3] in ("Query", "Parse")
    ]


@pytest.fixture
def wire(monkeypatch) -> Iterator[Callable[[], tuple[Counter[str], str]]]:
    """Every connection Django takes after this fixture starts traces what it sends into one
    file, once (libpq keeps one trace per connection: a second would replace the first)."""
    fd, path = tempfile.mkstemp(prefix="tenancy-trace-")
    traced: list[psycopg.Connection] = []
    init_connection_state = base.DatabaseWrapper.init_connection_state

    # Whenever Django takes a connection, new or warm from a pool, before it says anything.
    def tracing(self):
        if self.connection not in traced:
            self.connection.pgconn.trace(fd)
            traced.append(self.connection)
        init_connection_state(self)

    def stop() -> None:
        for connection in traced:
            if not connection.closed:
                connection.pgconn.untrace()
        traced.clear()

    def read() -> tuple[Counter[str], str]:
        stop()
        with open(path) as file:
            trace = file.read()
        return sent_messages(trace), trace

    monkeypatch.setattr(base.DatabaseWrapper, "init_connection_state", tracing)
    try:
        yield read
    finally:
        stop()
        os.close(fd)
        os.unlink(path)


@pytest.fixture
def first_view(live_db, two_tenants, monkeypatch):
    """The first view of the page, untraced: it fills what a process remembers."""
    tenant_a, _ = two_tenants
    # However slow the machine, the second view finds the tenant remembered.
    monkeypatch.setattr(settings, "TENANCY_TENANT_CACHE_SECONDS", 600.0)
    assert Client().get("/subtasks/", headers={"host": tenant_a.host}).status_code == 200
    connections.close_all()  # as at the end of a request: the next one takes them anew
    return tenant_a


def test_one_page_view_costs_what_it_did(strategy, first_view, wire):
    assert Client().get("/subtasks/", headers={"host": first_view.host}).status_code == 200
    sent, trace = wire()
    measured = {
        "round_trips": sent["Sync"] + sent["Query"],
        "statements": sent["Execute"] + sent["Query"],
    }
    expected = dict(PAGE_VIEW[strategy.name])
    if strategy.name == "rls" and settings.TENANCY_CITUS:
        # The same round trips: the two SET LOCALs that Citus needs (rls.citus) go out in one
        # pipeline with the statement that checks the account.
        expected["statements"] += 2
    assert measured == expected, "\n".join(sent_statements(trace))
