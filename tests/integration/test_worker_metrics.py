"""The worker's /metrics, read as Prometheus reads it: lag per partition, syncs, LB, subscriptions.

One worker with its metrics port, a fake LB and the API in process; one sync
started with a known X-Request-ID. Checked with prometheus_client's parser:
every partition the worker consumes has a lag (0 once idle, changelogs left
out), the sync shows in the histogram, LB answers by status and the
subscription's gauges, both processes answer the same exposition format, and
the sync's log lines carry the request's id.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from support import HubProcess, make_settings

from api.app import create_app
from hub_stream.events.records import encode_event
from hub_stream.local.embedded import free_port
from hub_stream.local.lb_standin import start_fake_lb
from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.topics import ensure_topics, table_topics
from schemas.timefmt import utc_now_text

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LB_KEY = "lb-key-metrics-test"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels (raises on a malformed one)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(http: aiohttp.ClientSession, url: str) -> tuple[Samples, str]:
    async with http.get(url) as r:
        assert r.status == 200
        return parse(await r.text()), r.headers["Content-Type"]


async def test_worker_metrics_lag_syncs_lb_and_subscriptions(
    kafka_bootstrap: str, database_dsn: str, tmp_path: Path, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path)
    await ensure_topics(settings)
    port = free_port()
    worker = HubProcess("worker", settings, tmp_path / "worker.log", HUB_WORKER_METRICS_PORT=str(port))
    rpc = RpcClient(settings)
    await rpc.start()
    lb, lb_runner = await start_fake_lb(api_keys={LB_KEY})
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                await rpc.request(settings.topic("sync.requests"), "k", "ping", timeout=3)
                await rpc.request(settings.topic("subscriptions.commands"), "k", "ping", timeout=3)
                break
            except RpcTimeout:
                assert time.monotonic() < deadline and worker.process.poll() is None, worker.log_tail()

        tag = uuid.uuid4().hex[:6]
        sub, pub = f"SUB{tag}", f"PUB{tag}"
        await pool.execute("INSERT INTO programs (program_id, name, lb_base_url, lb_api_key) VALUES ($1, 'S', $2, $3)", sub, lb.base_url, LB_KEY)
        await pool.execute("INSERT INTO programs (program_id, name) VALUES ($1, 'P')", pub)
        template = {"_default": {"importProcessId": 5, "batchRowTemplate": '{"n": {{json n}}}'}}
        request_id = f"rid-{tag}"
        async with TestClient(TestServer(create_app(settings, rpc=rpc, pool=pool))) as api:
            r = await api.post(f"/api/programs/{sub}/eventSubs", json={"PublisherProgramId": pub, "SyncEnabled": True, "LbApiPayloadTemplate": template}, headers=system)
            assert r.status == 201, await r.text()
            await append_events(settings.kafka_bootstrap or "", settings.topic("events"), pub, 3)
            r = await api.post(f"/api/processEvents?programId={sub}", headers={**system, "X-Request-ID": request_id})
            assert r.status == 200, await r.text()
            r = await api.get("/metrics")
            api_samples, api_type = parse(await r.text()), r.headers["Content-Type"]

        consumed = {settings.topic(t): settings.subscriber_partitions for t in ("subscriptions.commands", "sync.requests")}
        consumed[settings.topic("events.incoming")] = settings.events_partitions
        changelogs = {spec.name for spec in table_topics(settings).values()}
        key = (("program", sub), ("publisher", pub))
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60  # the timers run every 15 s
            while True:
                samples, worker_type = await scrape(http, f"http://127.0.0.1:{port}/metrics")
                lag = {(dict(labels)["topic"], int(dict(labels)["partition"])): v for (name, labels), v in samples.items() if name == "hub_consumer_lag_records"}
                every = {(t, p) for t, n in consumed.items() for p in range(n)}
                if every <= set(lag) and all(lag[tp] == 0 for tp in every) and ("hub_subscription_pending_records", key) in samples:
                    break
                assert time.monotonic() < deadline, f"lag {lag}, subscription gauges: {[k for k in samples if k[0].startswith('hub_subscription')]}"
                await asyncio.sleep(1)

        assert not {t for t, _ in lag} & changelogs  # the worker writes its changelogs; no lag there
        assert samples[("hub_subscription_pending_records", key)] == 0  # delivered up to the end
        assert samples[("hub_subscription_last_sync_status", (*key, ("status", "ok")))] == 1
        assert 0 <= samples[("hub_subscription_seconds_since_last_success", key)] < 120
        assert samples[("hub_sync_duration_seconds_count", (("outcome", "ok"),))] == 1
        assert samples[("hub_lb_responses_total", (("status", "200"),))] >= 1
        assert samples[("process_cpu_seconds_total", ())] > 0 and ("process_cpu_seconds_total", ()) in api_samples
        assert worker_type == api_type  # one exposition format version across processes

        lines = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line.startswith("{")]
        sync_lines = [line for line in lines if line.get("program_id") == sub and "sync_id" in line]
        assert sync_lines and all(line.get("request_id") == request_id for line in sync_lines), sync_lines
    finally:
        await lb_runner.cleanup()
        await rpc.stop()
        worker.stop()


async def append_events(bootstrap: str, topic: str, publisher: str, count: int) -> None:
    """Events on hub.events as the intake writes them."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(count):
            event: dict[str, Any] = {
                "EventId": f"E:{publisher}-{uuid.uuid4()}",
                "PublisherProgramId": publisher,
                "PublisherEventId": f"ev-{n}",
                "EventType": "DONE",
                "PublisherParticipantId": f"p{n}@example.org",
                "PublisherEventCategory": None,
                "PublisherEventData": {"n": n},
                "EventStartUtc": "2026-11-20T10:00:00.000Z",
                "CreatedUtc": utc_now_text(),
            }
            k, v, h = encode_event(event)
            await producer.send_and_wait(topic, v, key=k, headers=h)
    finally:
        await producer.stop()
