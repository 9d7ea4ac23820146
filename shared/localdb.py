"""A project-local PostgreSQL cluster for development and tests.

``python -m shared.localdb up`` starts (or reuses) a cluster under ``.pgdata/``, listening on
127.0.0.1 only, runs the bootstrap SQL and writes the connection settings into ``.env``.
``down`` stops it; ``status`` says whether it runs. The test runner uses ``Cluster`` directly
for a throwaway cluster in a temporary folder.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from shared.env import ROOT
from shared.env import read_env_file as read_env

BOOTSTRAP_SQL = Path(__file__).resolve().parent / "db" / "bootstrap.sql"
OWNER_ROLE = "tenancy_owner"
RUNTIME_ROLE = "tenancy_app"
SUPERUSER = "postgres"


class LocalDBError(Exception):
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
    raise LocalDBError(
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
    raise LocalDBError("running as root and no 'postgres' OS account exists to run the server as")


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def url(user: str, password: str, host: str, port: int, dbname: str = "") -> str:
    return f"postgresql://{quote(user)}:{quote(password, safe='')}@{host}:{port}/{dbname}"


@dataclass
class Cluster:
    """A PostgreSQL cluster whose files all live under ``base``."""

    base: Path
    port: int

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
        user = service_user()
        kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
        result = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, cwd="/", **kwargs
        )
        if check and result.returncode != 0:
            raise LocalDBError(
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
        return (
            self._run(find_bindir() / "pg_ctl", "status", "-D", self.data, check=False).returncode
            == 0
        )

    def running_port(self) -> int | None:
        """The port the running server listens on, from its postmaster.pid."""
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
            return None

    def init(self) -> None:
        bindir = find_bindir()
        self.base.mkdir(parents=True, exist_ok=True)
        self._chown(self.base)
        if (user := service_user()) and self._run("test", "-w", self.base, check=False).returncode:
            raise LocalDBError(
                f"the '{user.pw_name}' OS account that runs PostgreSQL cannot reach {self.base}: "
                "let it into the folders above (chmod o+x) or keep the project elsewhere"
            )
        self.password_file.write_text(secrets.token_urlsafe(18) + "\n")
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

    def start(self) -> None:
        bindir = find_bindir()
        if port_in_use(self.port):
            raise LocalDBError(
                f"port {self.port} on 127.0.0.1 is taken by another program: "
                "set PGPORT to a free port"
            )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c full_page_writes=off -c max_connections=200 "
            # multidb's role rotation waits this long (multidb.provisioning.set_role).
            "-c authentication_timeout=3s"
            if os.environ.get("LOCALDB_THROWAWAY")
            else f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c max_connections=200"
        )
        self.log.touch()
        self._chown(self.log)
        self._run(
            bindir / "pg_ctl",
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

    def stop(self) -> None:
        if self.running():
            self._run(find_bindir() / "pg_ctl", "stop", "-w", "-m", "fast", "-D", self.data)

    def bootstrap(self, owner_password: str, runtime_password: str) -> None:
        bootstrap(self.admin_url(), owner_password, runtime_password)


def bootstrap(admin_url: str, owner_password: str, runtime_password: str) -> None:
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
        "OWNER_PASSWORD": owner_password,
        "RUNTIME_PASSWORD": runtime_password,
    }
    result = subprocess.run(
        [str(psql), "-X", "-q", "-f", str(BOOTSTRAP_SQL)], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"psql exited {result.returncode}"]
        first = next((line for line in lines if "ERROR:" in line or "FATAL:" in line), lines[0])
        raise LocalDBError(f"bootstrap SQL failed: {first.split('ERROR:')[-1].strip()}")


def _has_c_utf8() -> bool:
    out = subprocess.run(["locale", "-a"], capture_output=True, text=True)
    return any(line.lower() in ("c.utf8", "c.utf-8") for line in out.stdout.splitlines())


def up(base: Path, port: int, env_file: Path) -> None:
    cluster = Cluster(base, port)
    bindir = find_bindir()
    version = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    if cluster.running():
        actual = cluster.running_port() or port
        note = "" if actual == port else f" (not {port}: run `make down` first to change the port)"
        print(f"PostgreSQL: reusing the local cluster in {base} on 127.0.0.1:{actual}{note}")
        cluster.port = port = actual
    else:
        fresh = not cluster.initialised()
        if fresh:
            cluster.init()
        cluster.start()
        state = "created and started" if fresh else "started"
        print(
            f"PostgreSQL: local cluster in {base} {state} on 127.0.0.1:{port} ({version}, {bindir})"
        )
    env = read_env(env_file)
    owner_password = env.get("OWNER_PASSWORD") or secrets.token_urlsafe(12)
    runtime_password = env.get("RUNTIME_PASSWORD") or secrets.token_urlsafe(12)
    secret_key = env.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(40)
    cluster.bootstrap(owner_password, runtime_password)
    write_env(env_file, port, owner_password, runtime_password, secret_key)


def write_env(
    env_file: Path, port: int, owner_password: str, runtime_password: str, secret_key: str
) -> None:
    text = (
        "# Written by `make up` for the project-local cluster; the settings read it.\n"
        "# It holds the owner role's password: readable by its owner only.\n"
        f"OWNER_PASSWORD={owner_password}\n"
        f"RUNTIME_PASSWORD={runtime_password}\n"
        f"OWNER_DATABASE_URL={url(OWNER_ROLE, owner_password, '127.0.0.1', port)}\n"
        f"RUNTIME_DATABASE_URL={url(RUNTIME_ROLE, runtime_password, '127.0.0.1', port)}\n"
        f"DJANGO_SECRET_KEY={secret_key}\n"
    )
    _write_private(env_file, text, append=False)


def secret_key(env_file: Path) -> str:
    """The DJANGO_SECRET_KEY kept in ``env_file``, made and added there the first time. It must
    outlive every start: multidb derives its tenant roles' passwords from it."""
    key = read_env(env_file).get("DJANGO_SECRET_KEY")
    if not key:
        key = secrets.token_urlsafe(40)
        _write_private(env_file, f"DJANGO_SECRET_KEY={key}\n", append=True)
    return key


def _write_private(path: Path, text: str, *, append: bool) -> None:
    """Write ``path`` readable by its owner only: created with mode 0600 (never readable by
    others, not even for a moment), and an existing file narrowed too."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "a" if append else "w") as out:
        out.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.localdb", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "find", "secret-key"])
    parser.add_argument("--dir", type=Path, default=ROOT / ".pgdata")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PGPORT") or 54320))
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env")
    args = parser.parse_args(argv)
    try:
        if args.command == "find":
            print(find_bindir())
        elif args.command == "secret-key":  # for docker compose (make up)
            print(secret_key(args.env_file))
        elif args.command == "up":
            up(args.dir, args.port, args.env_file)
        elif args.command == "down":
            cluster = Cluster(args.dir, args.port)
            if cluster.running():
                cluster.stop()
                print(f"PostgreSQL: local cluster in {args.dir} stopped (data kept)")
            else:
                print("PostgreSQL: no local cluster running")
        elif args.command == "status":
            cluster = Cluster(args.dir, args.port)
            print("running" if cluster.running() else "stopped")
            return 0 if cluster.running() else 3
    except LocalDBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
