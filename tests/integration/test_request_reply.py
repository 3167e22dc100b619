"""The request/reply path between API processes and workers, on a real broker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from support import hub_processes, wait_ready

from hub_stream.platform import kafka_fetch
from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

pytestmark = pytest.mark.integration


async def test_ping_through_two_apis_reaches_both_workers(settings: HubSettings, tmp_path: Path) -> None:
    with hub_processes(settings, tmp_path, workers=2, apis=2) as (procs, urls):
        for url in urls:
            await wait_ready(url, procs)
        # Both workers must have joined the group before partitions are split.
        await asyncio.sleep(settings.broker_session_timeout_s)
        client = RpcClient(settings)
        await client.start()
        try:
            workers: set[str] = set()
            topic = settings.topic("subscriptions.commands")
            for i in range(40):
                reply = await client.request(topic, f"program-{i}", "ping", timeout=15)
                assert reply.status == 200
                workers.add(reply.body["worker"])
            assert len(workers) == 2, f"only {workers} answered: partitions not split between workers"
        finally:
            await client.stop()
        async with aiohttp.ClientSession() as http:
            for url in urls:
                async with http.get(f"{url}/readyz") as r:
                    body = await r.json()
                    assert r.status == 200, body
                    assert all(body["checks"][agent]["ok"] for agent in ("intake", "subscriptions", "sync")), body
                    # Two workers share the partitions: both answered the pings.
                    assert len(body["checks"]["subscriptions"]["workers"]) == 2, body
                    assert body["checks"]["intake"]["partitions"] == settings.events_partitions, body


async def test_request_without_worker_times_out(settings: HubSettings) -> None:
    await ensure_topics(settings)
    client = RpcClient(settings)
    await client.start()
    try:
        started = time.monotonic()
        with pytest.raises(RpcTimeout):
            await client.request(settings.topic("subscriptions.commands"), "X", "ping", timeout=1.0)
        assert time.monotonic() - started < 5
    finally:
        await client.stop()


async def test_unknown_request_kind_is_answered_not_dropped(settings: HubSettings, tmp_path: Path) -> None:
    with hub_processes(settings, tmp_path, workers=1, apis=1) as (procs, urls):
        await wait_ready(urls[0], procs)
        client = RpcClient(settings)
        await client.start()
        try:
            reply = await client.request(settings.topic("sync.requests"), "X", "no-such-kind")
            assert reply.status == 400
            assert reply.body["error"] == "unknown_request"
            # The agent is still alive after it.
            assert (await client.request(settings.topic("sync.requests"), "X", "ping")).status == 200
        finally:
            await client.stop()


async def test_the_reply_reader_fetches_again_without_aiokafkas_100_ms_wait(settings: HubSettings) -> None:
    """The fix of hub_stream/platform/kafka_fetch.py reaches a started consumer (a guard on upgrading aiokafka):
    without it, a reply that follows another on the API's reply partition within 0.1 s waits out the rest."""
    await ensure_topics(settings)
    client = RpcClient(settings)
    await client.start()
    try:
        assert kafka_fetch.prefetch_backoff_of(client._consumer) == settings.prefetch_backoff_ms / 1000 < 0.1
    finally:
        await client.stop()
