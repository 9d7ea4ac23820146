"""The rest of the attacker's catalogue: tenant B probing for tenant A through the paths that
libraries in this space have leaked through (see README.md here for every case by name)."""

from __future__ import annotations

import copy
import html
import io
from contextlib import contextmanager, redirect_stdout

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import DatabaseError, connections, router, transaction
from django.test import Client, override_settings
from django.urls import path

from shared.db import OWNER_ALIAS, RUNTIME_ALIAS
from shared.db.per_transaction import TenantGone
from shared.pages import ACCOUNT_CELL
from shared.tenancy import activate
from shared.urls import urlpatterns as shared_urls


def get(host: str, path: str = "/subtasks/", **headers):
    return Client().get(path, headers={"host": host, **headers})


def accounts_on(response) -> set[str]:
    return {html.unescape(a) for a in ACCOUNT_CELL.findall(response.content.decode())}


def assert_only(response, me, other) -> None:
    assert response.status_code == 200
    assert accounts_on(response) == {me.tenant.name}
    assert other.tenant.name not in html.unescape(response.content.decode())


def alias_for(strategy, tenant) -> str:
    with activate(tenant):
        return router.db_for_write(strategy.model("subtask"))


class Rollback(Exception):
    pass


# -- ids and parameters in URLs ------------------------------------------------------------


