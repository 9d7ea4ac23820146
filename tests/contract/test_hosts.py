"""Host resolution is strict: a tenant host, the bare host, or an error page, never a guess."""

import pytest
from django.core.exceptions import DisallowedHost
from django.test import Client

from shared.hosts import tenant_slug


@pytest.mark.parametrize(
    ("host", "slug"),
    [
        ("localhost", None),
        ("localhost:8000", None),
        ("127.0.0.1:8000", None),
        ("tenant-1.localhost", "tenant-1"),
        ("tenant-1.localhost:8000", "tenant-1"),
        ("TENANT-1.LOCALHOST", "tenant-1"),
    ],
)
def test_tenant_slug(host, slug):
    assert tenant_slug(host, "localhost") == slug


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "a.b.localhost",
        "-x.localhost",
        "tenant-1.localhost.evil.example",
        "localhost.evil",
        "x" * 64 + ".localhost",
        ":8000",
    ],
)
@pytest.mark.case("host-foreign-or-malformed")
def test_bad_hosts_are_refused(host):
    with pytest.raises(DisallowedHost):
        tenant_slug(host, "localhost")


def get(host, path="/"):
    return Client().get(path, headers={"host": host})


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "a.b.localhost",
        "tenant_1.localhost",
        "tenant-1.localhost@evil.example",
        "tenant-1.localhost:notaport",
        "x" * 64 + ".localhost",
    ],
)
@pytest.mark.case("host-foreign-or-malformed")
def test_malformed_or_foreign_host_gets_a_400_page(live_db, two_tenants, host):
    response = get(host, "/subtasks/")
    assert response.status_code == 400
    assert b"Bad request" in response.content


@pytest.mark.case("unknown-tenant-404")
def test_unknown_tenant_gets_a_404_page(live_db, two_tenants):
    response = get("tenant-99999.localhost", "/subtasks/")
    assert response.status_code == 404
    assert "no tenant called “tenant-99999”" in response.content.decode()


def test_bare_host_lists_the_tenants(live_db, tenant_a, tenant_b):
    response = get("localhost:8000")
    assert response.status_code == 200
    body = response.content.decode()
    for t in (tenant_a, tenant_b):
        assert f'href="//{t.slug}.localhost:8000/"' in body


def test_tenant_root_redirects_to_the_list(live_db, tenant_a):
    response = get(tenant_a.host)
    assert response.status_code == 302
    assert response["Location"] == "/subtasks/"


@pytest.mark.case("unknown-tenant-404")
def test_the_list_does_not_exist_on_the_bare_host(live_db, two_tenants):
    assert get("localhost", "/subtasks/").status_code == 404


@pytest.mark.parametrize(
    "path", ["/subtasks/0/", "/subtasks/-1/", "/subtasks/abc/", "/subtasks/99999999999999999999/"]
)
@pytest.mark.case("page-parameters")
def test_bad_page_numbers_get_a_404(live_db, tenant_a, path):
    assert get(tenant_a.host, path).status_code == 404


def test_healthz(live_db, two_tenants):
    response = get("localhost", "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
