"""`hub dev`: broker, database, migrations, worker and API in one command.

With no HUB_KAFKA_BOOTSTRAP it starts Apache Kafka (hub_stream/local/kafka.py)
with its data in ``{HUB_DATA_DIR}/kafka`` (or Tansu, in memory, with
HUB_EMBEDDED_BROKER=tansu); with no HUB_DATABASE_URL it starts embedded
PostgreSQL with its data in ``{HUB_DATA_DIR}/postgres``. The worker and the API
run as child processes (the same `hub worker` and `hub api` as in production).
A child that exits (crashed, killed, or a worker that could not go on) is
started again with backoff (``Child``). SIGINT or SIGTERM stops everything it
started, children first, within 15 s.
One `hub dev` per data directory (hub_stream/local/dev_state.py).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from hub_stream.access import keys
from hub_stream.local import dev_state
from hub_stream.local.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    free_port,
    start_postgres,
    start_tansu,
    wait_for_port,
)
from hub_stream.local.kafka import KafkaError, KafkaNode, start_kafka
from hub_stream.platform import db
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

READY_TIMEOUT_S = 90.0
DEV_WORKER_METRICS_PORT = 9100
"""The worker's /metrics under `hub dev` unless HUB_WORKER_METRICS_PORT says otherwise (a free one if taken)."""
CHILD_STOP_S = 6.0
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0
RESTART_RESET_S = 60.0
"""A child that exits is started again after RESTART_FIRST_S, doubling up to RESTART_MAX_S while
it keeps exiting; a run of RESTART_RESET_S brings the delay back to RESTART_FIRST_S."""


def _die_with_parent() -> None:
    """Child-side: get SIGTERM if `hub dev` itself dies (Linux), so nothing is left behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _spawn_module(module: str, args: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    if log is None:
        return _popen(module, args, env, None)
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return _popen(module, args, env, out)


def _popen(module: str, args: list[str], env: dict[str, str], out: IO[bytes] | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        start_new_session=True,  # Ctrl-C reaches `hub dev` only; it stops children in order
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )


class Child:
    """One child process of `hub dev`, started again with backoff whenever it exits.

    A worker that cannot go on exits (docs/operations.md, "Supervision"); here,
    as under a production supervisor, it is simply started again: after 1 s,
    then 2, 4, ... up to ``RESTART_MAX_S`` while it keeps dying early; the
    delay is back to 1 s once a run lasted ``RESTART_RESET_S``.
    """

    def __init__(self, name: str, module: str, args: list[str], env: dict[str, str], *, log: Path | None = None) -> None:
        """``log``: a file its output is appended to (default: `hub dev`'s own stdout and stderr)."""
        self.name, self._module, self._args, self._env, self.log = name, module, args, env, log
        self.restarts = 0
        self._delay = RESTART_FIRST_S
        self._due: float | None = None
        self.process = _spawn_module(module, args, env, log)
        self._started = time.monotonic()

    def supervise(self) -> None:
        """Notice an exit and schedule the restart; start it again when due."""
        now = time.monotonic()
        if self._due is None:
            code = self.process.poll()
            if code is None:
                return
            ran = now - self._started
            if ran >= RESTART_RESET_S:
                self._delay = RESTART_FIRST_S
            self._due = now + self._delay
            print(
                f"hub dev: the {self.name} exited ({_exit_text(code)}, pid {self.process.pid}) after {ran:.1f} s;"
                f" starting it again in {self._delay:g} s",
                file=sys.stderr,
                flush=True,
            )
            self._delay = min(self._delay * 2, RESTART_MAX_S)
        if now >= self._due:
            self._due = None
            self.restarts += 1
            self.process = _spawn_module(self._module, self._args, self._env, self.log)
            self._started = now
            print(f"hub dev: the {self.name} started again (pid {self.process.pid}, restart {self.restarts})",
                  file=sys.stderr, flush=True)


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _wait_ready(url: str, children: list[subprocess.Popen[bytes]], stop: StopFlag) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not stop.is_set():
        if any(c.poll() is not None for c in children):
            return False
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        stop.wait(0.25)
    return False


async def _prepare_database(dsn: str) -> str | None:
    """Migrate; on a database with no key at all, create and return a system key."""
    import asyncpg

    await db.migrate(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        if await keys.count_active_keys(conn) == 0:
            new = await keys.create_key(conn, system=True)
            return f"{new.user_id}:{new.api_key}"
        return None
    finally:
        await conn.close()


class StopFlag:
    """Set by the signal handler; waited on by the main loop.

    Not a ``threading.Event``: its ``set()`` takes the lock that its own
    ``wait()`` holds, so a signal landing inside ``wait()`` deadlocked
    `hub dev` for good (seen: Ctrl-C during start-up, the handler stuck in
    ``Event.set``). A plain attribute and short sleeps need no lock.
    """

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self._set:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, 0.05))
        return self._set


