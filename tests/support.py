"""Helpers the tests share: isolated settings, hub processes, HTTP waits.

Each test gets its own topic prefix and Faust app id, so tests share one
broker without seeing each other's records or consumer groups.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from hub_stream.local.embedded import free_port
from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.settings import HubSettings


def make_settings(bootstrap: str, dsn: str, tmp: Path, **overrides: Any) -> HubSettings:
    """Settings isolated to one test: own topics, own consumer group, own data dir."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "database_url": SecretStr(dsn),
        "topic_prefix": f"t{tag}",
        "app_id": f"hub-test-{tag}",
        "events_partitions": 4,
        "subscriber_partitions": 4,
        "data_dir": tmp,
        "log_level": "INFO",
        "request_timeout_s": 15.0,
    }
    values.update(overrides)
    return HubSettings(**values)


def event_doc(pub: str, n: int, **overrides: Any) -> dict[str, Any]:
    """An event as a publisher sends it (JSON body or stream record), the n-th of ``pub``."""
    body: dict[str, Any] = {
        "PublisherProgramId": pub,
        "PublisherEventId": f"ev-{n}",
        "EventType": "COURSE_DONE",
        "PublisherParticipantId": f"p{n}@example.org",
        "PublisherEventData": {"n": n},
        "EventStartUtc": "2026-11-20T10:00:00Z",
    }
    body.update(overrides)
    return body


def basic(user_id: str, secret: str) -> dict[str, str]:
    """The Authorization header of a key."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user_id}:{secret}".encode()).decode()}


async def new_system_key(dsn: str) -> dict[str, str]:
    """The Authorization header of a new system key, made straight in the database."""
    import asyncpg

    from hub_stream.access.keys import create_key

    conn = await asyncpg.connect(dsn)
    try:
        new = await create_key(conn, system=True)
    finally:
        await conn.close()
    return basic(new.user_id, new.api_key)


def settings_env(settings: HubSettings) -> dict[str, str]:
    """The environment that makes a child `hub` process see ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    for name, value in settings.masked().items():
        raw = getattr(settings, name)
        if isinstance(raw, SecretStr):
            value = raw.get_secret_value()
        if value is None:
            continue
        env[f"HUB_{name.upper()}"] = str(value)
    return env


class HubProcess:
    """A `hub worker` or `hub api` child process with its log in a file.

    ``argv``: another command line for it (a benchmark's variant of a worker); default `hub <command>`.
    """

    def __init__(
        self, command: str, settings: HubSettings, log_path: Path, *, argv: list[str] | None = None, **env: str
    ) -> None:
        self.command = command
        self.log_path = log_path
        full_env = settings_env(settings)
        full_env.update(env)
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            argv or [sys.executable, "-m", "hub_stream.cli", command],
            env=full_env,
            stdout=self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return int(self.process.returncode)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@contextmanager
def hub_processes(
    settings: HubSettings, tmp: Path, *, workers: int = 1, apis: int = 1
) -> Iterator[tuple[list[HubProcess], list[str]]]:
    """Start workers and API processes; yields (processes, API base URLs); stops them all."""
    procs: list[HubProcess] = []
    urls: list[str] = []
    try:
        for i in range(workers):
            procs.append(HubProcess("worker", settings, tmp / f"worker{i}.log"))
        for i in range(apis):
            port = free_port()
            procs.append(HubProcess("api", settings, tmp / f"api{i}.log", HUB_API_PORT=str(port)))
            urls.append(f"http://127.0.0.1:{port}")
        yield procs, urls
    finally:
        for proc in procs:
            proc.stop()


async def wait_ready(url: str, procs: list[HubProcess] | None = None, timeout_s: float = 90.0) -> None:
    """Wait until GET {url}/readyz answers 200; fail with the process logs otherwise."""
    deadline = time.monotonic() + timeout_s
    last = ""
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            for proc in procs or []:
                if proc.process.poll() is not None:
                    raise AssertionError(f"{proc.command} exited early:\n{proc.log_tail()}")
            try:
                async with http.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=6)) as r:
                    last = await r.text()
                    if r.status == 200:
                        return
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = repr(exc)
            await asyncio.sleep(0.25)
    logs = "\n".join(f"--- {p.command} {p.log_path.name}\n{p.log_tail()}" for p in procs or [])
    raise AssertionError(f"{url} not ready after {timeout_s} s: {last}\n{logs}")


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nearest rank: what the benchmarks print as p50/p99."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Stack:
    """Where a benchmark's broker and database are; ``broker_pid`` when this process started the broker."""

    bootstrap: str
    dsn: str
    tmp: Path
    broker_pid: int | None


