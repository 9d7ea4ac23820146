"""gunicorn serving one strategy on loopback, started and always stopped by a context manager."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.cluster import free_port
from shared.env import ROOT


class ServerError(RuntimeError):
    pass


def get(port: int, host: str, path: str, timeout: float = 30) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def settings_for(app: str) -> dict[str, str]:
    module = app.partition(":")[0]
    if module.endswith(".wsgi"):  # a strategy's Django project, or the baseline
        return {"DJANGO_SETTINGS_MODULE": module.removesuffix(".wsgi") + ".settings"}
    return {}


@contextmanager
def gunicorn(
    app: str,
    env: dict[str, str],
    *,
    workers: int = 2,
    port: int | None = None,
    log: Path | None = None,
) -> Iterator[tuple[int, subprocess.Popen]]:
    """Serves ``app`` ("rls.wsgi", or "module:callable"); yields (port, process) once /healthz
    answers, and stops the server however the block ends.

    The server's own log goes to ``log`` (a file: a pipe nobody reads would fill up and stall
    the server), or is discarded."""
    port = port or free_port()
    log_file = open(log, "ab") if log else None  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--graceful-timeout",
            "5",
        ],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), **settings_for(app)},
        stdout=subprocess.DEVNULL,
        stderr=log_file or subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log else "(no log kept)"
                raise ServerError(f"gunicorn exited with {process.returncode}: {tail}")
            try:
                if get(port, "localhost", "/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError("gunicorn did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield port, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if log_file:
            log_file.close()
