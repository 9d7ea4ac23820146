"""The list page's cost depends on the tenant's rows, not on everyone's: every tenant table it
touches is reached through an index, and the list itself through one that leads with
account_id. With sequential scans priced out, a Seq Scan in the plan means no index fits."""

from __future__ import annotations

import json

from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

TENANT_TABLES = {
    "tracker_account",
    "tracker_user",
    "tracker_project",
    "tracker_task",
    "tracker_subtask",
}


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def page_queries(host: str, path: str) -> list[str]:
    with CaptureQueriesContext(connections["default"]) as captured:
        assert Client().get(path, headers={"host": host}).status_code == 200
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith("SELECT")
        and "tracker_" in q["sql"]
        and "tracker_account_by_slug" not in q["sql"]
    ]


def explain(sql: str, account_id: int) -> dict:
    with connections["default"].cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            cursor.execute("SELECT set_config('app.account_id', %s, true)", [str(account_id)])
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            document = cursor.fetchone()[0]
            return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
        finally:
            cursor.execute("ROLLBACK")


def index_columns(index: str, table: str) -> list[str]:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE c.relname = %s AND i.indrelid = to_regclass(%s) ORDER BY k.n",
            [index, table],
        )
        return [row[0] for row in cursor.fetchall()]


def test_the_list_page_never_scans_a_tenant_table(live_db, tenant_a):
    queries = page_queries(tenant_a.host, "/subtasks/2/")
    assert len(queries) == 1, queries  # the page, with its count (COUNT(*) OVER ())
    for sql in queries:
        plan = explain(sql, tenant_a.tenant.pk)
        scanned = [
            (n["Node Type"], n.get("Relation Name"), n.get("Index Name"))
            for n in nodes(plan)
            if n.get("Relation Name") in TENANT_TABLES
        ]
        assert scanned, sql
        seq = [s for s in scanned if s[0] == "Seq Scan"]
        assert not seq, f"sequential scan of {seq} in\n{json.dumps(plan, indent=1)}"
        # An Index Scan names its index; a Bitmap Heap Scan's index is on its child node.
        used = {n["Index Name"] for n in nodes(plan) if "Index Name" in n}
        on_subtask = {i: c for i in used if (c := index_columns(i, "tracker_subtask"))}
        if any(s[1] == "tracker_subtask" for s in scanned):
            assert on_subtask, sql
        for index, columns in on_subtask.items():
            assert columns[0] == "account_id", (index, columns)


def test_every_tenant_table_has_an_index_leading_with_account_id(live_db, two_tenants):
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT t.relname, bool_or(a.attname = 'account_id') FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE t.relname = ANY(%s) GROUP BY t.relname",
            [sorted(TENANT_TABLES - {"tracker_account"})],
        )
        found = dict(cursor.fetchall())
    assert found == dict.fromkeys(TENANT_TABLES - {"tracker_account"}, True)