def add_stack_args(parser: argparse.ArgumentParser, *, database: bool = True) -> None:
    """--bootstrap, --broker and (with ``database``) --database, as every benchmark takes them."""
    parser.add_argument("--bootstrap", help="a running broker; default: start the embedded one (--broker)")
    parser.add_argument(
        "--broker",
        choices=("kafka", "tansu"),
        default=os.environ.get("HUB_EMBEDDED_BROKER") or "kafka",
        help="the embedded broker to start without --bootstrap: Apache Kafka (the default stack, data in a"
        " temporary directory) or Tansu (memory only); default: $HUB_EMBEDDED_BROKER, else kafka",
    )
    if database:
        parser.add_argument("--database", help="a PostgreSQL DSN; default: embedded PostgreSQL")


@contextmanager
def embedded_stack(args: argparse.Namespace, *, database: bool = True) -> Iterator[Stack]:
    """The broker and database of ``args`` (``add_stack_args``), starting what is not given.

    Without --bootstrap: Apache Kafka through hub_stream/local/kafka.py, as
    `hub dev` and the tests run it (or Tansu with ``--broker tansu``); without
    --database: embedded PostgreSQL. Everything started here stops on exit.
    """
    from hub_stream.local.embedded import start_postgres, start_tansu
    from hub_stream.local.kafka import start_kafka

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        bootstrap: str | None = args.bootstrap
        broker: Any = None
        pid: int | None = getattr(args, "broker_pid", None)
        if not bootstrap:
            if args.broker == "tansu":
                broker = start_tansu()
                pid = broker.process.pid
            else:
                broker = start_kafka(tmp / "kafka", wait=False, progress=_say)  # PostgreSQL starts while it boots
                pid = broker.pid
        postgres = None
        try:
            dsn = getattr(args, "database", None) or ""
            if database and not dsn:
                postgres = start_postgres(tmp / "pg")
                dsn = postgres.dsn
            if broker is not None and hasattr(broker, "wait_ready"):
                broker.wait_ready(_say)
            yield Stack(bootstrap or broker.bootstrap, dsn, tmp, pid)
        finally:
            if postgres:
                postgres.stop()
            if broker is not None:
                broker.stop()


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def on_stack(args: argparse.Namespace, work: Callable[[str, str, Path], Awaitable[None]]) -> None:
    """Run ``work(bootstrap, dsn, tmp)`` on ``embedded_stack(args)``."""
    with embedded_stack(args) as stack:
        asyncio.run(work(stack.bootstrap, stack.dsn, stack.tmp))


async def wait_for_intake(settings: HubSettings, worker: HubProcess | subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    """Until the intake agent answers on every partition of the incoming topic."""
    process = worker.process if isinstance(worker, HubProcess) else worker
    client = RpcClient(settings)
    await client.start()
    try:
        deadline = time.monotonic() + timeout_s
        for partition in range(settings.events_partitions):
            while True:
                assert process.poll() is None, "worker exited before it answered"
                try:
                    await client.request(settings.topic("events.incoming"), "warmup", "ping", timeout=3, partition=partition)
                    break
                except RpcTimeout:
                    assert time.monotonic() < deadline, "intake never answered"
    finally:
        await client.stop()


CRASH_WORKER = Path(__file__).parent / "integration" / "intake_crash_worker.py"


def start_crash_worker(settings: HubSettings, log_path: Path, crash_at: str, *, after_appends: int = 0) -> subprocess.Popen[bytes]:
    """A `hub worker` whose intake fails on purpose (tests/integration/intake_crash_worker.py names how)."""
    env = settings_env(settings)
    env.update(INTAKE_CRASH_AT=crash_at, INTAKE_CRASH_AFTER_APPENDS=str(after_appends), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, str(CRASH_WORKER)], env=env, stdout=log, stderr=log, start_new_session=True)
