"""Subscriptions with 2 workers and 2 API processes: read-your-writes, and a full restart.

A write through one API instance is visible to a read through the other
right after its answer; every worker stopped (one cleanly, one killed) and
started again, every subscription and cursor is still there, with its last
update (Faust recovers the tables from their changelogs).
"""

from __future__ import annotations

import asyncio
import base64
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from support import HubProcess, wait_ready

from hub_stream.access.keys import create_key
from hub_stream.local.embedded import free_port
from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.settings import HubSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUBSCRIBERS = [f"SUB-{i}" for i in range(10)]
PUBLISHERS = ["PUB.A", "PUB.B", "PUB_C"]
ROUNDS = 3
TEMPLATE = {"_default": {"action": "import", "importProcessId": 9, "batchRowTemplate": '{"v": {{json v}}}'}}


def stamp(round_: int, i: int) -> str:
    return f"2026-0{round_ + 1}-{i + 10}T08:00:00.000Z"


class Api:
    def __init__(self, http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
        self.http, self.url, self.headers = http, url, headers

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, json=body, headers=self.headers, timeout=aiohttp.ClientTimeout(total=60)) as r:
            text = await r.text()
            return r.status, (await r.json() if text else None)

    async def call_until_served(self, method: str, path: str, timeout_s: float = 180) -> tuple[int, Any]:
        """Retry while no worker answers (503): after a restart the group must form and recover."""
        deadline = time.monotonic() + timeout_s
        while True:
            status, body = await self.call(method, path)
            if status != 503 or time.monotonic() > deadline:
                return status, body
            await asyncio.sleep(0.5)


def start_workers(settings: HubSettings, tmp: Path, tag: str) -> list[HubProcess]:
    return [HubProcess("worker", settings, tmp / f"worker-{tag}{i}.log") for i in range(2)]


async def wait_for_two_workers(settings: HubSettings, workers: list[HubProcess], timeout_s: float = 120) -> None:
    """Until pings on many keys are answered by both workers (the partitions are split)."""
    client = RpcClient(settings)
    await client.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            seen: set[str] = set()
            for i in range(16):
                try:
                    reply = await client.request(settings.topic("subscriptions.commands"), f"k{i}", "ping", timeout=5)
                    seen.add(reply.body["worker"])
                except RpcTimeout:
                    pass
            if len(seen) == 2:
                return
            if time.monotonic() > deadline:
                logs = "\n".join(w.log_tail() for w in workers)
                raise AssertionError(f"partitions not split between 2 workers (answered: {seen}):\n{logs}")
            await asyncio.sleep(1)
    finally:
        await client.stop()


async def test_read_your_writes_on_two_apis_and_a_full_restart(settings: HubSettings, pool: asyncpg.Pool, tmp_path: Path) -> None:
    key = await create_key(pool, system=True)
    headers = {"Authorization": "Basic " + base64.b64encode(f"{key.user_id}:{key.api_key}".encode()).decode()}
    await pool.executemany("INSERT INTO programs (program_id, name) VALUES ($1, $1)", [(p,) for p in SUBSCRIBERS + PUBLISHERS])

    workers = start_workers(settings, tmp_path, "a")
    ports = [free_port(), free_port()]
    apis = [HubProcess("api", settings, tmp_path / f"api{i}.log", HUB_API_PORT=str(p)) for i, p in enumerate(ports)]
    try:
        for port in ports:
            await wait_ready(f"http://127.0.0.1:{port}", workers + apis, timeout_s=120)
        await wait_for_two_workers(settings, workers)
        async with aiohttp.ClientSession() as http:
            one, two = (Api(http, f"http://127.0.0.1:{p}", headers) for p in ports)

            async def subscriber_story(i: int, sub: str) -> None:
                for pub in PUBLISHERS:
                    status, _ = await one.call("POST", f"/api/programs/{sub}/eventSubs", {"PublisherProgramId": pub, "LbApiPayloadTemplate": TEMPLATE})
                    assert status == 201
                    status, got = await two.call("GET", f"/api/programs/{sub}/eventSubs/{pub}")
                    assert status == 200, f"POST through API 1 not visible through API 2: {got}"
                for round_ in range(ROUNDS):
                    writer, reader = (one, two) if round_ % 2 else (two, one)
                    for pub in PUBLISHERS:
                        change = {"SyncEnabled": round_ % 2 == 0, "LastSyncUtc": stamp(round_, i)}
                        assert (await writer.call("PATCH", f"/api/programs/{sub}/eventSubs/{pub}", change))[0] == 204
                        status, got = await reader.call("GET", f"/api/programs/{sub}/eventSubs/{pub}")
                        assert status == 200
                        assert (got["SyncEnabled"], got["LastSyncUtc"]) == (change["SyncEnabled"], change["LastSyncUtc"])

            # Concurrent stories, so the changelogs get multi-record batches.
            await asyncio.gather(*(subscriber_story(i, sub) for i, sub in enumerate(SUBSCRIBERS)))
            before = {sub: (await one.call("GET", f"/api/programs/{sub}/eventSubs"))[1] for sub in SUBSCRIBERS}
            last = ROUNDS - 1
            for i, sub in enumerate(SUBSCRIBERS):
                assert [(s["PublisherProgramId"], s["SyncEnabled"], s["LastSyncUtc"]) for s in before[sub]] == [
                    (pub, last % 2 == 0, stamp(last, i)) for pub in sorted(PUBLISHERS)
                ]

            workers[0].stop(signal.SIGTERM)
            workers[1].stop(signal.SIGKILL)
            workers = start_workers(settings, tmp_path, "b")
            after = {sub: await two.call_until_served("GET", f"/api/programs/{sub}/eventSubs") for sub in SUBSCRIBERS}
            lost = {sub: got for sub, got in after.items() if got != (200, before[sub])}
            assert not lost, f"{len(lost)} subscribers differ after the restart, e.g. {next(iter(lost.items()))}"

            # And the restarted workers take new writes.
            status, _ = await two.call("DELETE", f"/api/programs/{SUBSCRIBERS[0]}/eventSubs/{PUBLISHERS[0]}")
            assert status == 204
            assert (await one.call("GET", f"/api/programs/{SUBSCRIBERS[0]}/eventSubs/{PUBLISHERS[0]}"))[0] == 404
    finally:
        for proc in workers + apis:
            proc.stop()