def run_dev(settings: HubSettings, *, fake_lb: bool = False) -> int:
    started = time.monotonic()
    stop = StopFlag()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    data_dir = settings.data_dir.expanduser().resolve()
    try:
        claim = dev_state.claim(data_dir)
    except dev_state.DataDirInUse as e:
        print(f"hub dev: {e}", file=sys.stderr)
        return 1
    broker: EmbeddedBroker | KafkaNode | None = None
    postgres: EmbeddedPostgres | None = None
    children: list[Child] = []
    env = {k: v for k, v in os.environ.items()}
    env["HUB_DATA_DIR"] = str(data_dir)
    try:
        if settings.kafka_bootstrap:
            bootstrap = settings.kafka_bootstrap
        elif settings.embedded_broker == "tansu":
            broker = start_tansu(log_path=data_dir / "tansu.log")
            bootstrap = broker.bootstrap
        else:
            broker = _start_kafka(data_dir, stop)  # launched; PostgreSQL starts while it boots
            bootstrap = broker.bootstrap
        if settings.database_url is not None:
            dsn = settings.database_url.get_secret_value()
        else:
            postgres = start_postgres(data_dir / "postgres")
            dsn = postgres.dsn
        env["HUB_KAFKA_BOOTSTRAP"] = bootstrap
        env["HUB_DATABASE_URL"] = dsn
        effective = settings.model_copy(update={"kafka_bootstrap": bootstrap})
        bootstrap_key = asyncio.run(_prepare_database(dsn))
        if isinstance(broker, KafkaNode):
            broker.wait_ready(lambda line: print(line, flush=True))
        asyncio.run(ensure_topics(effective))
        if stop.is_set():
            return 130
        if fake_lb:
            lb_port = free_port()
            lb_key = secrets.token_urlsafe(16)
            children.append(
                Child("fake LB", "hub_stream.local.lb_standin", ["--port", str(lb_port), "--api-key", lb_key], env)
            )
            env["HUB_DEV_LB_BASE_URL"] = f"http://127.0.0.1:{lb_port}"
            env["HUB_DEV_LB_API_KEY"] = lb_key
            wait_for_port("127.0.0.1", lb_port, 10.0)
        env.setdefault("HUB_WORKER_METRICS_PORT", str(_metrics_port(settings.api_host)))
        children.append(Child("worker", "hub_stream.cli", ["worker"], env))
        children.append(Child("api", "hub_stream.cli", ["api"], env))
        url = f"http://{_display_host(settings.api_host)}:{settings.api_port}"
        if not _wait_ready(url, [c.process for c in children], stop):
            if stop.is_set():
                return 130
            print(f"hub dev: the hub did not become ready; see the logs above ({url}/readyz)", file=sys.stderr)
            return 1
        env_file = dev_state.write_env(data_dir, {"HUB_KAFKA_BOOTSTRAP": bootstrap, "HUB_DATABASE_URL": dsn})
        print(f"hub dev: ready in {time.monotonic() - started:.1f} s", flush=True)
        print(f"  API:     {url}", flush=True)
        print(f"  Kafka:   {bootstrap}{_broker_note(broker)}", flush=True)
        print(f"  Data:    {data_dir}", flush=True)
        if env["HUB_WORKER_METRICS_PORT"] != "0":
            print(f"  Metrics: {url}/metrics (API), http://{_display_host(settings.api_host)}:{env['HUB_WORKER_METRICS_PORT']}/metrics (worker)", flush=True)
        print(f"  Env:     {env_file} (the hub command finds it in this directory; `. {env_file}` for others)",
              flush=True)
        if fake_lb:
            print(f"  Fake LB: {env['HUB_DEV_LB_BASE_URL']} (programs registered through the API without LbBaseUrl use it;"
                  f" GET {env['HUB_DEV_LB_BASE_URL']}/_fake/batches shows what it received)", flush=True)
        if bootstrap_key:
            print("  A system key was created for this fresh install (shown only now):", flush=True)
            print(f"    {bootstrap_key}", flush=True)
            print(f"    e.g. curl -u '{bootstrap_key}' {url}/api/programs", flush=True)
        print("  Ctrl-C stops everything.", flush=True)
        while not stop.is_set():
            for child in children:
                child.supervise()
            stop.wait(0.25)
        return 0
    except KafkaError as e:
        print(f"hub dev: {e}", file=sys.stderr)
        return 1
    finally:
        dev_state.remove_env(data_dir)
        _stop_all([c.process for c in children], postgres, broker)
        claim.close()


def _start_kafka(data_dir: Path, stop: StopFlag) -> KafkaNode:
    def progress(line: str) -> None:
        if stop.is_set():  # Ctrl-C during the first run's download
            raise KafkaError("stopped before Kafka started")
        print(line, flush=True)

    # lock_wait_s: a Kafka orphaned by a killed `hub dev` may still be shutting down.
    return start_kafka(
        data_dir / "kafka", progress=progress, preexec_fn=_die_with_parent, lock_wait_s=15.0, wait=False
    )


def _broker_note(broker: EmbeddedBroker | KafkaNode | None) -> str:
    if isinstance(broker, KafkaNode):
        return f" (embedded Apache Kafka, data in {broker.workdir})"
    return " (embedded Tansu, in memory)" if broker else ""


def _metrics_port(host: str) -> int:
    """DEV_WORKER_METRICS_PORT, or a free port when something else holds it."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, DEV_WORKER_METRICS_PORT))
        except OSError:
            return free_port()
    return DEV_WORKER_METRICS_PORT


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def _stop_all(
    children: list[subprocess.Popen[bytes]],
    postgres: EmbeddedPostgres | None,
    broker: EmbeddedBroker | KafkaNode | None,
) -> None:
    """Children first (they need the broker to leave the group), then PostgreSQL, then the broker."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + CHILD_STOP_S
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(2)
    if postgres is not None:
        postgres.stop()
    if broker is not None:
        broker.stop(timeout_s=5.0)

