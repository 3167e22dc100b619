"""A worker restart recovers every table entry written just before it stopped."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from support import settings_env

from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import COMPACTED, ensure_topics

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("table_worker.py")
KEYS = 2000


async def _create_test_topics(settings: HubSettings) -> None:
    await ensure_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(settings.topic("tabletest"), 1, 1),
                NewTopic(f"{settings.app_id}-tabletest-changelog", 1, 1, topic_configs=dict(COMPACTED)),
            ]
        )
    finally:
        await admin.close()


def _start_worker(settings: HubSettings, log: Path) -> subprocess.Popen[bytes]:
    env = settings_env(settings)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = open(log, "ab")
    return subprocess.Popen(
        [sys.executable, str(SCRIPT)], env=env, stdout=out, stderr=out, start_new_session=True
    )


async def _dump(client: RpcClient, settings: HubSettings, timeout: float = 60) -> dict[str, int]:
    reply = await client.request(settings.topic("tabletest"), "k", "dump", timeout=timeout)
    assert reply.status == 200
    return reply.body


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_restart_recovers_every_entry(settings: HubSettings, tmp_path: Path, stop_signal: int) -> None:
    await _create_test_topics(settings)
    client = RpcClient(settings)
    await client.start()
    worker = _start_worker(settings, tmp_path / "worker1.log")
    try:
        await _dump(client, settings, timeout=60)  # the worker is up
        # Many keys, several updates each, in concurrent bursts so the
        # changelog gets multi-record batches (where Tansu's end offsets go wrong).
        expected: dict[str, int] = {}
        for round_ in range(3):
            sends = []
            for i in range(KEYS):
                key = f"key-{i}"
                expected[key] = round_ * KEYS + i
                sends.append(
                    client.request(settings.topic("tabletest"), "k", "put", {"k": key, "v": expected[key]}, timeout=60)
                )
            replies = await asyncio.gather(*sends)
            assert all(r.status == 200 for r in replies)
        assert await _dump(client, settings) == expected
        worker.send_signal(stop_signal)
        worker.wait(30)

        worker = _start_worker(settings, tmp_path / "worker2.log")
        try:
            recovered = await _dump(client, settings, timeout=120)
        except RpcTimeout:
            # Say where the restarted worker got stuck (recovery, rebalance, ...).
            log = (tmp_path / "worker2.log").read_text(errors="replace")
            pytest.fail(f"the restarted worker did not answer within 120 s; its log ends:\n{log[-4000:]}")
        missing = {k for k in expected if k not in recovered}
        stale = {k for k in expected if k in recovered and recovered[k] != expected[k]}
        assert not missing and not stale, (
            f"{len(missing)} keys lost, {len(stale)} one update short after restart "
            f"(e.g. {sorted(missing | stale)[:5]})"
        )
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(20)
        await client.stop()
