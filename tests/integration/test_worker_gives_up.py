"""A worker that cannot go on exits promptly, non-zero, with a clear last line (issue 22).

The intake cannot make a batch durable (its writes fail as with brokers away)
and its stop then hangs, as aiokafka's consumer stop did for a minute with
brokers away while the worker kept its partitions. The worker must be gone
within ``STOP_GRACE_S``, with status ``EXIT_CANNOT_GO_ON`` for its supervisor,
and its last lines must say why.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from support import event_doc, make_settings, start_crash_worker, wait_for_intake

from hub_stream.platform.giving_up import EXIT_CANNOT_GO_ON, STOP_GRACE_S
from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.topics import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.faults]



async def test_a_worker_whose_intake_cannot_go_on_exits_promptly_and_says_why(
    kafka_bootstrap: str, database_dsn: str, tmp_path: Path
) -> None:
    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path, worker_metrics_port=0)
    await ensure_topics(settings)
    log_path = tmp_path / "worker.log"
    worker = start_crash_worker(settings, log_path, "broker_fails")
    client = RpcClient(settings)
    try:
        await wait_for_intake(settings, worker)
        await client.start()
        pub = f"G{uuid.uuid4().hex[:6]}"
        failed_at = time.monotonic()
        with pytest.raises(RpcTimeout):  # the batch is never made durable: no reply
            await client.request(settings.topic("events.incoming"), pub, "publish", event_doc(pub, 1), timeout=3)
        status = worker.wait(STOP_GRACE_S + 20)
        exited_after = time.monotonic() - failed_at
        lines = log_path.read_text(errors="replace").splitlines()
        print(f"\nthe worker exited with status {status} {exited_after:.1f} s after the failed batch; last line: {lines[-1]}")
        assert status == EXIT_CANNOT_GO_ON, "\n".join(lines[-20:])
        assert exited_after < STOP_GRACE_S + 5, f"the worker took {exited_after:.1f} s to exit"
        said = [line for line in lines if "worker stops: the intake could not make a batch durable" in line]
        assert said and "KafkaTimeoutError" in said[0], "\n".join(lines[-20:])
        assert "exiting now" in lines[-1], lines[-1]
    finally:
        await client.stop()
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)
