"""OnRenderError park end to end: real workers (separate processes), broker, PostgreSQL, LB stand-in over HTTP.

One event a template cannot render is parked and skipped; the rest is
delivered; the parked event survives the worker's restart, SIGKILL, and the
subscriber's partition moving to another worker; after a template fix it is
redelivered before newer events; another one is dropped and the drop is in
the ledger. The parked count is in the worker's /metrics.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import HubProcess, make_settings, settings_env
from test_preview import hub
from test_sync import append, delivered, event, names, process, register, start_worker_and_wait
from test_sync_faults import one_worker_stack, owner_of, wait_until_both_serve

from api.app import create_app
from hub_stream.events.records import encode_event
from hub_stream.local.embedded import free_port
from hub_stream.local.lb_standin import FakeLB, start_fake_lb
from hub_stream.platform.request_reply import RpcClient
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

pytestmark = pytest.mark.integration

ROW_EXAM = '{"email": "{{email}}", "exam": {{n}}}'  # n must be a number: text makes the row invalid JSON
STRICT = {
    "COURSE": {"importProcessId": 11, "batchRowTemplate": '{"email": "{{email}}", "n": {{n}}}'},
    "EXAM": {"importProcessId": 22, "batchRowTemplate": ROW_EXAM},
    "_default": {"action": "ignore"},
}
FIXED = {**STRICT, "COURSE": {"importProcessId": 11, "batchRowTemplate": '{"email": "{{email}}", "n": {{json n}}}'}}


class Worker:
    """A worker process with its own metrics port."""

    def __init__(self, process: HubProcess, metrics_port: int) -> None:
        self.process = process
        self.metrics_port = metrics_port

    @classmethod
    def start(cls, settings: HubSettings, log: Path) -> Worker:
        port = free_port()
        return cls(HubProcess("worker", settings, log, HUB_WORKER_METRICS_PORT=str(port)), port)

    async def parked_gauge(self, sub: str, pub: str) -> float | None:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
            text = await r.text()
        found = re.search(rf'hub_subscription_parked_events{{program="{sub}",publisher="{pub}"}} (\S+)', text)
        return float(found.group(1)) if found else None


async def serving(rpc: RpcClient, settings: HubSettings, key: str, log: Path) -> Worker:
    """A new worker, once it answers ``key``'s sync requests."""
    port = free_port()
    process = await start_worker_and_wait(settings, rpc, key, log, HUB_WORKER_METRICS_PORT=str(port))
    return Worker(process, port)


async def parked_of(http: TestClient, system: dict[str, str], sub: str, pub: str) -> dict[str, Any]:
    r = await http.get(f"/api/programs/{sub}/eventSubs/{pub}/parked", headers=system)
    assert r.status == 200, await r.text()
    return dict(await r.json())


async def gauge_settles(worker: Worker, sub: str, pub: str, expected: float) -> None:
    """The gauge comes from the worker's subscription snapshot, taken every 15 s."""
    for _ in range(80):
        if await worker.parked_gauge(sub, pub) == expected:
            return
        await asyncio.sleep(0.5)
    assert await worker.parked_gauge(sub, pub) == expected


