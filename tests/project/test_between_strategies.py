"""A tenant exported from one strategy and imported into the two others arrives unchanged: the
same digest, the same pages. Each project runs as its own commands, on one private cluster."""

from __future__ import annotations

import hashlib

from bench.common import fresh_database, in_django, manage, private_cluster


def test_tenant_7_from_rls_into_schemas_and_multidb(tmp_path):
    archive = tmp_path / "t7.tgz"
    with private_cluster() as (cluster, env):
        for strategy in ("rls", "schemas", "multidb"):
            fresh_database(cluster, strategy, env)
        manage("rls", env, "createtestdata", "--accounts", "7")
        # Projects without tenant-7, whose other tenants get other ids than in rls.
        for strategy in ("schemas", "multidb"):
            manage(strategy, env, "createtestdata", "--accounts", "6", "--seed", "3")
        out = manage("rls", env, "exporttenant", "tenant-7", "-o", str(archive)).stdout
        assert out.startswith(f"Exported tenant-7 to {archive} (")
        for strategy in ("schemas", "multidb"):
            out = manage(strategy, env, "importtenant", str(archive)).stdout
            assert out.startswith("Imported tenant-7 (")
            assert "exported from rls" in out
        digests = {
            strategy: manage(strategy, env, "tenantdigest", "tenant-7").stdout.split()[1]
            for strategy in ("rls", "schemas", "multidb")
        }
        assert len(set(digests.values())) == 1, digests
        pages = {
            strategy: in_django(strategy, env, "tests.project.show_pages")
            for strategy in ("rls", "schemas", "multidb")
        }
    assert pages["rls"] == pages["schemas"] == pages["multidb"]
    assert all(page.count("<tr>") == 10 for page in pages["rls"].values())
    print(
        f"\ntenant-7 in rls, schemas and multidb: {digests['rls']}, pages "
        + ", ".join(hashlib.sha256(p.encode()).hexdigest()[:12] for p in pages["rls"].values())
    )
