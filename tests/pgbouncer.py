"""PgBouncer in transaction mode, with a small server pool, in front of the test cluster."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from shared.cluster import ClusterError, as_service_user, free_port, service_user

# Two server connections per database and role: clients really take turns on them.
POOL_SIZE = 2


def find() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
    )


class PgBouncer:
    def __init__(
        self,
        base: Path,
        server_host: str,
        server_port: int,
        users: dict[str, str],
        auth_user: str | None = None,
        server_idle_timeout: int | None = None,
    ):
        """``users`` are known by their passwords; any other role (multidb's tenant roles, made
        while the tests run) is looked up in ``pg_shadow`` by ``auth_user``, a superuser here,
        which must be one of ``users``. In production that is a role of its own that may read
        only what PgBouncer's ``auth_query`` needs."""
        self.base, self.port = base, free_port()
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        quoted = "\n".join(f'"{name}" "{password}"' for name, password in users.items())
        (base / "userlist.txt").write_text(quoted + "\n")
        (base / "pgbouncer.ini").write_text(
            f"""[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {base / "userlist.txt"}
{f"auth_user = {auth_user}" if auth_user else ""}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 400
ignore_startup_parameters = extra_float_digits,options
; after a server restart, try again at once rather than in 15 s
server_login_retry = 1
{f"server_idle_timeout = {server_idle_timeout}" if server_idle_timeout else ""}
logfile = {base / "pgbouncer.log"}
"""
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = find()
        if binary is None:
            raise ClusterError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        user = service_user()  # pgbouncer, like postgres, refuses to run as root
        if user:
            for path in self.base.iterdir():
                shutil.chown(path, user.pw_uid, user.pw_gid)
            shutil.chown(self.base, user.pw_uid, user.pw_gid)
        # PgBouncer logs every line to stderr as well as to its logfile: a pipe that nobody
        # reads fills up (64 KiB) and then blocks its only thread, and every connection with it.
        stderr_path = self.base / "stderr.log"
        with stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [binary, str(self.base / "pgbouncer.ini")],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd="/",
                **as_service_user(),
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ClusterError(f"pgbouncer exited: {stderr_path.read_text(errors='replace')}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise ClusterError("pgbouncer did not start listening within 10 s")

    def version(self) -> str:
        out = subprocess.run([find(), "--version"], capture_output=True, text=True).stdout
        return out.split("\n", 1)[0].removeprefix("PgBouncer ").strip()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