@pytest.mark.case("ids-in-urls")
def test_other_tenants_ids_in_urls_and_parameters(live_db, strategy, tenant_a, tenant_b):
    a_ids = {n: tenant_a.ids[n] for n in ("project", "task", "subtask")}
    paths = [f"/subtasks/{i}/" for ids in a_ids.values() for i in ids[-3:]]
    paths += [
        f"/{name}s/{ids[0]}/" for name, ids in a_ids.items()
    ]  # detail pages that do not exist
    paths += [f"/accounts/{tenant_a.tenant.pk}/", f"/{tenant_a.slug}/subtasks/"]
    b_pages = -(-len(tenant_b.ids["subtask"]) // 10)
    for url in paths:
        response = get(tenant_b.host, url)
        assert response.status_code in (200, 404), (url, response.status_code)
        if response.status_code == 200:  # a page number that B has too: B's page
            assert int(url.strip("/").split("/")[-1]) <= b_pages
            assert_only(response, tenant_b, tenant_a)
    # Parameters naming A are ignored, never obeyed.
    for query in (
        f"account={tenant_a.tenant.pk}",
        f"account_id={tenant_a.tenant.pk}",
        f"tenant={tenant_a.slug}",
        f"task={a_ids['task'][0]}&project={a_ids['project'][0]}",
        "page=-1",
        "page=99999999999999999999",
        "page=abc",
    ):
        assert_only(get(tenant_b.host, f"/subtasks/?{query}"), tenant_b, tenant_a)


# -- transactions --------------------------------------------------------------------------


def _planted(strategy, tenant) -> bool:
    with activate(tenant):
        return strategy.model("subtask").objects.filter(name="planted").exists()


def failing_view(request):
    from shared.strategy import get_strategy

    task = get_strategy().model("task").objects.first()
    get_strategy().model("subtask").objects.create(task=task, name="planted")
    raise RuntimeError("the view fails after writing")


def savepoint_view(request):
    """A savepoint rolled back mid-request, around a nested cross-tenant activation."""
    from django.http import JsonResponse

    from shared.strategy import get_strategy

    strategy = get_strategy()
    subtask = strategy.model("subtask")
    other = strategy.get_tenant(request.GET["other"])
    alias = router.db_for_write(subtask)
    try:
        with transaction.atomic(using=alias):
            subtask.objects.update(name="renamed")
            with activate(other):
                list(subtask.objects.all())
            raise Rollback
    except Rollback:
        pass
    return JsonResponse({"names": sorted(subtask.objects.values_list("name", flat=True))})


# The app's URLs and two views that fail on purpose (ROOT_URLCONF = this module).
urlpatterns = [*shared_urls, path("fail/", failing_view), path("savepoint/", savepoint_view)]


@pytest.mark.case("transaction-rolled-back")
def test_a_request_that_fails_after_writing(live_db, strategy, tenant_a, tenant_b):
    with override_settings(ROOT_URLCONF=__name__):
        client = Client(raise_request_exception=False)
        response = client.get("/fail/", headers={"host": tenant_a.host})
        assert response.status_code == 500
        assert not _planted(strategy, tenant_a.tenant)
        assert not _planted(strategy, tenant_b.tenant)
        # The next request, on whatever pooled connection the failed one left, is B's alone.
        assert_only(client.get("/subtasks/", headers={"host": tenant_b.host}), tenant_b, tenant_a)
        assert_only(client.get("/subtasks/", headers={"host": tenant_a.host}), tenant_a, tenant_b)


@pytest.mark.case("savepoint-rolled-back")
def test_a_savepoint_rolled_back_mid_request(live_db, strategy, tenant_a, tenant_b):
    with override_settings(ROOT_URLCONF=__name__):
        for me, other in ((tenant_a, tenant_b), (tenant_b, tenant_a)):
            response = get(me.host, f"/savepoint/?other={other.slug}")
            assert response.status_code == 200
            assert set(response.json()["names"]) == me.subtask_names


@pytest.mark.case("server-side-cursor-iterator")
@pytest.mark.parametrize("in_transaction", [True, False], ids=["atomic", "autocommit"])
def test_iterators_of_two_tenants_interleaved(
    live_db, strategy, tenant_a, tenant_b, in_transaction
):
    subtask = strategy.model("subtask")
    aliases = {alias_for(strategy, t.tenant) for t in (tenant_a, tenant_b)}

    def run():
        with activate(tenant_a.tenant):
            rows_a = subtask.objects.values_list("name", flat=True).iterator(chunk_size=2)
            seen_a = {next(rows_a)}
        with activate(tenant_b.tenant):
            seen_b = set(subtask.objects.values_list("name", flat=True).iterator(chunk_size=2))
        with activate(tenant_a.tenant):
            seen_a |= set(rows_a)
        assert seen_a == tenant_a.subtask_names
        assert seen_b == tenant_b.subtask_names

    if not in_transaction:
        return run()
    with transaction.atomic(using=next(iter(aliases))):
        if len(aliases) == 1:
            run()
        else:  # a database per tenant: one transaction each
            with transaction.atomic(using=sorted(aliases)[1]):
                run()


# -- storage that is not there -------------------------------------------------------------


@contextmanager
def vanished(strategy, fixture):
    """The tenant as the app knows it, with its schema or database gone."""
    if strategy.name == "schemas":
        schema = fixture.tenant.schema_name
        with connections[OWNER_ALIAS].cursor() as cursor:
            cursor.execute(f'ALTER SCHEMA "{schema}" RENAME TO "{schema}_gone"')
        try:
            yield fixture.tenant
        finally:
            with connections[OWNER_ALIAS].cursor() as cursor:
                cursor.execute(f'ALTER SCHEMA "{schema}_gone" RENAME TO "{schema}"')
    elif strategy.name == "multidb":
        from multidb.routing import forget

        ghost = copy.copy(fixture.tenant)
        ghost.slug, ghost.db_name = "tenant-ghost", f"{fixture.tenant.db_name}_gone"
        try:
            yield ghost
        finally:
            forget(ghost)
    else:  # rls: the account row is gone (its rows went with it, ON DELETE CASCADE)
        ghost = copy.copy(fixture.tenant)
        ghost.pk, ghost.slug = 10**12, "tenant-ghost"
        yield ghost


@pytest.mark.case("missing-schema-or-database")
def test_a_tenant_whose_storage_is_gone_never_falls_back(live_db, strategy, tenant_a, tenant_b):
    subtask = strategy.model("subtask")
    # rls and schemas: the statement that sets the tenant finds it gone (TenantGone, a 404);
    # multidb: its database cannot be reached. Never someone else's rows, nor an empty list.
    with (
        vanished(strategy, tenant_b) as ghost,
        activate(ghost),
        pytest.raises((DatabaseError, TenantGone)) as refused,
        transaction.atomic(using=router.db_for_read(subtask)),
    ):
        set(subtask.objects.values_list("name", flat=True))
    # Behind PgBouncer, within the connect timeout (shared.env), not PgBouncer's two minutes.
    assert "query_wait_timeout" not in str(refused.value)
    # And the page for a tenant whose schema or database is gone is an error, not a fallback.
    if strategy.name == "schemas":
        with vanished(strategy, tenant_b):
            response = Client(raise_request_exception=False).get(
                "/subtasks/", headers={"host": tenant_b.host}
            )
            assert response.status_code == 404
            assert tenant_a.tenant.name not in response.content.decode()


@pytest.mark.case("missing-schema-or-database")
def test_a_remembered_tenant_whose_slug_was_made_again_is_gone(live_db, strategy, tenant_b):
    """Another process dropped B and made the slug again (a new id, the same schema or
    database name) while this one still remembers the old B: rls and schemas refuse the old
    identity in the statement that sets the tenant. multidb has no such statement: the old
    identity reaches the slug's database as it is now (never the dropped tenant's rows, which
    went with its database), under the old name, until the 2 s memory expires."""
    subtask = strategy.model("subtask")
    stale = copy.copy(tenant_b.tenant)
    stale.pk = 10**9
    if strategy.name == "multidb":
        with activate(stale):
            names = set(subtask.objects.values_list("name", flat=True))
        assert names == tenant_b.subtask_names
        return
    with (
        activate(stale),
        pytest.raises(TenantGone),
        transaction.atomic(using=router.db_for_read(subtask)),
    ):
        set(subtask.objects.values_list("name", flat=True))


# -- probes that infer ---------------------------------------------------------------------


@pytest.mark.case("unique-probe")
def test_a_unique_value_of_another_tenant_is_free_here(live_db, strategy, tenant_a, tenant_b):
    """Had the email been unique across tenants, B's insert would fail and reveal A's user."""
    user = strategy.model("user")
    a_email = sorted(tenant_a.rows["user"])[0][0]
    alias = alias_for(strategy, tenant_b.tenant)
    with transaction.atomic(using=alias), activate(tenant_b.tenant):
        user.objects.create(email=a_email, first_name="Probe", password="!")
        assert user.objects.filter(email=a_email).count() == 1
        transaction.set_rollback(True, using=alias)


def _outcome(strategy, tenant, task_id) -> tuple:
    subtask = strategy.model("subtask")
    alias = alias_for(strategy, tenant)
    with transaction.atomic(using=alias), activate(tenant):
        try:
            with transaction.atomic(using=alias):
                subtask.objects.create(task_id=task_id, name="probe")
                # Django's foreign keys are deferred: ask for the verdict now, not at COMMIT.
                connections[alias].check_constraints()
        except DatabaseError as exc:
            diag = getattr(exc.__cause__, "diag", None)
            return type(exc), getattr(diag, "constraint_name", None)
        finally:
            transaction.set_rollback(True, using=alias)
    return (None, None)


@pytest.mark.case("key-probes")
def test_a_foreign_key_to_another_tenants_row_tells_nothing(live_db, strategy, tenant_a, tenant_b):
    """B points a subtask at an id that is A's task and at one that is nobody's: the answers
    must be the same, or B could map A's ids."""
    only_a = sorted(set(tenant_a.ids["task"]) - set(tenant_b.ids["task"]))
    if strategy.name == "rls":
        assert only_a, "one sequence for all tenants: A's ids are not B's"
    if only_a:
        assert _outcome(strategy, tenant_b.tenant, only_a[0]) == _outcome(
            strategy, tenant_b.tenant, 10**12
        )
        assert _outcome(strategy, tenant_b.tenant, 10**12)[0] is not None  # refused
    else:  # separate sequences: every id of A's is one of B's own rows, reaching B's only
        assert set(tenant_a.ids["task"]) <= set(tenant_b.ids["task"])


# -- state outside the database ------------------------------------------------------------


@pytest.mark.case("cache-keys")
def test_cached_values_stay_with_their_tenant(live_db, tenant_a, tenant_b):
    try:
        with activate(tenant_a.tenant):
            cache.set("subtask-count", "A's", 60)
        with activate(tenant_b.tenant):
            assert cache.get("subtask-count") is None
            cache.set("subtask-count", "B's", 60)
        with activate(None):
            assert cache.get("subtask-count") is None
        with activate(tenant_a.tenant):
            assert cache.get("subtask-count") == "A's"
    finally:
        cache.clear()


@pytest.mark.case("session-cookie-replay")
def test_cookies_from_one_tenant_replayed_on_another(live_db, tenant_a, tenant_b):
    a = Client()
    first = a.get("/subtasks/", headers={"host": tenant_a.host})
    # The app keeps no session: nothing is issued that could be replayed...
    assert not first.cookies and "Set-Cookie" not in first.headers
    # ...and whatever a client sends is not read as a tenant.
    b = Client()
    b.cookies.load(
        {
            "sessionid": "replayed-from-" + tenant_a.slug,
            "csrftoken": "x" * 32,
            "tenant": tenant_a.slug,
        }
    )
    assert_only(b.get("/subtasks/", headers={"host": tenant_b.host}), tenant_b, tenant_a)


@pytest.mark.case("command-without-tenant")
def test_a_management_command_with_no_tenant(live_db, strategy, two_tenants):
    code = (
        "from shared.strategy import get_strategy\n"
        "print('rows:', len(list(get_strategy().model('subtask').objects.all())))"
    )
    out = io.StringIO()
    try:
        with redirect_stdout(out):
            call_command("shell", command=code)
    except Exception as exc:  # refused: the strongest answer
        assert "tenant" in str(exc).lower() or isinstance(exc, DatabaseError), exc
    else:
        assert out.getvalue().strip() == "rows: 0"


# -- Host header tricks --------------------------------------------------------------------

A_HOST = "tenant-901.localhost"
HOST_TRICKS = [
    ("host-case", "TENANT-901.LOCALHOST", {200}),
    ("host-case", "Tenant-901.LocalHost:8000", {200}),
    ("host-trailing-dot", "tenant-901.localhost.", {200, 400}),
    ("host-trailing-dot", "tenant-901.localhost.:8000", {200, 400}),
    ("host-ports", "tenant-901.localhost:8000", {200}),
    ("host-ports", "tenant-901.localhost:8000:8001", {400}),
    ("host-ports", "tenant-901.localhost:tenant-902", {400}),
    ("host-ports", "tenant-901.localhost:-1", {400}),
    ("host-ports", "tenant-901.localhost:65536", {400}),
    ("host-ports", "tenant-901.localhost:0", {400}),
    ("host-at-sign", "tenant-902.localhost@tenant-901.localhost", {400}),
    ("host-at-sign", "tenant-901.localhost@evil.example", {400}),
    ("host-at-sign", "user:pass@tenant-901.localhost", {400}),
    ("host-extra-labels", "tenant-902.tenant-901.localhost", {400}),
    ("host-extra-labels", "www.tenant-901.localhost", {400}),
    ("host-extra-labels", "tenant-901.localhost.evil.example", {400}),
    ("host-idn", "tenänt-901.localhost", {400}),
    ("host-idn", "xn--tennt-901-hcb.localhost", {400, 404}),
    ("host-idn", "tenant-901.xn--lcalhost-0ya", {400}),
    ("host-idn", "tenant-\uff19\uff10\uff11.localhost", {400}),  # full-width digits
    ("host-very-long", "tenant-901." + "a" * 10_000 + ".localhost", {400}),
    ("host-very-long", "t" * 63 + ".localhost", {400, 404}),
    ("host-very-long", "tenant-901.localhost:" + "9" * 5_000, {400}),
]


@pytest.mark.parametrize(("case", "host", "allowed"), HOST_TRICKS)
def test_host_tricks(request, live_db, tenant_a, tenant_b, case, host, allowed):
    request.node.add_marker(pytest.mark.case(case))
    response = get(host)
    assert response.status_code in allowed, response.status_code
    body = html.unescape(response.content.decode())
    assert tenant_b.tenant.name not in body
    if response.status_code == 200:
        assert accounts_on(response) == {tenant_a.tenant.name}


@pytest.mark.case("x-forwarded-host")
def test_forwarded_host_headers_are_not_trusted(live_db, tenant_a, tenant_b):
    assert not settings.USE_X_FORWARDED_HOST
    for header in ("x-forwarded-host", "forwarded", "x-host", "x-original-host"):
        value = tenant_b.host if header != "forwarded" else f"host={tenant_b.host}"
        assert_only(get(tenant_a.host, **{header: value}), tenant_a, tenant_b)
    assert get("evil.example", **{"x-forwarded-host": tenant_a.host}).status_code == 400


# -- the roles -----------------------------------------------------------------------------

ROLE_SQL = """
SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole,
       (SELECT coalesce(array_agg(g.rolname::text), '{}') FROM pg_auth_members m
        JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid)
FROM pg_roles r WHERE rolname = current_user
"""
# What multidb's tenant roles are members of: a mark for the bootstrap's role functions, with
# no rights of its own (checked below).
TENANT_MARK = "tenancy_tenant"
OWNED_SQL = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE pg_has_role(current_user, c.relowner, 'MEMBER')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_temp%%'
"""
RLS_SQL = """
SELECT c.relrowsecurity, c.relforcerowsecurity,
       EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid),
       EXISTS (SELECT FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
               WHERE i.indrelid = c.oid AND a.attname = 'account_id')
