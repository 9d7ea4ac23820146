"""One tenant as a portable archive: the format `exporttenant` writes and `importtenant` reads.

A gzip'd tar with exactly five regular files:

- ``manifest.json``: the format version, where it came from (strategy, slug, name, the
  migrations its tables were at), and per table the columns, the row count and the content
  digest of ``shared.digest`` (so the archive proves what it holds, whatever the strategy).
- ``user.copy``, ``project.copy``, ``task.copy``, ``subtask.copy``: each table's rows in
  PostgreSQL's COPY text format, in the order they were created, without ids. A reference is
  the 0-based line number of the row it points at in its parent's file (``task.copy``'s first
  column is a line of ``project.copy``), so that ids never leave their database and any
  strategy can load the rows with its own.

Reading refuses, with one line (``ArchiveRefused``), anything it cannot load faithfully: a
truncated or corrupted file, an unknown format, members other than those five (absolute paths,
``..``, links, devices), and rows that do not match the manifest's digest. It never extracts to
disk: members are read into memory by name.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shared import digest
from shared.factories import ProjectRow, SubtaskRow, TaskRow, UserRow
from shared.testdata import TenantData

FORMAT = 1
MANIFEST = "manifest.json"
# What the archive may hold once uncompressed, all members together: read into memory, so a
# small file that inflates without end is refused before it is read. About 20 times the
# largest tenant the benchmarks make (101,104 rows: 13 MB).
MAX_BYTES = 256 * 2**20
# Each file's columns, in order; a reference column names the parent table.
COLUMNS: dict[str, tuple[str, ...]] = {
    "user": ("email", "first_name", "last_name", "password", "is_active", "date_joined"),
    "project": ("name", "details"),
    "task": ("project", "name", "is_complete", "details"),
    "subtask": ("task", "name", "is_complete", "details"),
}
TABLES = tuple(COLUMNS)
MEMBERS = (MANIFEST, *(f"{table}.copy" for table in TABLES))


class ArchiveRefused(Exception):
    """The archive cannot be imported faithfully; the message is one line for the operator."""


@dataclass
class Manifest:
    strategy: str
    slug: str
    name: str
    migrations: list[str]
    exported_at: str
    tables: dict[str, dict[str, Any]]  # table: {"columns", "rows", "sha256"}
    digest: str
    format: int = FORMAT

    def as_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2, ensure_ascii=False).encode() + b"\n"


def write(path: Path, manifest: Manifest, files: dict[str, Path]) -> None:
    """Write the archive to ``path`` through a new temporary file beside it (readable by its
    owner only: it holds password hashes), renamed when whole: an interrupted export never
    leaves a file that looks complete."""
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    partial = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add_bytes(tar, MANIFEST, manifest.as_json())
            for table in TABLES:
                info = tar.gettarinfo(files[table], arcname=f"{table}.copy")
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = 0o644
                with open(files[table], "rb") as member:
                    tar.addfile(info, member)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


class _Capped(io.RawIOBase):
    """The decompressed stream, refused once it passes the cap: tarfile reads a long name or a
    pax header into memory before the member it belongs to is seen, so sizes in the headers
    alone cannot bound what reading costs."""

    def __init__(self, raw: gzip.GzipFile) -> None:
        self.raw = raw
        self.seen = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.raw.readinto(buffer)
        self.seen += count
        if self.seen > MAX_BYTES + 2**20:  # the members, and room for their headers
            raise ArchiveRefused(
                f"refused: the archive holds more than {MAX_BYTES:,} bytes uncompressed"
            )
        return count


# What a damaged gzip or tar raises, depending on where the damage is.
DAMAGED = (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, OSError)


def read(path: Path) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest and each table's COPY text, after checking every member's name and kind."""
    members: dict[str, bytes] = {}
    if path.is_dir():
        raise ArchiveRefused(f"{str(path)!r} is a directory, not an archive")
    total = 0
    try:
        with (
            gzip.open(path, "rb") as raw,
            tarfile.open(fileobj=(capped := _Capped(raw)), mode="r|") as tar,
        ):
            for info in tar:
                if info.name not in MEMBERS:
                    raise ArchiveRefused(
                        f"refused: the archive holds {info.name[:100]!r}; an archive of a "
                        f"tenant holds only {', '.join(MEMBERS)}"
                    )
                if not info.isreg():
                    raise ArchiveRefused(f"refused: {info.name!r} is not a regular file")
                if info.name in members:
                    raise ArchiveRefused(f"refused: the archive holds {info.name!r} twice")
                total += info.size
                if total > MAX_BYTES or info.issparse():
                    raise ArchiveRefused(
                        f"refused: the archive holds more than {MAX_BYTES:,} bytes uncompressed"
                    )
                member = tar.extractfile(info)
                assert member is not None  # a regular file
                members[info.name] = member.read()
            # To the end of the gzip stream, which checks its CRC: tar stops at what looks
            # like its end, and damage can look like that.
            while capped.read(2**16):
                pass
    except FileNotFoundError:
        raise ArchiveRefused(f"there is no file {str(path)!r}") from None
    except ArchiveRefused:
        raise
    except DAMAGED as exc:
        raise ArchiveRefused(f"refused: the archive is truncated or corrupted ({exc})") from None
    missing = [name for name in MEMBERS if name not in members]
    if missing:
        raise ArchiveRefused(f"refused: the archive lacks {', '.join(missing)}")
    manifest = _manifest(members.pop(MANIFEST))
    return manifest, {table: members[f"{table}.copy"] for table in TABLES}


