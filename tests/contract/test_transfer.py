"""exporttenant and importtenant: one archive format for every strategy, imports that are all or
nothing, and every refusal leaving nothing behind."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from shared import archive, digest, transfer
from shared.tenancy import activate
from shared.testdata import Volumes, generate_tenant
from tests.contract.test_faults import ROOT, app_env, forget_connections
from tests.plugins.tenants import A_NUMBER, VOLUMES

NEW = "tenant-905"


@pytest.fixture
def new_slug(live_db, strategy):
    """A slug no tenant has, dropped again after the test."""

    def drop() -> None:
        forget_connections()
        if strategy.get_tenant(NEW) is not None or strategy.slug_taken(NEW):
            strategy.drop_tenant(NEW)

    drop()
    yield NEW
    drop()


@pytest.fixture
def exported(tmp_path, strategy, two_tenants, live_db) -> Path:
    path = tmp_path / "a.tgz"
    call_command(
        "exporttenant", two_tenants[0].slug, "-o", str(path), verbosity=0, stdout=io.StringIO()
    )
    return path


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def rewrite(path: Path, target: Path, change=None, manifest=None, extra=()) -> Path:
    """A copy of the archive at ``path`` with members changed (``change(name, data)``), the
    manifest's keys replaced, and ``extra`` TarInfo members (with their data) added."""
    files = members(path)
    document = json.loads(files["manifest.json"])
    document.update(manifest or {})
    files["manifest.json"] = json.dumps(document).encode()
    with tarfile.open(target, "w:gz") as tar:
        for name, data in files.items():
            data = change(name, data) if change else data
            if data is None:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return target


def nothing_imported(strategy, slug, before) -> None:
    forget_connections()
    assert strategy.get_tenant(slug) is None
    assert not strategy.slug_taken(slug), "something by the slug's name was left behind"
    assert strategy.row_counts() == before
    response = Client().get("/subtasks/", headers={"host": f"{slug}.localhost"})
    assert response.status_code == 404


@pytest.mark.case("export-holds-one-tenant")
def test_an_archive_holds_the_rows_the_tenant_was_made_from(exported, strategy):
    """Whatever the strategy, the archive's rows are the generated ones, in the same order."""
    manifest, tables = archive.read(exported)
    generated = generate_tenant(A_NUMBER, volumes=VOLUMES)
    assert archive.tenant_data(manifest, tables, generated.slug) == generated
    assert manifest.digest == digest.of_data(generated).value
    assert (manifest.strategy, manifest.format) == (strategy.name, archive.FORMAT)
    assert manifest.migrations == transfer.project_migrations()
    assert sorted(members(exported)) == sorted(archive.MEMBERS)


@pytest.mark.case("import-only-its-tenant")
def test_import_under_a_new_slug_gives_the_same_rows_and_page(
    exported, strategy, two_tenants, new_slug
):
    others = {t.slug: digest.of_tenant(strategy, t.tenant) for t in two_tenants}
    before = strategy.row_counts()
    out = io.StringIO()
    call_command("importtenant", str(exported), "--slug", new_slug, verbosity=0, stdout=out)
    source = two_tenants[0]
    imported = strategy.get_tenant(new_slug)
    assert imported.name == source.tenant.name
    assert digest.of_tenant(strategy, imported) == digest.of_tenant(strategy, source.tenant)
    assert out.getvalue().startswith(f"Imported {new_slug} ({source.tenant.name}) from ")

    def rows(slug: str) -> str:
        html = Client().get("/subtasks/", headers={"host": f"{slug}.localhost"}).content.decode()
        return re.search(r"<tbody>.*</tbody>", html, re.S)[0]

    assert rows(new_slug) == rows(source.slug)
    with activate(imported):
        assert strategy.model("subtask").objects.count() == len(source.subtask_names)
    # The new tenant's rows, and nobody else's: every table grew by the archive's rows alone.
    grown = {t: n - before[t] for t, n in strategy.row_counts().items()}
    assert grown == digest.of_tenant(strategy, imported).counts()
    assert {t.slug: digest.of_tenant(strategy, t.tenant) for t in two_tenants} == others


@pytest.mark.case("export-holds-one-tenant")
def test_the_export_is_one_snapshot(tmp_path, strategy, two_tenants, live_db):
    """A subtask changed while the export runs, after the first tables were read, is not in it:
    every table is read as of the moment the export began."""
    source = two_tenants[0]
    before = digest.of_tenant(strategy, source.tenant)
    subtask = strategy.model("subtask")
    with activate(source.tenant):
        row = subtask.objects.order_by("pk").first()
    changed = []

    def progress(what: str) -> None:
        if what == "copying project rows":  # the snapshot is taken: change a row elsewhere
            with activate(source.tenant):
                subtask.objects.filter(pk=row.pk).update(is_complete=not row.is_complete)
            changed.append(True)

    try:
        result = transfer.export_tenant(strategy, source.tenant, tmp_path / "a.tgz", progress)
        assert changed
        assert digest.of_tenant(strategy, source.tenant) != before  # the change is in
        assert result.manifest.digest == before.value  # the archive is from before it
        manifest, tables = archive.read(tmp_path / "a.tgz")
        archive.tenant_data(manifest, tables, source.slug)  # and consistent with itself
    finally:
        with activate(source.tenant):
            subtask.objects.filter(pk=row.pk).update(is_complete=row.is_complete)