@pytest.mark.parametrize("change", ["restart", "SIGKILL", "handover"])
async def test_a_parked_event_survives_and_is_redelivered_first(
    kafka_bootstrap: str, database_dsn: str, tmp_path: Path, pool: asyncpg.Pool, system: dict[str, str], change: str
) -> None:
    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path, lb_max_retries=0, lb_batch_row_cap=10, request_timeout_s=30)
    await ensure_topics(settings)
    rpc = RpcClient(settings)
    await rpc.start()
    lb, lb_runner = await start_fake_lb(api_keys={"lb-key-sync-test"})
    sub, pub, _ = names()
    workers = [await serving(rpc, settings, sub, tmp_path / "worker1.log")]
    try:
        async with TestClient(TestServer(create_app(settings, rpc=rpc, pool=pool))) as http:
            await register(pool, lb, sub, pub)
            body = {"PublisherProgramId": pub, "SyncEnabled": True, "LbApiPayloadTemplate": STRICT, "OnRenderError": "park"}
            r = await http.post(f"/api/programs/{sub}/eventSubs", json=body, headers=system)
            assert r.status == 201, await r.text()
            events = [event(pub, 1), event(pub, 2), event(pub, 3)]
            events[1]["PublisherEventData"]["n"] = "two"  # text where the row expects a number
            await append(settings, [encode_event(e) for e in events])

            r = await http.post(f"/api/processEvents?programId={sub}&dryRun=true", headers=system)
            plan = await r.json()
            assert r.status == 200 and [p["EventId"] for p in plan["Subscriptions"][0]["Parked"]] == [events[1]["EventId"]]

            status, answer = await process(http, system, sub)
            assert status == 200, answer
            [outcome] = answer["Subscriptions"]
            assert outcome["Status"] == "ok" and outcome["Imported"] == 2
            assert [p["EventId"] for p in outcome["Parked"]] == [events[1]["EventId"]] and outcome["Parked"][0]["Reason"]
            assert delivered(lb) == [(11, 1), (11, 3)]
            [parked] = (await parked_of(http, system, sub, pub))["Parked"]
            assert parked["EventId"] == events[1]["EventId"] and parked["EntryKey"] == "COURSE" and not parked["Redeliver"]
            await gauge_settles(workers[0], sub, pub, 1.0)

            # the worker goes away: restarted, killed, or the subscriber's partition moves to another worker
            if change == "handover":
                workers.append(Worker.start(settings, tmp_path / "worker2.log"))
                await wait_until_both_serve(rpc, settings, [w.process for w in workers])
                owner = await owner_of(rpc, settings, [w.process for w in workers], sub)
                owner.stop()  # the other worker takes the partition over
                workers = [w for w in workers if w.process is not owner]
            else:
                workers[0].process.stop(signal.SIGKILL if change == "SIGKILL" else signal.SIGTERM)
                workers = [await serving(rpc, settings, sub, tmp_path / "worker2.log")]
            after = (await parked_of(http, system, sub, pub))["Parked"]
            assert after == [parked]
            await gauge_settles(workers[0], sub, pub, 1.0)

            # fix the template, redeliver, and publish more: the parked event goes first
            r = await http.patch(f"/api/programs/{sub}/eventSubs/{pub}", json={"LbApiPayloadTemplate": FIXED}, headers=system)
            assert r.status == 204, await r.text()
            r = await http.post(f"/api/programs/{sub}/eventSubs/{pub}/parked/redeliver", headers=system)
            assert r.status == 200 and await r.json() == {"Queued": [events[1]["EventId"]], "NotParked": []}
            later = [event(pub, 4), event(pub, 5, "EXAM")]
            later[1]["PublisherEventData"]["n"] = "five"  # fails the EXAM row, also with the fixed template
            await append(settings, [encode_event(e) for e in later])
            status, answer = await process(http, system, sub)
            assert status == 200, answer
            [outcome] = answer["Subscriptions"]
            assert outcome["Redelivered"] == 1 and [p["EventId"] for p in outcome["Parked"]] == [later[1]["EventId"]]
            assert delivered(lb) == [(11, 1), (11, 3), (11, "two"), (11, 4)]
            [parked] = (await parked_of(http, system, sub, pub))["Parked"]
            assert parked["EventId"] == later[1]["EventId"] and parked["EntryKey"] == "EXAM"

            # drop it: gone, never delivered, recorded in the ledger
            r = await http.delete(f"/api/programs/{sub}/eventSubs/{pub}/parked/{parked['EventId']}", headers=system)
            assert r.status == 204, await r.text()
            assert (await parked_of(http, system, sub, pub))["Parked"] == []
            await gauge_settles(workers[0], sub, pub, 0.0)
            row = await pool.fetchrow("SELECT event_id, entry_key, reason FROM parked_drops WHERE program_id = $1", sub)
            assert row is not None and row["event_id"] == parked["EventId"] and row["entry_key"] == "EXAM"
            r = await http.delete(f"/api/programs/{sub}/eventSubs/{pub}/parked/{parked['EventId']}", headers=system)
            assert r.status == 404 and (await r.json())["error"] == "parked_event_not_found"
            status, answer = await process(http, system, sub)
            assert status == 200 and answer["Subscriptions"][0]["Imported"] == 0 and len(lb.accepted) == 2
    finally:
        for w in workers:
            w.process.stop()
        await lb_runner.cleanup()
        await rpc.stop()