def _manifest(raw: bytes) -> Manifest:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise ArchiveRefused("refused: the manifest is not JSON") from None
    if not isinstance(document, dict):
        raise ArchiveRefused("refused: the manifest is not a JSON object")
    version = document.get("format")
    if version != FORMAT:
        raise ArchiveRefused(
            f"refused: archive format {version!r} is unknown here; this project reads format "
            f"{FORMAT}"
        )
    try:
        manifest = Manifest(**document)
    except TypeError as exc:
        raise ArchiveRefused(
            f"refused: the manifest is not one of format {FORMAT} ({exc})"
        ) from None
    texts = (manifest.strategy, manifest.slug, manifest.name, manifest.exported_at, manifest.digest)
    if not all(isinstance(text, str) for text in texts) or not (
        isinstance(manifest.migrations, list)
        and all(isinstance(m, str) for m in manifest.migrations)
    ):
        raise ArchiveRefused("refused: the manifest's fields are not of the types they must be")
    if (
        not isinstance(manifest.tables, dict)
        or set(manifest.tables) != set(TABLES)
        or not all(isinstance(t, dict) for t in manifest.tables.values())
    ):
        raise ArchiveRefused("refused: the manifest does not describe the tenant's tables")
    for table, columns in COLUMNS.items():
        if manifest.tables[table].get("columns") != list(columns):
            raise ArchiveRefused(
                f"refused: the archive's {table} rows have the columns "
                f"{manifest.tables[table].get('columns')}; this project's have {list(columns)}"
            )
    return manifest


# COPY's text format: tab between columns, a row per line, these backslash escapes (COPY TO
# writes no others), \N for NULL, which no exported column holds.
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_ESCAPE = re.compile(r"\\(.?)", re.S)


def _unescape(field: str, where: str) -> str:
    def one(match: re.Match[str]) -> str:
        replacement = _ESCAPES.get(match.group(1))
        if replacement is None:
            raise ArchiveRefused(f"refused: {where} holds an escape COPY does not write")
        return replacement

    return _ESCAPE.sub(one, field)


def _rows(table: str, text: bytes) -> Iterator[list[str]]:
    width = len(COLUMNS[table])
    try:
        decoded = text.decode()
    except UnicodeDecodeError:
        raise ArchiveRefused(f"refused: {table}.copy is not UTF-8") from None
    if decoded and not decoded.endswith("\n"):
        raise ArchiveRefused(f"refused: {table}.copy ends in the middle of a row")
    # Split on newlines only: str.splitlines() would also split on characters COPY leaves
    # as they are (U+2028, the file separator...).
    for number, line in enumerate(decoded.split("\n")[:-1], 1):
        fields = line.split("\t")
        if len(fields) != width:
            raise ArchiveRefused(
                f"refused: {table}.copy line {number} has {len(fields)} columns, not {width}"
            )
        yield [f if "\\" not in f else _unescape(f, f"{table}.copy line {number}") for f in fields]


def _bool(value: str, where: str) -> bool:
    if value not in ("t", "f"):
        raise ArchiveRefused(f"refused: {where} has {value!r} where t or f belongs")
    return value == "t"


def _reference(value: str, parents: int, where: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 18) or int(value) >= parents:
        raise ArchiveRefused(f"refused: {where} refers to row {value!r}, which is not there")
    return int(value)


def _time(value: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ArchiveRefused(f"refused: {where} has {value!r} where a time with a zone belongs")
    return moment


def tenant_data(manifest: Manifest, tables: dict[str, bytes], slug: str) -> TenantData:
    """The archive's rows as createtestdata's loaders take them, checked against the manifest:
    each table's count and digest, then the tenant's."""
    data = TenantData(slug=slug, name=manifest.name)
    for n, (email, first, last, password, active, joined) in enumerate(
        _rows("user", tables["user"]), 1
    ):
        where = f"user.copy line {n}"
        data.users.append(
            UserRow(email, first, last, password, _bool(active, where), _time(joined, where))
        )
    data.projects = [ProjectRow(*row) for row in _rows("project", tables["project"])]
    for n, (project, name, done, details) in enumerate(_rows("task", tables["task"]), 1):
        where = f"task.copy line {n}"
        ref = _reference(project, len(data.projects), where)
        data.tasks.append(TaskRow(ref, name, _bool(done, where), details))
    for n, (task, name, done, details) in enumerate(_rows("subtask", tables["subtask"]), 1):
        where = f"subtask.copy line {n}"
        ref = _reference(task, len(data.tasks), where)
        data.subtasks.append(SubtaskRow(ref, name, _bool(done, where), details))
    found = digest.of_data(data)
    for table in TABLES:
        expected = manifest.tables[table]
        if [expected.get("rows"), expected.get("sha256")] != list(found.tables[table]):
            raise ArchiveRefused(
                f"refused: the archive's {table} rows do not match its manifest's digest "
                f"({found.tables[table][0]} rows read, {expected.get('rows')} listed)"
            )
    if found.value != manifest.digest:
        raise ArchiveRefused(
            f"refused: the archive's rows have digest {found.value}, its manifest says "
            f"{manifest.digest}"
        )
    return data
