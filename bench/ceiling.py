"""The ceiling for `make bench`: the subtask list as a bare WSGI app on psycopg's pool.

The same three queries the rls strategy runs for a page (the account by its host, the count,
the page of rows with their task and project), against the same tables, rendering the same
rows; no Django, no ORM, no row-level security (it reads the control database, whose policies
are off). What it serves per second is what the database and the HTTP stack allow.
"""

from __future__ import annotations

import html
import os
import re

from psycopg_pool import ConnectionPool

from shared.pages import PAGE_SIZE

PATH = re.compile(r"^/subtasks/(?:([1-9][0-9]{0,8})/)?$")
HOST = re.compile(r"^([a-z0-9-]{1,63})\.localhost(?::[0-9]{1,5})?$")

ACCOUNT = "SELECT id, name FROM tracker_account WHERE slug = %s"
COUNT = "SELECT count(*) FROM tracker_subtask WHERE account_id = %s"
PAGE = """
SELECT s.name, t.name, p.name, s.is_complete
FROM tracker_subtask s
JOIN tracker_task t ON t.account_id = s.account_id AND t.id = s.task_id
JOIN tracker_project p ON p.account_id = t.account_id AND p.id = t.project_id
WHERE s.account_id = %s
ORDER BY s.name, s.id
LIMIT %s OFFSET %s
"""

pool = ConnectionPool(
    os.environ["CEILING_DATABASE_URL"],
    min_size=2,
    max_size=10,
    kwargs={"autocommit": True, "prepare_threshold": None},
    open=True,
)


def respond(start_response, status: str, body: str):
    data = body.encode()
    start_response(
        status, [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data)))]
    )
    return [data]


def application(environ, start_response):
    if environ["PATH_INFO"] == "/healthz":
        return respond(start_response, "200 OK", "ok")
    host, path = HOST.match(environ.get("HTTP_HOST", "")), PATH.match(environ["PATH_INFO"])
    if not host or not path:
        return respond(start_response, "404 Not Found", "not found")
    number = int(path.group(1) or 1)
    with pool.connection() as connection:
        account = connection.execute(ACCOUNT, [host.group(1)]).fetchone()
        if account is None:
            return respond(start_response, "404 Not Found", "no such tenant")
        (count,) = connection.execute(COUNT, [account[0]]).fetchone() or (0,)
        rows = connection.execute(
            PAGE, [account[0], PAGE_SIZE, (number - 1) * PAGE_SIZE]
        ).fetchall()
    if not rows and number != 1:
        return respond(start_response, "404 Not Found", "no such page")
    name = html.escape(account[1])
    cells = "".join(
        f"<tr><td>{html.escape(s)}</td><td>{html.escape(t)}</td><td>{html.escape(p)}</td>"
        f'<td class="account">{name}</td><td>{"done" if done else "open"}</td></tr>'
        for s, t, p, done in rows
    )
    pages = -(-count // PAGE_SIZE)
    return respond(
        start_response,
        "200 OK",
        f"<!doctype html><title>{name}</title><h1>{name}</h1>"
        f"<p>{count} subtasks · page {number} of {pages}</p><table>{cells}</table>",
    )
