"""A dependency that does not answer: 503 ``unavailable`` with Retry-After, in time, and quiet logs.

CONTRACT.md "Conventions". Each test runs a real ``hub api`` process and
takes one dependency away from it:

- PostgreSQL: the API reaches the database through a TCP relay the test
  closes (connections cut, new ones refused) and opens again.
- The broker: a dedicated Tansu broker the test stops under a running API;
  and an API started with nothing listening at its bootstrap address.

Each prints what a client saw (codes, slowest answer) and the log volume.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from support import HubProcess, make_settings, new_system_key

from hub_stream.local.embedded import free_port, start_tansu
from hub_stream.platform.topics import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.faults]

REQUEST_TIMEOUT_S = 3.0
MB_PER_MINUTE_LIMIT = 1.0


class Relay:
    """A TCP port that relays to PostgreSQL until closed: closing cuts every connection."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        socket_dir = parse_qs(parts.query).get("host", [None])[0]
        if socket_dir:
            sockets = [p for p in glob.glob(f"{socket_dir}/.s.PGSQL.*") if not p.endswith(".lock")]
            self._target: tuple[str, int] | str = sockets[0]
        else:
            self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.port = free_port()
        self.dsn = parts._replace(netloc=f"{parts.username or 'postgres'}:{parts.password or ''}@127.0.0.1:{self.port}", query="").geturl()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if isinstance(self._target, str):
                up_reader, up_writer = await asyncio.open_unix_connection(self._target)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        with contextlib.suppress(asyncio.CancelledError):  # the test's loop closing: nothing to relay
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def _wait_alive(url: str, proc: HubProcess, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proc.process.poll() is None, f"the API exited:\n{proc.log_tail()}"
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise AssertionError(f"the API did not start:\n{proc.log_tail()}")


class Client:
    """Calls the API and keeps what a client saw: (label, status, error code, seconds)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[tuple[str, int, str | None, float]] = []
        self._http = aiohttp.ClientSession()

    async def close(self) -> None:
        await self._http.close()

    async def call(self, label: str, method: str, path: str, auth: dict[str, str], **kw: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        started = time.monotonic()
        # Never a hang: the answer must come within the request timeout (slack for a loaded machine).
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S + 5)
        async with self._http.request(method, self.url + path, headers=auth, timeout=timeout, **kw) as r:
            body = await r.json(content_type=None) if r.status != 204 else {}
            seconds = time.monotonic() - started
            self.seen.append((label, r.status, body.get("error") if isinstance(body, dict) else None, seconds))
            return r.status, body, dict(r.headers)

    def summary(self) -> str:
        counts = Counter((label, status, code) for label, status, code, _ in self.seen)
        slowest: dict[str, float] = {}
        for label, _, _, seconds in self.seen:
            slowest[label] = max(slowest.get(label, 0.0), seconds)
        return "; ".join(f"{label}: {status} {code or ''} x{n} (slowest {slowest[label]:.2f} s)" for (label, status, code), n in sorted(counts.items()))


def _log_size(proc: HubProcess) -> int:
    return proc.log_path.stat().st_size


ACCESS_LOGGER = '"logger": "hub_stream.access"'


def _outage_log(proc: HubProcess, since: int) -> tuple[list[str], int, int]:
    """What the process logged after byte ``since``: (lines other than access lines, their bytes, access lines).

    Access lines are one per request by design (docs/operations.md): they
    grow with traffic, not with the outage, so the outage budget is held
    on everything else, and the access lines are counted apart.
    """
    lines = proc.log_path.read_bytes()[since:].decode(errors="replace").splitlines()
    other = [line for line in lines if ACCESS_LOGGER not in line]
    return other, sum(len(line.encode()) + 1 for line in other), len(lines) - len(other)


@pytest.fixture
async def relay(database_dsn: str) -> AsyncIterator[Relay]:
    r = Relay(database_dsn)
    await r.open()
    yield r
    with contextlib.suppress(Exception):
        await r.close()


async def test_postgresql_down_503_cached_keys_keep_working_quiet_logs_and_quick_recovery(
    kafka_bootstrap: str, database_dsn: str, relay: Relay, tmp_path: Path
) -> None:
    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path, request_timeout_s=REQUEST_TIMEOUT_S)
    await ensure_topics(settings)
    worker = HubProcess("worker", settings, tmp_path / "worker.log")
    port = free_port()
    api = HubProcess("api", settings, tmp_path / "api.log", HUB_API_PORT=str(port), HUB_DATABASE_URL=relay.dsn)
    client = Client(f"http://127.0.0.1:{port}")
    try:
        await _wait_alive(client.url, api)
        cached, uncached = await new_system_key(database_dsn), await new_system_key(database_dsn)
        tag = uuid.uuid4().hex[:6]
        sub, pub = f"SUB{tag}", f"PUB{tag}"
        for program in (sub, pub):
            status, body, _ = await client.call("setup", "PUT", f"/api/programs/{program}", cached, json={"Name": program})
            assert status == 201, body
        path = f"/api/programs/{sub}/eventSubs"
        for _ in range(60):  # the worker may still be joining its group
            status, body, _ = await client.call("setup", "POST", path, cached, json={"PublisherProgramId": pub})
            if status in (201, 409):  # 409: an earlier try that timed out was done after all
                break
            await asyncio.sleep(1)
        assert status in (201, 409), body

        await relay.close()
        log_before, outage_started = _log_size(api), time.monotonic()
        while time.monotonic() - outage_started < 10:
            # Needs nothing from PostgreSQL but the (cached) key: it keeps working.
            status, body, _ = await client.call("cached key, subscription (workers)", "GET", f"{path}/{pub}", cached)
            assert status == 200, body
            # Needs PostgreSQL: 503 unavailable with Retry-After.
            for label, auth in (("cached key, program list (database)", cached), ("uncached key (database)", uncached)):
                status, body, headers = await client.call(label, "GET", "/api/programs", auth)
                assert (status, body["error"]) == (503, "unavailable"), body
                assert int(headers["Retry-After"]) > 0
        outage_s = time.monotonic() - outage_started
        outage_lines, log_bytes, access_lines = _outage_log(api, log_before)

        await relay.open()
        back = time.monotonic()
        while True:
            status, body, _ = await client.call("after recovery (database)", "GET", "/api/programs", uncached)
            if status == 200:
                break
            assert time.monotonic() - back < 15, f"not recovered: {body}"
            await asyncio.sleep(0.05)
        recovered_s = time.monotonic() - back

        print(
            f"\nPostgreSQL down {outage_s:.1f} s: {len(client.seen)} calls; {client.summary()}."
            f"\nAPI log during the outage: {len(outage_lines)} lines, {log_bytes} bytes"
            f" (and {access_lines} access lines, one per request)"
            f" ({log_bytes * 60 / outage_s / 1e6:.4f} MB/min). Answers again {recovered_s:.2f} s after the database came back."
        )
        assert not any("Traceback" in line for line in outage_lines), outage_lines[:5]
        assert len(outage_lines) <= 20, outage_lines  # lines with counts, not a line per call
        assert log_bytes * 60 / outage_s < MB_PER_MINUTE_LIMIT * 1e6
    finally:
        await client.close()
        api.stop()
        worker.stop()


async def _broker_away(client: Client, api: HubProcess, auth: dict[str, str], program: str, seconds: float, what: str) -> None:
    """Calls for ``seconds`` while the broker is away; prints and checks what a client saw and the log volume."""
    log_before, started = _log_size(api), time.monotonic()
    await _calls_while_the_broker_is_away(client, auth, program, seconds)
    took = time.monotonic() - started
    _, log_bytes, access_lines = _outage_log(api, log_before)
    print(
        f"\n{what}, {took:.1f} s: {client.summary()}."
        f"\nAPI log: {log_bytes} bytes ({log_bytes * 60 / took / 1e6:.4f} MB/min), and {access_lines} access lines."
    )
    slowest = max(s for label, _, _, s in client.seen if label not in ("setup", "readyz"))
    assert slowest < REQUEST_TIMEOUT_S + 2, f"a call took {slowest:.1f} s; HUB_REQUEST_TIMEOUT_S is {REQUEST_TIMEOUT_S}"
    assert log_bytes * 60 / took < MB_PER_MINUTE_LIMIT * 1e6


async def _calls_while_the_broker_is_away(client: Client, auth: dict[str, str], program: str, seconds: float) -> None:
    started = time.monotonic()
    event = {
        "PublisherProgramId": program,
        "PublisherEventId": f"ev-{uuid.uuid4().hex[:8]}",
        "EventType": "T",
        "PublisherParticipantId": "p1",
        "PublisherEventData": {},
        "EventStartUtc": "2026-11-20T10:00:00Z",
    }
    while time.monotonic() - started < seconds:
        calls = [
            ("publish (broker)", "POST", "/api/events", {"json": event}),
            ("subscriptions (broker)", "GET", f"/api/programs/{program}/eventSubs/OTHER", {}),
            ("event list (broker)", "GET", f"/api/events/{program}", {}),
        ]
        for label, method, path, kw in calls:
            status, body, headers = await client.call(label, method, path, auth, **kw)
            assert (status, body["error"]) == (503, "unavailable"), (label, body)
            assert int(headers["Retry-After"]) > 0
            if method == "POST":  # a publish: the event may have been stored; sending it again is safe
                assert body["details"]["outcome"] == "unknown" and body["details"]["safeToRetry"], body
        # Needs only PostgreSQL: keeps working.
        status, body, _ = await client.call("program list (database)", "GET", "/api/programs", auth)
        assert status == 200, body


async def test_broker_stopped_under_a_running_api_503_within_the_timeout_and_quiet_logs(
    database_dsn: str, tmp_path: Path
) -> None:
    broker = start_tansu(log_path=tmp_path / "tansu.log")
    settings = make_settings(broker.bootstrap, database_dsn, tmp_path, request_timeout_s=REQUEST_TIMEOUT_S)
    port = free_port()
    api: HubProcess | None = None
    client = Client(f"http://127.0.0.1:{port}")
    try:
        await ensure_topics(settings)
        api = HubProcess("api", settings, tmp_path / "api.log", HUB_API_PORT=str(port))
        await _wait_alive(client.url, api)
        auth = await new_system_key(database_dsn)
        program = f"P{uuid.uuid4().hex[:6]}"
        status, body, _ = await client.call("setup", "PUT", f"/api/programs/{program}", auth, json={"Name": program})
        assert status == 201, body
        broker.stop()
        await _broker_away(client, api, auth, program, 20, "Broker stopped under the API")
    finally:
        await client.close()
        if api is not None:
            api.stop()
        broker.stop()


async def test_api_started_with_no_broker_answers_503_at_once_and_quiet_logs(
    database_dsn: str, tmp_path: Path
) -> None:
    settings = make_settings(f"127.0.0.1:{free_port()}", database_dsn, tmp_path, request_timeout_s=REQUEST_TIMEOUT_S)
    port = free_port()
    api = HubProcess("api", settings, tmp_path / "api.log", HUB_API_PORT=str(port))
    client = Client(f"http://127.0.0.1:{port}")
    try:
        await _wait_alive(client.url, api)
        auth = await new_system_key(database_dsn)
        program = f"P{uuid.uuid4().hex[:6]}"
        status, body, _ = await client.call("setup", "PUT", f"/api/programs/{program}", auth, json={"Name": program})
        assert status == 201, body
        status, body, _ = await client.call("readyz", "GET", "/readyz", {})
        assert status == 503 and not body["details"]["checks"]["broker"]["ok"], body
        await _broker_away(client, api, auth, program, 10, "No broker at start")
    finally:
        await client.close()
        api.stop()
