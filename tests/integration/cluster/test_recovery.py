"""The hub recovers by itself from broker outages on three brokers (issue 22).

Two workers and one API run under the supervisor of `hub dev`
(``hub_stream.local.dev.Child``: a process that exits is started again with
backoff; nobody restarts anything by hand). A client sends light traffic
(a publish, an event listing and a subscription read, every 0.5 s) and
keeps what it saw. Each scenario prints, and checks: the codes clients saw
(never a 500, never a call without an answer), the longest call (within
HUB_REQUEST_TIMEOUT_S), the time until the hub serves normally again after
the brokers' return, and each process's log volume (under 1 MB a minute,
access lines aside).

- Two brokers down 30 s (SIGKILL, together: the metadata quorum is lost),
  then back.
- One surviving broker: a broker killed, a second stopped (both fenced:
  every client's metadata then names only the third), both back, then the
  third killed alone. aiokafka 0.14.0 never went back to its bootstrap list:
  clients stayed stuck on the dead broker (hub_stream/platform/kafka_metadata.py).
  The brokers' "return" is then the moment every partition has a new leader:
  the controller notices a killed broker only after its session timeout (9 s).

``HUB_TEST_RECOVERY_LIMIT_S`` raises the 10 s limit on a slow machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiohttp
import pytest
from aiokafka.client import AIOKafkaClient
from support import new_system_key, settings_env, wait_ready

from hub_stream.local.dev import Child
from hub_stream.local.embedded import free_port
from hub_stream.local.kafka_cluster import KafkaCluster
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import all_topics, ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.faults]

REQUEST_TIMEOUT_S = 5.0
RECOVERY_LIMIT_S = float(os.environ.get("HUB_TEST_RECOVERY_LIMIT_S", "10"))
"""The issue's limit; a slower machine may set more (the figures are printed either way)."""
RESTART_LIMIT_S = 300.0
MB_PER_MINUTE_LIMIT = 1.0
WATCH_AFTER_RETURN_S = 30.0
ACCESS_LOGGER = '"logger": "hub_stream.access"'
ANSWERS = {200, 201, 503, 504}
"""What a call may get during and after an outage: its answer, or 503/504 with Retry-After."""


@dataclass
class Call:
    label: str
    started: float
    seconds: float
    status: int  # 0: no HTTP answer at all
    code: str | None


class Traffic:
    """Light traffic against the API; every call kept."""

    def __init__(self, url: str, auth: dict[str, str], publisher: str, subscriber: str) -> None:
        self.url, self.auth, self.publisher, self.subscriber = url, auth, publisher, subscriber
        self.calls: list[Call] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                event = {
                    "PublisherProgramId": self.publisher,
                    "PublisherEventId": f"ev-{uuid.uuid4().hex[:12]}",
                    "EventType": "T",
                    "PublisherParticipantId": "p1",
                    "PublisherEventData": {},
                    "EventStartUtc": "2026-11-20T10:00:00Z",
                }
                await self._call(http, "publish", "POST", "/api/events", json=event)
                await self._call(http, "event list", "GET", f"/api/events/{self.publisher}?limit=5")
                await self._call(http, "subscription", "GET", f"/api/programs/{self.subscriber}/eventSubs/{self.publisher}")
                await asyncio.sleep(0.5)

    async def _call(self, http: aiohttp.ClientSession, label: str, method: str, path: str, **kw: Any) -> None:
        started = time.monotonic()
        try:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S + 10)
            async with http.request(method, self.url + path, headers=self.auth, timeout=timeout, **kw) as r:
                body = await r.json(content_type=None)
                status, code = r.status, body.get("error") if isinstance(body, dict) else None
                if status in (503, 504):
                    assert int(r.headers["Retry-After"]) > 0
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, code = 0, type(exc).__name__
        self.calls.append(Call(label, started, time.monotonic() - started, status, code))

    def since(self, t: float) -> list[Call]:
        return [c for c in self.calls if c.started >= t]

    def recovered_at(self, back: float) -> float:
        """When the last failed call after ``back`` ended (``back`` if none failed)."""
        failed = [c.started + c.seconds for c in self.since(back) if c.status not in (200, 201)]
        return max(failed, default=back)


def _summary(calls: list[Call]) -> str:
    counts = Counter((c.label, c.status, c.code) for c in calls)
    return "; ".join(f"{label} {status} {code or ''}x{n}".replace(" x", " x") for (label, status, code), n in sorted(counts.items()))


