"""GET /readyz covers every part a request needs (issue 22).

The intake, the subscriptions agent and the sync agent each answer a ping on
every partition of their topic, through the reply path; the broker and
PostgreSQL answer. A worker whose intake is stuck while its other agents
answer is not ready: publishes would fail.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support import HubProcess, make_settings, start_crash_worker

from hub_stream.local.embedded import free_port
from hub_stream.platform.topics import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.faults]



async def _readyz(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=15)) as r:
        return r.status, await r.json()


async def test_readyz_is_503_naming_the_intake_when_only_the_intake_is_stuck(
    kafka_bootstrap: str, database_dsn: str, tmp_path: Path
) -> None:
    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path, worker_metrics_port=0)
    await ensure_topics(settings)
    worker = start_crash_worker(settings, tmp_path / "worker.log", "stalls")
    port = free_port()
    api = HubProcess("api", settings, tmp_path / "api.log", HUB_API_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert worker.poll() is None and api.process.poll() is None, api.log_tail()
            try:
                status, body = await _readyz(url)
            except aiohttp.ClientError:
                status, body = 0, {}
            checks = body.get("details", {}).get("checks") or body.get("checks") or {}
            if checks.get("subscriptions", {}).get("ok") and checks.get("sync", {}).get("ok"):
                break
            assert time.monotonic() < deadline, body
            await asyncio.sleep(1)
        print(f"\n/readyz with the intake stuck: {status} {body['message']}")
        assert (status, body["error"]) == (503, "not_ready"), body
        assert not checks["intake"]["ok"] and "did not answer" in checks["intake"]["reason"], checks
        assert checks["broker"]["ok"] and checks["database"]["ok"] and checks["replies"]["ok"], checks
        assert "intake" in body["message"], body
    finally:
        api.stop()
        worker.kill()
        worker.wait(10)