@pytest.fixture(scope="module")
async def one_worker(kafka_bootstrap: str, database_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[HubSettings, RpcClient, FakeLB]]:
    tmp = Path(tmp_path_factory.mktemp("parking"))
    async with one_worker_stack(
        kafka_bootstrap, database_dsn, tmp, worker_env={"HUB_WORKER_METRICS_PORT": str(free_port())}, lb_max_retries=0
    ) as parts:
        yield parts


async def test_staff_pause_replay_and_handle_parked_events_from_a_terminal(
    one_worker: tuple[HubSettings, RpcClient, FakeLB], pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, rpc, lb = one_worker
    sub, pub, _ = names()
    async with TestClient(TestServer(create_app(settings, rpc=rpc, pool=pool))) as http:
        await register(pool, lb, sub, pub)
        body = {"PublisherProgramId": pub, "SyncEnabled": True, "LbApiPayloadTemplate": STRICT, "OnRenderError": "park"}
        assert (await http.post(f"/api/programs/{sub}/eventSubs", json=body, headers=system)).status == 201
        bad = event(pub, 2)
        bad["PublisherEventData"]["n"] = "two"
        await append(settings, [encode_event(event(pub, 1)), encode_event(bad)])
        status, _ = await process(http, system, sub)
        assert status == 200 and delivered(lb) == [(11, 1)]
        user, secret = base64.b64decode(system["Authorization"].split()[1]).decode().split(":", 1)
        env = {**settings_env(settings), "HUB_CLI_API_URL": str(http.make_url("")), "HUB_CLI_CREDENTIALS": f"{user}:{secret}"}

        code, out, _ = await hub(env, "subs", "parked", sub, pub)
        assert code == 0 and bad["EventId"] in out and "entry COURSE" in out and "1 of 1 parked" in out, out
        code, out, _ = await hub(env, "subs", "parked", sub, pub, "--json")
        assert code == 0 and json.loads(out)["Total"] == 1
        code, out, _ = await hub(env, "subs", "redeliver", sub, pub, "E:not-parked")
        assert code == 1 and "not parked (nothing done): E:not-parked" in out, out

        code, out, _ = await hub(env, "subs", "pause", sub, pub)
        assert code == 0 and "paused" in out, out
        status, answer = await process(http, system, sub)
        assert status == 200 and answer["Subscriptions"] == []  # a paused subscription is not synced
        code, out, _ = await hub(env, "subs", "resume", sub, pub, "--json")
        assert code == 0 and json.loads(out)["SyncEnabled"] is True
        code, out, _ = await hub(env, "subs", "replay", sub, pub, "--since", "2020-01-01T00:00:00Z")
        assert code == 0 and "2020-01-01T00:00:00" in out, out
        status, answer = await process(http, system, sub)
        assert status == 200 and delivered(lb) == [(11, 1), (11, 1)]  # replayed; the parked event still waits
        code, out, _ = await hub(env, "subs", "replay", sub, pub, "--since", "yesterday")
        assert code == 2, out

        code, out, _ = await hub(env, "subs", "redeliver", sub, pub)
        assert code == 0 and "1 parked event(s) queued" in out, out
        code, out, _ = await hub(env, "subs", "drop", sub, pub, bad["EventId"])
        assert code == 0 and "dropped" in out, out
        code, _, err = await hub(env, "subs", "drop", sub, pub, bad["EventId"])
        assert code == 1 and "parked_event_not_found" in err
        code, out, _ = await hub(env, "subs", "parked", sub, pub)
        assert code == 0 and "nothing parked" in out
        code, _, err = await hub(env, "subs", "parked", sub, "GHOST")
        assert code == 1 and "subscription_not_found" in err
