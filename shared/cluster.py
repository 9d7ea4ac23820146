"""PostgreSQL clusters this project starts itself: the developer's under ``.pgdata/``
(``shared.localdb``), and throwaway ones for the tests and the benchmarks.

One cluster is one ``Cluster``; ``temporary_cluster()`` gives one that is gone when the block
ends, and several can be open at once (one per ``with``). ``bootstrap()`` creates the two roles
every strategy uses, with ``Credentials``' passwords, on any server a superuser URL names.
"""

from __future__ import annotations

import glob
import os
import pwd
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

BOOTSTRAP_SQL = Path(__file__).resolve().parent / "db" / "bootstrap.sql"
OWNER_ROLE = "tenancy_owner"
RUNTIME_ROLE = "tenancy_app"
SUPERUSER = "postgres"

# A throwaway cluster's data may be lost in a crash; multidb's role rotation waits
# authentication_timeout (multidb.provisioning.set_role), so a short one keeps the tests quick.
THROWAWAY_SETTINGS = {"fsync": "off", "full_page_writes": "off", "authentication_timeout": "3s"}


class ClusterError(Exception):
    """A problem the user can fix; printed as one line."""


def find_bindir() -> Path:
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    # Debian and Ubuntu keep each major version apart, off the PATH.
    pattern = os.environ.get("LOCALDB_PG_GLOB", "/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(glob.glob(pattern), key=version, reverse=True)]
    for bindir in candidates:
        if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return bindir
    raise ClusterError(
        "no PostgreSQL server binaries found (looked at pg_config --bindir, PATH and "
        "/usr/lib/postgresql/*/bin): install PostgreSQL (Debian/Ubuntu: apt-get install "
        "postgresql; macOS: brew install postgresql) or Docker"
    )


def service_user() -> pwd.struct_passwd | None:
    """The OS account the server runs as: ourselves, unless we are root (PostgreSQL refuses)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ClusterError("running as root and no 'postgres' OS account exists to run the server as")


def as_service_user() -> dict[str, Any]:
    """subprocess arguments that run a server program as ``service_user()``."""
    user = service_user()
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port(count: int = 1) -> int:
    """The first of ``count`` consecutive ports on 127.0.0.1 that nothing uses now, chosen below
    the kernel's ephemeral range: a port the kernel handed out (as ``bind(0)`` does) can be taken
    by any outgoing connection before the server binds it, and the server then fails to start."""
    low = _ephemeral_low()
    for _ in range(100):
        first = random.randrange(10_000, low - count)
        if all(_bindable(first + n) for n in range(count)):
            return first
    raise ClusterError(f"found no {count} consecutive free ports on 127.0.0.1")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def url(user: str, password: str, host: str, port: int, dbname: str = "") -> str:
    return f"postgresql://{quote(user)}:{quote(password, safe='')}@{host}:{port}/{dbname}"


@dataclass(frozen=True)
class Credentials:
    """The passwords of the owner and runtime roles on one server (or several alike)."""

    owner: str
    runtime: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(secrets.token_urlsafe(12), secrets.token_urlsafe(12))

    def by_role(self) -> dict[str, str]:
        return {OWNER_ROLE: self.owner, RUNTIME_ROLE: self.runtime}

    def database_urls(self, host: str, port: int) -> dict[str, str]:
        """The two variables the settings read (see .env.example), for a server."""
        return {
            "OWNER_DATABASE_URL": url(OWNER_ROLE, self.owner, host, port),
            "RUNTIME_DATABASE_URL": url(RUNTIME_ROLE, self.runtime, host, port),
        }


@dataclass
class Cluster:
    """A PostgreSQL cluster whose files all live under ``base``.

    ``settings`` are written into its configuration when it is created, so that every start,
    by whichever process, runs with them.
    """

    base: Path
    port: int
    settings: Mapping[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    @property
    def password_file(self) -> Path:
        return self.base / "superuser.password"

    def _run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, cwd="/", **as_service_user()
        )
        if check and result.returncode != 0:
            raise ClusterError(
                f"{Path(str(args[0])).name} failed: {(result.stderr or result.stdout).strip()}"
            )
        return result

    def _chown(self, path: Path) -> None:
        if user := service_user():
            os.chown(path, user.pw_uid, user.pw_gid)

    @property
    def superuser_password(self) -> str:
        return self.password_file.read_text().strip()

    def admin_url(self, dbname: str = "postgres") -> str:
        return url(SUPERUSER, self.superuser_password, "127.0.0.1", self.port, dbname)

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialised():
            return False
        status = self._run(find_bindir() / "pg_ctl", "status", "-D", self.data, check=False)
        return status.returncode == 0

    def running_port(self) -> int | None:
        """The port the running server listens on, from its postmaster.pid."""
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
            return None

    def init(self, superuser_password: str | None = None) -> None:
        bindir = find_bindir()
        self.base.mkdir(parents=True, exist_ok=True)
        self._chown(self.base)
        if (user := service_user()) and self._run("test", "-w", self.base, check=False).returncode:
            raise ClusterError(
                f"the '{user.pw_name}' OS account that runs PostgreSQL cannot reach {self.base}: "
                "let it into the folders above (chmod o+x) or keep the project elsewhere"
            )
        # The nodes of one Citus cluster share theirs (shared.citus).
        self.password_file.write_text((superuser_password or secrets.token_urlsafe(18)) + "\n")
        self.password_file.chmod(0o600)
        self._chown(self.password_file)
        self._run(
            bindir / "initdb",
            "-D",
            self.data,
            "-U",
            SUPERUSER,
            "--pwfile",
            self.password_file,
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C",
        )
        if self.settings:
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write("\n# Set when this cluster was created (shared.cluster)\n")
                conf.writelines(f"{name} = '{value}'\n" for name, value in self.settings.items())

    def start(self) -> None:
        if port_in_use(self.port):
            raise ClusterError(
                f"port {self.port} on 127.0.0.1 is taken by another program: "
                "set PGPORT to a free port"
            )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c max_connections=300"  # multidb: processes x (pool + TENANCY_TENANT_CONNECTIONS)
        )
        self.log.touch()
        self._chown(self.log)
        try:
            self._run(
                find_bindir() / "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                self.data,
                "-l",
                self.log,
                "-o",
                options,
            )
        except ClusterError as exc:
            # pg_ctl only says to look at the log: say what it says.
            lines = [line for line in self.log.read_text().splitlines() if "FATAL" in line]
            raise ClusterError(
                f"{exc} ({lines[-1] if lines else 'see ' + str(self.log)})"
            ) from None

    def stop(self) -> None:
        if self.running():
            self._run(find_bindir() / "pg_ctl", "stop", "-w", "-m", "fast", "-D", self.data)


@contextmanager
def temporary_folder(prefix: str) -> Iterator[Path]:
    """A new folder the server's OS user can reach (service_user), removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    workdir.chmod(0o755)
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def temporary_cluster(
    prefix: str = "tenancy-", settings: Mapping[str, str] = THROWAWAY_SETTINGS
) -> Iterator[Cluster]:
    """A new cluster on a free port in a new temporary folder, started; stopped and removed
    when the block ends. Pass ``settings={}`` for PostgreSQL's durable defaults."""
    with temporary_folder(prefix) as workdir:
        cluster = Cluster(workdir / "pg", free_port(), settings)
        try:
            cluster.init()
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


def bootstrap(admin_url: str, credentials: Credentials) -> None:
    """Run the bootstrap SQL on a server through a superuser URL. Every password travels in
    the environment of psql, never on its command line, where `ps` would show it."""
    found = shutil.which("psql")
    psql = Path(found) if found else find_bindir() / "psql"
    server = urlsplit(admin_url)
    env = {
        **os.environ,
        "PGHOST": server.hostname or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
        "PGUSER": unquote(server.username or SUPERUSER),
        "PGPASSWORD": unquote(server.password or ""),
        "PGDATABASE": unquote(server.path.lstrip("/")) or "postgres",
        "OWNER_PASSWORD": credentials.owner,
        "RUNTIME_PASSWORD": credentials.runtime,
    }
    result = subprocess.run(
        [str(psql), "-X", "-q", "-f", str(BOOTSTRAP_SQL)], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"psql exited {result.returncode}"]
        first = next((line for line in lines if "ERROR:" in line or "FATAL:" in line), lines[0])
        raise ClusterError(f"bootstrap SQL failed: {first.split('ERROR:')[-1].strip()}")


def create_database(cluster: Cluster, name: str, template: str = "template1") -> None:
    """A database as the bootstrap makes them: the owner role's, the runtime role may connect,
    nobody else; an older one of the same name is dropped first."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(cluster.admin_url(), autocommit=True) as admin:
        name_, owner, runtime = map(sql.Identifier, (name, OWNER_ROLE, RUNTIME_ROLE))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name_))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                name_, sql.Identifier(template), owner
            )
        )
        admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name_))
        admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(name_, runtime))


def _has_c_utf8() -> bool:
    out = subprocess.run(["locale", "-a"], capture_output=True, text=True)
    return any(line.lower() in ("c.utf8", "c.utf-8") for line in out.stdout.splitlines())
