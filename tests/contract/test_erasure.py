"""erasetenant: nothing of the tenant is left anywhere the owner can look, and a record
(readable by the owner only) proves what was erased."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client
from psycopg import errors

from shared import digest
from shared.db import OWNER_ALIAS, RUNTIME_ALIAS, connect_directly
from shared.models import Erasure
from shared.testdata import generate_tenant
from tests.contract.test_transfer import new_slug  # noqa: F401 (a fixture)
from tests.plugins.tenants import VOLUMES

# In every table of the tenant's rows, so that a scan can look for it in any column.
MARKER = "erase-me-4f1c9a"


def marked_tenant(strategy, slug):
    data = generate_tenant(906, volumes=VOLUMES)
    data.slug = slug
    data.users = [u._replace(email=f"{MARKER}.{u.email}") for u in data.users]
    data.projects = [p._replace(details=f"{p.details} {MARKER}") for p in data.projects]
    data.tasks = [t._replace(details=f"{t.details} {MARKER}") for t in data.tasks]
    data.subtasks = [s._replace(name=f"{s.name} {MARKER}") for s in data.subtasks]
    return data, strategy.load_tenant(data)


def owner_scan(text: str) -> list[str]:
    """Every table of every database the owner can connect to, each row as text, searched for
    ``text``: where it is found."""
    found = []
    with connect_directly(OWNER_ALIAS, autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datallowconn "
                "AND has_database_privilege(datname, 'CONNECT')"
            )
        ]
    for name in names:
        with connect_directly(OWNER_ALIAS, dbname=name, autocommit=True) as conn:
            tables = conn.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
                "AND has_table_privilege(format('%I.%I', schemaname, tablename), 'SELECT')"
            ).fetchall()
            for (table,) in tables:
                (hits,) = conn.execute(
                    f"SELECT count(*) FROM {table} AS t WHERE t::text LIKE %s", [f"%{text}%"]
                ).fetchone()
                if hits:
                    found.append(f"{name}: {table} ({hits} rows)")
    return found


@pytest.mark.case("erase-leaves-nothing")
def test_an_erased_tenant_is_gone_everywhere_and_its_record_says_what_went(
    live_db,
    strategy,
    two_tenants,
    new_slug,  # noqa: F811
):
    others = {t.slug: digest.of_tenant(strategy, t.tenant) for t in two_tenants}
    data, tenant = marked_tenant(strategy, new_slug)
    host = {"host": f"{new_slug}.localhost"}
    assert Client().get("/subtasks/", headers=host).status_code == 200
    assert owner_scan(MARKER), "the scan cannot find the tenant it is meant to find"
    before = strategy.row_counts()

    out = io.StringIO()
    call_command("erasetenant", new_slug, "--yes", verbosity=0, stdout=out)

    assert owner_scan(MARKER) == []
    assert strategy.get_tenant(new_slug) is None
    assert strategy.remains(tenant) == []
    assert Client().get("/subtasks/", headers=host).status_code == 404
    record = Erasure.objects.using(OWNER_ALIAS).get(slug=new_slug)
    assert record.digest == digest.of_data(data).value
    assert record.counts == data.counts()
    assert {t: before[t] - n for t, n in strategy.row_counts().items()} == data.counts()
    assert {t.slug: digest.of_tenant(strategy, t.tenant) for t in two_tenants} == others
    assert out.getvalue().startswith(f"Erased {new_slug} at ")
    assert "a scan as the owner finds nothing of it" in out.getvalue()
    Erasure.objects.using(OWNER_ALIAS).filter(slug=new_slug).delete()


@pytest.mark.case("erase-leaves-nothing")
def test_the_runtime_role_cannot_read_erasures(live_db, strategy, new_slug):  # noqa: F811
    with connections[RUNTIME_ALIAS].cursor() as cursor, pytest.raises(Exception) as refused:
        cursor.execute("SELECT slug FROM public.shared_erasure")
    assert isinstance(refused.value.__cause__, errors.InsufficientPrivilege)


def test_an_erased_slug_is_imported_again_only_when_asked(
    live_db,
    strategy,
    tmp_path,
    new_slug,  # noqa: F811
):
    data, _ = marked_tenant(strategy, new_slug)
    path = tmp_path / "t.tgz"
    call_command("exporttenant", new_slug, "-o", str(path), verbosity=0, stdout=io.StringIO())
    call_command("erasetenant", new_slug, "--yes", verbosity=0, stdout=io.StringIO())
    before = strategy.row_counts()
    try:
        with pytest.raises(
            CommandError, match=f"refused: {new_slug} was erased at .*--allow-erased"
        ):
            call_command("importtenant", str(path), verbosity=0)
        assert strategy.get_tenant(new_slug) is None
        # The same rows under another slug are the same erased data.
        with pytest.raises(CommandError, match=rf"refused: these rows \({new_slug}\) were erased"):
            call_command("importtenant", str(path), "--slug", "tenant-908", verbosity=0)
        assert strategy.get_tenant("tenant-908") is None
        assert strategy.row_counts() == before
        call_command("importtenant", str(path), "--allow-erased", verbosity=0, stdout=io.StringIO())
        assert digest.of_tenant(strategy, strategy.get_tenant(new_slug)) == digest.of_data(data)
    finally:
        Erasure.objects.using(OWNER_ALIAS).filter(slug=new_slug).delete()


def test_erasing_nobody_is_one_line(live_db, strategy):
    with pytest.raises(CommandError, match=r"^there is no tenant tenant-nowhere$"):
        call_command("erasetenant", "tenant-nowhere", "--yes", verbosity=0)