FROM pg_class c WHERE c.oid = to_regclass(%s)
"""


@pytest.mark.case("roles")
def test_the_runtime_role_is_least_privileged(live_db, strategy, tenant_a):
    subtask = strategy.model("subtask")
    with activate(tenant_a.tenant):
        connection = connections[router.db_for_read(subtask)]
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            expected = settings.DATABASES[RUNTIME_ALIAS]["USER"]
            if strategy.name == "multidb":  # the tenant database's own role
                expected = connection.settings_dict["NAME"]
            assert cursor.fetchone()[0] == expected
            cursor.execute(ROLE_SQL)
            superuser, bypassrls, createdb, createrole, memberships = cursor.fetchone()
            assert not (superuser or bypassrls or createdb or createrole)
            # So it cannot SET ROLE to an owner.
            assert memberships == ([TENANT_MARK] if strategy.name == "multidb" else [])
            if memberships:
                cursor.execute(
                    "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
                    "(SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid), "
                    "(SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid), "
                    "has_database_privilege(r.oid, current_database(), 'CONNECT') "
                    "FROM pg_roles r WHERE rolname = %s",
                    [TENANT_MARK],
                )
                assert cursor.fetchone() == (False, False, False, False, False, 0, 0, False)
            cursor.execute(OWNED_SQL)
            assert cursor.fetchone()[0] == 0  # owns nothing where tenants' rows live
            cursor.execute("SELECT has_table_privilege(%s, 'TRUNCATE')", [subtask._meta.db_table])
            assert cursor.fetchone()[0] is False
            # No temporary tables: one would sit in front of the tenant's table of that name
            # for every later request on the same pooled session.
            cursor.execute("SELECT has_database_privilege(current_database(), 'TEMPORARY')")
            assert cursor.fetchone()[0] is False


@pytest.mark.case("roles")
def test_every_rls_table_forces_its_policy_and_is_indexed_by_account(live_db, strategy):
    if strategy.name != "rls":
        # The other strategies separate tenants by schema or database, not by policy: their
        # tables must have no account column for a policy to read.
        fields = {f.name for f in strategy.model("subtask")._meta.get_fields()}
        assert "account" not in fields
        return
    tables = [strategy.model(n)._meta.db_table for n in ("user", "project", "task", "subtask")]
    with connections[RUNTIME_ALIAS].cursor() as cursor:
        for table in tables:
            cursor.execute(RLS_SQL, [table])
            enabled, forced, policy, indexed = cursor.fetchone()
            assert (enabled, forced, policy, indexed) == (True, True, True, True), table
        account = strategy.model("subtask")._meta.get_field("account").related_model
        cursor.execute(RLS_SQL, [account._meta.db_table])
        assert cursor.fetchone()[:3] == (True, True, True)
