"""What the cluster scenarios share: a hub (workers, `hub api` processes, the LB stand-in) on the
cluster, HTTP publishers that keep what they saw, listing, syncing and counting deliveries."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer
from support import HubProcess, new_system_key, wait_ready

from hub_stream.events.records import encode_event, partition_for
from hub_stream.local.embedded import free_port
from hub_stream.local.lb_standin import FakeLB, start_fake_lb
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import all_topics, ensure_topics
from schemas.timefmt import parse_utc, to_millis, utc_now_text

LB_KEY = "lb-key-cluster-test"
TEMPLATE = {
    "COURSE": {"importProcessId": 11, "batchRowTemplate": '{"pub": "{{pub}}", "n": {{json n}}}'},
    "_default": {"action": "ignore"},
}
CALL_TIMEOUT_S = 60.0  # a client's own limit on one call: far above the hub's timeouts
LANES = 8  # calls one publisher has in flight: one at a time would measure latency, not the hub


def program_ids(prefix: str, n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}{tag}{i}" for i in range(n)]


def event_body(pub: str, n: int) -> dict[str, Any]:
    """An event as an HTTP publisher posts it; the template turns it into the row {pub, n}."""
    return {
        "PublisherProgramId": pub,
        "PublisherEventId": f"ev-{n}",
        "EventType": "COURSE_DONE",
        "PublisherParticipantId": f"p{n}@example.org",
        "PublisherEventCategory": {"value": "COURSE", "label": "Course"},
        "PublisherEventData": {"pub": pub, "n": n},
        "EventStartUtc": "2026-11-20T10:00:00Z",
    }


@dataclass
class Seen:
    """What HTTP clients saw: answers by status, 503s without Retry-After, calls with no answer."""

    statuses: Counter[int] = field(default_factory=Counter)
    without_retry_after: int = 0
    no_answer: int = 0
    slowest_503_s: float = 0.0

    def unexpected(self) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if not (200 <= s < 300 or s == 503)}

    def __str__(self) -> str:
        return (f"answers {dict(sorted(self.statuses.items()))}, 503 without Retry-After {self.without_retry_after},"
                f" no answer {self.no_answer}, slowest 503 {self.slowest_503_s:.1f} s")


@dataclass
class Hub:
    """A hub on the cluster: settings, processes, API URLs, the LB stand-in and a system key."""

    settings: HubSettings
    tmp: Path
    lb: FakeLB
    auth: dict[str, str]
    http: aiohttp.ClientSession
    workers: list[HubProcess] = field(default_factory=list)
    apis: list[HubProcess] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def add_worker(self) -> HubProcess:
        worker = HubProcess("worker", self.settings, self.tmp / f"worker{len(self.workers) + 1}.log")
        self.workers.append(worker)
        return worker

    async def add_api(self) -> str:
        port = free_port()
        api = HubProcess("api", self.settings, self.tmp / f"api{len(self.apis) + 1}.log", HUB_API_PORT=str(port))
        self.apis.append(api)
        url = f"http://127.0.0.1:{port}"
        self.urls.append(url)
        await wait_ready(url, [api, *self.workers], timeout_s=180)
        return url

    def logs(self) -> str:
        return "\n".join(f"--- {p.command} {p.log_path.name}\n{p.log_tail(25)}" for p in [*self.workers, *self.apis])

    async def call(self, method: str, path: str, seen: Seen | None = None, url: str | None = None,
                   **kw: Any) -> tuple[int, Any, float]:
        """One HTTP call: (status, JSON body, seconds); status 0 when no answer came in CALL_TIMEOUT_S."""
        started = time.monotonic()
        try:
            async with self.http.request(method, (url or self.urls[0]) + path, headers=self.auth,
                                         timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S), **kw) as r:
                text = await r.text()
                body = json.loads(text) if text and r.content_type == "application/json" else text
                seconds = time.monotonic() - started
                if seen is not None:
                    seen.statuses[r.status] += 1
                    if r.status == 503:
                        seen.slowest_503_s = max(seen.slowest_503_s, seconds)
                        if "Retry-After" not in r.headers:
                            seen.without_retry_after += 1
                return r.status, body, seconds
        except (TimeoutError, aiohttp.ClientError):
            if seen is not None:
                seen.no_answer += 1
            return 0, None, time.monotonic() - started

    async def publish(self, pub: str, numbers: range, seen: Seen, accepted: dict[tuple[str, int], str],
                      url: str | None = None) -> None:
        """Post each event until it is accepted (201/200), retrying the same body after a 503
        or no answer as a careful client does; ``accepted`` gets (pub, n) -> EventId."""
        for n in numbers:
            while True:
                status, body, _ = await self.call("POST", "/api/events", seen, url=url, json=event_body(pub, n))
                if status in (200, 201):
                    accepted[(pub, n)] = body["EventId"]
                    break
                if status not in (0, 503):
                    raise AssertionError(f"{pub} ev-{n}: {status} {body}")
                await asyncio.sleep(0.5)

    async def publish_lanes(self, pub: str, numbers: range, seen: Seen, accepted: dict[tuple[str, int], str],
                            lanes: int = LANES) -> None:
        """``publish`` over ``lanes`` calls in flight at once (one publisher's workers posting side by side)."""
        await asyncio.gather(*(self.publish(pub, numbers[lane::lanes], seen, accepted) for lane in range(lanes)))

    async def listed(self, pub: str) -> list[dict[str, Any]]:
        """Every event of ``pub``'s listing, following NextPageToken (retrying a 503 page)."""
        found: list[dict[str, Any]] = []
        query = {"limit": "1000"}
        while True:
            status, body, _ = await self.call("GET", f"/api/events/{pub}", params=query)
            if status == 503:
                await asyncio.sleep(1)
                continue
            assert status == 200, (status, body)
            found.extend(body["Events"])
            if body["NextPageToken"] is None:
                return found
            query["pageToken"] = body["NextPageToken"]

    async def sync(self, sub: str, seen: Seen | None = None, deadline_s: float = 300) -> list[dict[str, Any]]:
        """processEvents until one answers 200 with nothing left to import; every answer's body."""
        answers: list[dict[str, Any]] = []
        deadline = time.monotonic() + deadline_s
        while True:
            status, body, _ = await self.call("POST", f"/api/processEvents?programId={sub}", seen)
            if status == 200:
                answers.append(body)
                if all(s["Imported"] == 0 for s in body["Subscriptions"]):
                    return answers
            elif status not in (0, 503, 504):
                raise AssertionError(f"processEvents: {status} {body}")
            assert time.monotonic() < deadline, f"sync not finished in {deadline_s} s: {answers}\n{self.logs()}"
            if status != 200:
                await asyncio.sleep(1)


def imported(answers: list[dict[str, Any]]) -> int:
    return sum(s["Imported"] for a in answers for s in a["Subscriptions"])


def resent(answers: list[dict[str, Any]]) -> int:
    return sum(s.get("Resent", 0) for a in answers for s in a["Subscriptions"])


def delivered_rows(lb: FakeLB) -> Counter[tuple[str, int]]:
    return Counter((row["pub"], row["n"]) for batch in lb.accepted for row in batch.rows)


async def register(pool: asyncpg.Pool, lb: FakeLB, subscribers: list[str], publishers: list[str]) -> None:
    await pool.executemany(
        "INSERT INTO programs (program_id, name, lb_base_url, lb_api_key) VALUES ($1, 'Subscriber', $2, $3)",
        [(s, lb.base_url, LB_KEY) for s in subscribers])
    await pool.executemany("INSERT INTO programs (program_id, name) VALUES ($1, 'Publisher')",
                           [(p,) for p in publishers])


async def subscribe(hub: Hub, sub: str, pub: str) -> None:
    while True:
        status, body, _ = await hub.call(
            "POST", f"/api/programs/{sub}/eventSubs",
            json={"PublisherProgramId": pub, "SyncEnabled": True, "LbApiPayloadTemplate": TEMPLATE})
        if status == 201:
            return
        assert status == 503, (status, body)
        await asyncio.sleep(1)


async def append_events(settings: HubSettings, pub: str, numbers: range) -> None:
    """Append canonical event records straight to hub.events, as the intake would (for big syncs)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=20)
    await producer.start()
    try:
        sent = []
        for n in numbers:
            doc = {"EventId": f"E:{pub}-{uuid.uuid4()}", **event_body(pub, n), "CreatedUtc": utc_now_text()}
            key, value, headers = encode_event(doc)
            sent.append(await producer.send(settings.topic("events"), value, key=key, headers=headers,
                                            timestamp_ms=to_millis(parse_utc(doc["CreatedUtc"]))))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def events_partition(settings: HubSettings, pub: str) -> int:
    return partition_for(pub, settings.events_partitions)


def topic_names(settings: HubSettings) -> list[str]:
    return [spec.name for spec in all_topics(settings)]


@asynccontextmanager
async def hub_on_cluster(settings: HubSettings, tmp: Path, *, workers: int = 1) -> AsyncIterator[Hub]:
    """Topics made (RF as settings say), ``workers`` workers and one `hub api` ready; all stopped after."""
    await ensure_topics(settings)
    lb, runner = await start_fake_lb(api_keys={LB_KEY})
    auth = await new_system_key(settings.database_url.get_secret_value() if settings.database_url else "")
    async with aiohttp.ClientSession() as http:
        hub = Hub(settings, tmp, lb, auth, http)
        try:
            for _ in range(workers):
                hub.add_worker()
            await hub.add_api()
            yield hub
        finally:
            for proc in [*hub.apis, *hub.workers]:
                proc.stop()
            await runner.cleanup()