class Hub:
    """Two workers and one API, each a supervised child process with its log in a file."""

    def __init__(self, settings: HubSettings, tmp: Path) -> None:
        self.topics = [spec.name for spec in all_topics(settings)]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**settings_env(settings), "HUB_API_PORT": str(self.port)}
        self.children = [
            Child("worker 1", "hub_stream.cli", ["worker"], env, log=tmp / "worker-1.log"),
            Child("worker 2", "hub_stream.cli", ["worker"], env, log=tmp / "worker-2.log"),
            Child("api", "hub_stream.cli", ["api"], env, log=tmp / "api.log"),
        ]
        self._supervisor = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        while True:
            for child in self.children:
                child.supervise()
            await asyncio.sleep(0.25)

    def log_sizes(self) -> dict[str, int]:
        return {c.name: c.log.stat().st_size for c in self.children if c.log is not None}

    def log_volume(self, since: dict[str, int]) -> dict[str, int]:
        """Bytes of non-access lines each process logged after ``since``."""
        out = {}
        for child in self.children:
            assert child.log is not None
            text = child.log.read_bytes()[since[child.name]:].decode(errors="replace")
            out[child.name] = sum(len(line) + 1 for line in text.splitlines() if ACCESS_LOGGER not in line)
        return out

    async def stop(self) -> None:
        self._supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._supervisor
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
        for child in self.children:
            try:
                await asyncio.to_thread(child.process.wait, 15)
            except Exception:  # noqa: BLE001 - a stop that hangs: killed
                child.process.kill()


@pytest.fixture
async def hub(cluster: KafkaCluster, cluster_settings: HubSettings, database_dsn: str, tmp_path: Path) -> AsyncIterator[tuple[Hub, Traffic]]:
    settings = cluster_settings.model_copy(update={"request_timeout_s": REQUEST_TIMEOUT_S, "worker_metrics_port": 0})
    await ensure_topics(settings)
    await cluster.wait_in_sync([spec.name for spec in all_topics(settings)])
    running = Hub(settings, tmp_path)
    try:
        await wait_ready(running.url, timeout_s=180)
        auth = await new_system_key(database_dsn)
        tag = uuid.uuid4().hex[:6]
        publisher, subscriber = f"PUB{tag}", f"SUB{tag}"
        async with aiohttp.ClientSession() as http:
            for program in (publisher, subscriber):
                async with http.put(f"{running.url}/api/programs/{program}", headers=auth, json={"Name": program}) as r:
                    assert r.status == 201, await r.text()
            body = {"PublisherProgramId": publisher}
            async with http.post(f"{running.url}/api/programs/{subscriber}/eventSubs", headers=auth, json=body) as r:
                assert r.status == 201, await r.text()
        yield running, Traffic(running.url, auth, publisher, subscriber)
    finally:
        await running.stop()