def test_an_existing_slug_is_refused(exported, strategy, two_tenants):
    before = strategy.row_counts()
    with pytest.raises(CommandError, match=f"refused: tenant {two_tenants[0].slug} exists already"):
        call_command("importtenant", str(exported), verbosity=0)
    assert strategy.row_counts() == before
    assert (
        digest.of_tenant(strategy, two_tenants[0].tenant).value == archive.read(exported)[0].digest
    )


def _flip_first_subtask(name: str, data: bytes) -> bytes:
    if name != "subtask.copy":
        return data
    first, rest = data.split(b"\n", 1)
    cells = first.split(b"\t")
    cells[2] = b"t" if cells[2] == b"f" else b"f"
    return b"\t".join(cells) + b"\n" + rest


def _damaged(kind: str):
    def make(path: Path, target: Path) -> Path:
        raw = path.read_bytes()
        if kind == "truncated":
            target.write_bytes(raw[: len(raw) // 2])
        else:  # a run of bytes overwritten in the middle of the compressed stream
            middle = len(raw) // 2
            target.write_bytes(raw[:middle] + bytes(64) + raw[middle + 64 :])
        return target

    return make


def _with(change=None, manifest=None, extra=()):
    return lambda path, target: rewrite(path, target, change, manifest, extra)


def _link(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = "/etc/passwd"
    return info, None


def _file(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = 2
    return info, b"x\n"


def _drop_subtasks(name: str, data: bytes) -> bytes | None:
    return None if name == "subtask.copy" else data


def _as(name: str):
    return lambda member, data: data if member != "user.copy" else None


def _other_columns(path: Path, target: Path) -> Path:
    tables = json.loads(members(path)["manifest.json"])["tables"]
    tables["user"]["columns"] = ["email", "first_name"]
    return rewrite(path, target, manifest={"tables": tables})


REFUSALS = {
    "a-changed-row": (
        _with(_flip_first_subtask),
        "subtask rows do not match its manifest's digest",
    ),
    "a-changed-manifest-digest": (
        _with(manifest={"digest": "sha256:" + "0" * 64}),
        "its manifest says sha256:0000",
    ),
    "a-changed-name": (
        _with(manifest={"name": "Somebody Else Ltd"}),
        "the archive's rows have digest",
    ),
    "truncated": (_damaged("truncated"), "truncated or corrupted"),
    "corrupted": (_damaged("corrupted"), "truncated or corrupted"),
    "not-an-archive": (lambda p, t: (t.write_bytes(b"hello\n"), t)[1], "truncated or corrupted"),
    "unknown-format": (_with(manifest={"format": 2}), "archive format 2 is unknown here"),
    "missing-member": (_with(_drop_subtasks), "the archive lacks subtask.copy"),
    "absolute-path": (_with(extra=[_file("/etc/cron.d/x")]), "holds '/etc/cron.d/x'"),
    "dot-dot": (_with(extra=[_file("../subtask.copy")]), "holds '../subtask.copy'"),
    "symlink": (
        _with(change=_as("user.copy"), extra=[_link("user.copy", tarfile.SYMTYPE)]),
        "'user.copy' is not a regular file",
    ),
    "hard-link": (
        _with(change=_as("user.copy"), extra=[_link("user.copy", tarfile.LNKTYPE)]),
        "'user.copy' is not a regular file",
    ),
    "twice": (_with(extra=[_file("user.copy")]), "holds 'user.copy' twice"),
    "other-tables": (
        _with(manifest={"tables": {"user": {"columns": ["email"], "rows": 1, "sha256": ""}}}),
        "does not describe the tenant's tables",
    ),
    "other-columns": (_other_columns, "the archive's user rows have the columns ['email', "),
    "a-bad-reference": (
        _with(lambda n, d: d if n != "task.copy" else b"99999" + d[d.index(b"\t") :]),
        "task.copy line 1 refers to row '99999'",
    ),
    "a-bad-boolean": (
        _with(lambda n, d: d.replace(b"\tt\t", b"\tyes\t", 1) if n == "subtask.copy" else d),
        "where t or f belongs",
    ),
    "an-unknown-escape": (
        _with(lambda n, d: b"\\q" + d if n == "project.copy" else d),
        "holds an escape COPY does not write",
    ),
    "a-name-that-is-not-text": (
        _with(manifest={"name": 7}),
        "the manifest's fields are not of the types they must be",
    ),
    "migrations-that-are-not-a-list": (
        _with(manifest={"migrations": None}),
        "the manifest's fields are not of the types they must be",
    ),
    "a-deep-manifest": (
        _with(change=lambda n, d: b"[" * 100_000 if n == "manifest.json" else d),
        "the manifest is not JSON",
    ),
    "a-reference-in-other-digits": (
        _with(lambda n, d: d if n != "task.copy" else "\u00b2".encode() + d[d.index(b"\t") :]),
        "task.copy line 1 refers to row '\u00b2'",
    ),
    "a-reference-too-long": (
        _with(lambda n, d: d if n != "task.copy" else b"9" * 5000 + d[d.index(b"\t") :]),
        "task.copy line 1 refers to row '99999",
    ),
    "a-migration-this-project-lacks": (
        lambda p, t: rewrite(
            p, t, manifest={"migrations": [*transfer.project_migrations(), "tracker.9999_future"]}
        ),
        "at tracker.9999_future, which this project does not have",
    ),
    "migrations-this-project-moved-past": (
        lambda p, t: rewrite(p, t, manifest={"migrations": transfer.project_migrations()[:-1]}),
        "this project has moved past the archive's migrations",
    ),
}


@pytest.mark.case("import-all-or-nothing")
@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_archive_leaves_nothing(case, exported, tmp_path, strategy, new_slug):
    make, message = REFUSALS[case]
    bad = make(exported, tmp_path / "bad.tgz")
    before = strategy.row_counts()
    with pytest.raises(CommandError) as refused:
        call_command("importtenant", str(bad), "--slug", new_slug, verbosity=0)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    nothing_imported(strategy, new_slug, before)


def test_another_strategys_migrations_do_not_matter_but_its_columns_do(
    exported, tmp_path, strategy, new_slug
):
    other = "schemas" if strategy.name != "schemas" else "rls"
    foreign = rewrite(
        exported,
        tmp_path / "other.tgz",
        manifest={"strategy": other, "migrations": ["tracker.0001_x"]},
    )
    call_command(
        "importtenant", str(foreign), "--slug", new_slug, verbosity=0, stdout=io.StringIO()
    )
    assert strategy.get_tenant(new_slug) is not None


def test_movetenant_where_every_tenant_shares_a_server_says_how_to_move(strategy, live_db):
    if strategy.places_tenants_on_servers:
        return  # multidb moves tenants: tests/multidb/test_move.py
    with pytest.raises(CommandError, match=r"^the .* strategy keeps every tenant on one server: "):
        call_command("movetenant", "tenant-901", "--to", "127.0.0.1:5432")


BIG = Volumes(users=(1, 1), projects=(40, 40), tasks=(10, 10), subtasks=(60, 60))


@pytest.mark.case("import-all-or-nothing")
def test_an_archive_that_inflates_past_the_limit_is_refused_before_it_is_read(
    exported, tmp_path, strategy, new_slug, monkeypatch
):
    monkeypatch.setattr(archive, "MAX_BYTES", 4096)
    before = strategy.row_counts()
    with pytest.raises(CommandError, match="holds more than 4,096 bytes uncompressed"):
        call_command("importtenant", str(exported), "--slug", new_slug, verbosity=0)
    nothing_imported(strategy, new_slug, before)


@pytest.mark.case("import-all-or-nothing")
def test_a_name_that_inflates_past_the_limit_is_refused_while_it_is_read(
    exported, tmp_path, strategy, new_slug, monkeypatch
):
    """A long member name is read before its member is seen: the stream itself is capped."""
    monkeypatch.setattr(archive, "MAX_BYTES", 100_000)
    long_name = tarfile.TarInfo("x" * 3_000_000)
    bad = rewrite(exported, tmp_path / "long.tgz", extra=[(long_name, b"")])
    before = strategy.row_counts()
    with pytest.raises(CommandError, match="holds more than 100,000 bytes uncompressed"):
        call_command("importtenant", str(bad), "--slug", new_slug, verbosity=0)
    nothing_imported(strategy, new_slug, before)


def test_an_archive_is_its_owners_alone(exported):
    assert exported.stat().st_mode & 0o777 == 0o600  # it holds password hashes


@pytest.mark.case("import-all-or-nothing")
def test_a_killed_import_leaves_no_tenant(tmp_path, strategy, live_db, new_slug):
    """Killed while it loads 24,000 subtasks: no tenant is served or listed, nothing is counted,
    and the same import then succeeds."""
    data = generate_tenant(1, volumes=BIG)
    data.slug = new_slug
    big = strategy.load_tenant(data)
    path = tmp_path / "big.tgz"
    call_command("exporttenant", new_slug, "-o", str(path), verbosity=0, stdout=io.StringIO())
    strategy.drop_tenant(new_slug)
    before = strategy.row_counts()
    process = subprocess.Popen(
        [sys.executable, f"{strategy.name}/manage.py", "importtenant", str(path)],
        cwd=ROOT,
        env=app_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stderr:
            if "loading" in line:
                time.sleep(0.3)  # into the load
                break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL, "it finished before it could be killed"
    forget_connections()
    assert strategy.get_tenant(new_slug) is None
    assert new_slug not in [t.slug for t in strategy.list_tenants()]
    assert strategy.row_counts() == before
    assert Client().get("/subtasks/", headers={"host": f"{new_slug}.localhost"}).status_code == 404
    call_command("importtenant", str(path), verbosity=0, stdout=io.StringIO())
    assert digest.of_tenant(strategy, strategy.get_tenant(new_slug)) == digest.of_data(data)
    assert big.slug == new_slug
