"""A worker serves its metrics, consumer lag per partition included."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from support import HubProcess

from hub_stream.local.embedded import free_port
from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_worker_metrics_report_consumer_lag(settings: HubSettings, tmp_path: Path) -> None:
    await ensure_topics(settings)
    port = free_port()
    worker = HubProcess("worker", settings, tmp_path / "worker.log", HUB_WORKER_METRICS_PORT=str(port))
    client = RpcClient(settings)
    await client.start()
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                await client.request(settings.topic("subscriptions.commands"), "k", "ping", timeout=3)
                break
            except RpcTimeout:
                assert time.monotonic() < deadline, worker.log_tail()
        text = ""
        async with aiohttp.ClientSession() as http:
            for _ in range(60):  # the lag timer runs every 15 s
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    text = await r.text()
                if f'hub_consumer_lag{{partition="0",topic="{settings.topic("subscriptions.commands")}"}}' in text:
                    break
                await asyncio.sleep(0.5)
        assert f'topic="{settings.topic("subscriptions.commands")}"' in text, text[-2000:]
    finally:
        await client.stop()
        worker.stop()