async def _known_brokers(bootstrap: str) -> list[int]:
    """The broker ids a fresh client learns from ``bootstrap`` (the brokers not fenced)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(client.bootstrap(), 10)
        return sorted(b.nodeId for b in client.cluster.brokers())
    except Exception:  # noqa: BLE001 - a broker that does not answer names none
        return []
    finally:
        await client.close()


async def _wait_for(what: str, check: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}"
        await asyncio.sleep(0.5)


async def _restart(cluster: KafkaCluster, *node_ids: int) -> None:
    """Start killed nodes again; return once each answers clients itself, listing every node
    (the brokers' return). A survivor's own metadata is no sign: without a quorum it kept
    listing the dead nodes.

    Not ``cluster.restart``: its 90 s start-up limit was not enough on a machine shared with other runs.
    """
    for node_id in node_ids:
        await asyncio.to_thread(cluster.launch, node_id)
    for node_id in node_ids:
        await _wait_for(f"broker {node_id} back", _only(cluster.nodes[node_id].bootstrap, *cluster.nodes), RESTART_LIMIT_S)


def _report(scenario: str, hub: Hub, traffic: Traffic, outage_start: float, back: float, logs_before: dict[str, int]) -> None:
    """Print what clients saw and the log volume; check the issue's criteria.

    ``back``: when the cluster serves again (the brokers restarted and answering; new leaders elected).
    """
    await_end = back + WATCH_AFTER_RETURN_S
    calls = [c for c in traffic.since(outage_start) if c.started < await_end]
    recovered_s = traffic.recovered_at(back) - back
    longest = max(calls, key=lambda c: c.seconds)
    minutes = (time.monotonic() - outage_start) / 60
    volume = hub.log_volume(logs_before)
    restarts = {c.name: c.restarts for c in hub.children if c.restarts}
    print(
        f"\n{scenario}: {len(calls)} calls from the outage on: {_summary(calls)}."
        f"\n  longest call: {longest.label} {longest.status} {longest.seconds:.2f} s;"
        f" brokers back {back - outage_start:.1f} s after the kill; last failed call ended"
        f" {traffic.recovered_at(outage_start) - outage_start:.1f} s after the kill;"
        f" serving normally {recovered_s:.1f} s after the brokers' return; restarts by the supervisor: {restarts or 'none'}."
        f"\n  log volume (access lines aside): "
        + ", ".join(f"{name} {b} bytes ({b / 1e6 / minutes:.3f} MB/min)" for name, b in volume.items())
    )
    assert not [c for c in calls if c.status not in ANSWERS], _summary([c for c in calls if c.status not in ANSWERS])
    assert longest.seconds < REQUEST_TIMEOUT_S + 1.5, f"{longest} (HUB_REQUEST_TIMEOUT_S {REQUEST_TIMEOUT_S})"
    assert recovered_s <= RECOVERY_LIMIT_S, f"serving normally only {recovered_s:.1f} s after the brokers' return"
    assert all(c.status in (200, 201) for c in traffic.since(traffic.recovered_at(back))), "failures after recovery"
    for name, b in volume.items():
        assert b / 1e6 / minutes < MB_PER_MINUTE_LIMIT, f"{name} logged {b} bytes in {minutes:.1f} min"


async def test_two_brokers_down_30_s_then_back(cluster: KafkaCluster, hub: tuple[Hub, Traffic]) -> None:
    running, traffic = hub
    async with traffic:
        await asyncio.sleep(5)
        assert all(c.status in (200, 201) for c in traffic.calls), _summary(traffic.calls)
        logs_before = running.log_sizes()
        down = [1, 2]
        outage_start = time.monotonic()
        for node_id in down:
            cluster.kill(node_id)
        await asyncio.sleep(30)
        await _restart(cluster, *down)
        back = time.monotonic()
        await asyncio.sleep(WATCH_AFTER_RETURN_S)
    _report("Two brokers down 30 s", running, traffic, outage_start, back, logs_before)


async def test_one_surviving_broker_then_it_dies_alone(cluster: KafkaCluster, hub: tuple[Hub, Traffic]) -> None:
    running, traffic = hub
    survivor, killed, stopped = 3, 1, 2
    survivor_address = cluster.nodes[survivor].bootstrap
    async with traffic:
        await asyncio.sleep(5)
        # A broker lost, then a second one shut down while the quorum still stands: both are
        # fenced, and every client that asks for metadata now learns only the survivor.
        cluster.kill(killed)
        await _wait_for(f"broker {killed} fenced", lambda: _fenced(survivor_address, killed), 60)
        node = cluster.nodes[stopped].process
        assert node is not None
        await asyncio.to_thread(node.stop, 30)
        cluster.nodes[stopped].process = None
        await _wait_for("only the survivor listed", _only(survivor_address, survivor), 60)
        await asyncio.sleep(10)  # light traffic meanwhile: the clients' metadata names only the survivor
        await _restart(cluster, killed, stopped)
        await _wait_for("brokers listed again", _only(survivor_address, survivor, killed, stopped), 60)
        await _wait_for("serving normally before the survivor dies", lambda: _serving(traffic), 120)
        calls_before = len(traffic.calls)
        logs_before = running.log_sizes()
        # The survivor dies alone; the two others run.
        outage_start = time.monotonic()
        cluster.kill(survivor)
        # The cluster is back when every partition of the hub's topics has a leader again (the
        # controller notices a killed broker after broker.session.timeout.ms, 9 s by default).
        await _wait_for("new leaders", lambda: _led_without(cluster, running.topics, survivor), 60)
        back = time.monotonic()
        await asyncio.sleep(WATCH_AFTER_RETURN_S)
    narrowing = traffic.calls[:calls_before]
    print(f"\nWhile the survivor was alone and the others came back: {_summary(narrowing)}")
    assert not [c for c in narrowing if c.status not in ANSWERS], _summary(narrowing)
    _report("One surviving broker, then it died alone", running, traffic, outage_start, back, logs_before)


async def _led_without(cluster: KafkaCluster, topics: list[str], dead: int) -> bool:
    described = await cluster._describe(topics)
    return bool(described) and all(leader not in (None, dead) for leader, _, _ in described.values())


async def _serving(traffic: Traffic) -> bool:
    """The last 9 calls (3 rounds) all answered 200/201."""
    last = traffic.calls[-9:]
    return len(last) == 9 and all(c.status in (200, 201) for c in last)


async def _fenced(bootstrap: str, node_id: int) -> bool:
    known = await _known_brokers(bootstrap)
    return bool(known) and node_id not in known


def _only(bootstrap: str, *node_ids: int) -> Any:
    async def check() -> bool:
        return await _known_brokers(bootstrap) == sorted(node_ids)

    return check
