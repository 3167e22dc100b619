"""The CreateBatch client against the LearningBuilder stand-in (a real HTTP server on loopback)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from hub_stream.local.lb_standin import FakeLB, start_fake_lb
from hub_stream.platform.settings import HubSettings
from hub_stream.sync.lb_client import CreateBatchClient, LbTarget

KEY = "lb-secret-key-7f3a"


@pytest.fixture
async def lb() -> AsyncIterator[FakeLB]:
    fake, runner = await start_fake_lb(api_keys={KEY})
    try:
        yield fake
    finally:
        await runner.cleanup()


def _client(**overrides: float) -> CreateBatchClient:
    values = {"lb_max_retries": 3, "lb_total_timeout_s": 2.0, "lb_connect_timeout_s": 1.0}
    values.update(overrides)
    return CreateBatchClient(HubSettings(**values))  # type: ignore[arg-type]


def _target(lb: FakeLB, key: str = KEY) -> LbTarget:
    return LbTarget(lb.base_url, key, creation_path="LH", success_email="ok@example.org")


ROWS = [json.dumps({"email": "a@example.org", "n": 1}), json.dumps({"email": "b@example.org", "n": 2})]


async def test_batch_is_accepted_with_id_and_link(lb: FakeLB) -> None:
    async with _client() as client:
        outcome = await client.create_batch(_target(lb), file_name="Learning Hub ACME 2026-11-22", import_process_id=7, rows=ROWS)
    assert outcome.ok and outcome.status == 200 and outcome.attempts == 1
    assert outcome.batch_id == lb.batches[0].batch_id
    assert outcome.batch_url and outcome.batch_id in outcome.batch_url
    got = lb.batches[0]
    assert got.rows == [json.loads(r) for r in ROWS]
    assert (got.file_name, got.import_process_id, got.creation_path) == ("Learning Hub ACME 2026-11-22", 7, "LH")
    assert got.success_email == "ok@example.org" and got.failure_email is None


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_transient_statuses_are_retried(lb: FakeLB, status: int) -> None:
    lb.fail(status, times=2)
    async with _client() as client:
        outcome = await client.create_batch(_target(lb), file_name="f", import_process_id=1, rows=ROWS)
    assert outcome.ok and outcome.attempts == 3
    assert len(lb.accepted) == 1  # the rows were delivered once


async def test_retries_are_bounded_and_lb_message_reported(lb: FakeLB) -> None:
    lb.fail(503, times=-1, message="Queue is paused for maintenance")
    async with _client(lb_max_retries=2) as client:
        outcome = await client.create_batch(_target(lb), file_name="f", import_process_id=1, rows=ROWS)
    assert not outcome.ok and outcome.status == 503 and outcome.attempts == 3
    assert outcome.message == "Queue is paused for maintenance"
    assert lb.accepted == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500])
async def test_other_errors_are_not_retried(lb: FakeLB, status: int) -> None:
    lb.fail(status, times=-1)
    async with _client() as client:
        outcome = await client.create_batch(_target(lb), file_name="f", import_process_id=1, rows=ROWS)
    assert not outcome.ok and outcome.status == status and outcome.attempts == 1


async def test_wrong_key_is_401_from_lb(lb: FakeLB) -> None:
    async with _client() as client:
        outcome = await client.create_batch(_target(lb, key="nope"), file_name="f", import_process_id=1, rows=ROWS)
    assert outcome.status == 401 and outcome.attempts == 1


async def test_hanging_lb_times_out_and_is_retried_boundedly(lb: FakeLB) -> None:
    lb.behaviour.hang = True
    async with _client(lb_total_timeout_s=0.3, lb_max_retries=1) as client:
        outcome = await asyncio.wait_for(
            client.create_batch(_target(lb), file_name="f", import_process_id=1, rows=ROWS), 10
        )
    assert not outcome.ok and outcome.status is None and outcome.attempts == 2
    assert "timeout" in outcome.message


async def test_lb_down_is_retried_then_reported(lb: FakeLB) -> None:
    target = LbTarget("http://127.0.0.1:9", KEY)  # discard port: nothing listens
    async with _client(lb_max_retries=1) as client:
        outcome = await client.create_batch(target, file_name="f", import_process_id=1, rows=ROWS)
    assert not outcome.ok and outcome.status is None and outcome.attempts == 2
    assert "Could not reach LB" in outcome.message
    assert outcome.unanswered == 0 and not outcome.resent  # nothing went out: no possible duplicate


@pytest.mark.parametrize("fault", ["timeout", "drop"])
async def test_stored_but_unanswered_then_resent_is_reported(lb: FakeLB, fault: str) -> None:
    if fault == "timeout":
        lb.store_then_time_out(1, hold_s=3.0)
    else:
        lb.store_then_drop(1)
    async with _client(lb_total_timeout_s=0.5) as client:
        outcome = await client.create_batch(_target(lb), file_name="f", import_process_id=1, rows=ROWS)
    assert outcome.ok and outcome.attempts == 2
    assert outcome.unanswered == 1 and outcome.resent  # LB holds the rows twice, and the caller knows
    assert len(lb.accepted) == 2 and lb.accepted[0].file_name == lb.accepted[1].file_name == "f"


async def test_a_hang_before_reading_is_still_a_possible_duplicate(lb: FakeLB) -> None:
    """The client cannot tell a request held unread from one stored: it must assume the worst."""
    lb.behaviour.hang = True
    async with _client(lb_total_timeout_s=0.3, lb_max_retries=0) as client:
        outcome = await client.create_batch(_target(lb), file_name="f", import_process_id=1, rows=ROWS)
    assert not outcome.ok and outcome.unanswered == 1 and not outcome.resent


async def test_key_never_logged_nor_in_messages(lb: FakeLB, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    lb.fail(502, times=-1, message="bad gateway")
    async with _client(lb_max_retries=2) as client:
        outcome = await client.create_batch(_target(lb), file_name="f", import_process_id=1, rows=ROWS)
    assert KEY not in caplog.text and KEY not in outcome.message and KEY not in repr(_target(lb))
    assert "retry" in caplog.text  # the retries were logged, without the key


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"WORKFLOW_IMPORT_QUEUE_BATCH_ID": 42}, "42"),
        ({"queueBatchId": "abc"}, "abc"),
        ({"batchid": "x1"}, "x1"),
        ({"somethingElse": 1}, None),
    ],
)
async def test_batch_id_read_from_any_known_field(answer: dict, expected: str | None) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/API/WorkflowImportQueue/CreateBatch", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with _client() as client:
            outcome = await client.create_batch(LbTarget(f"http://127.0.0.1:{port}", KEY), file_name="f", import_process_id=1, rows=ROWS)
        assert outcome.ok and outcome.batch_id == expected
    finally:
        await runner.cleanup()


async def test_stand_in_enforces_the_vendor_rules(lb: FakeLB) -> None:
    async with _client() as client:
        bad_path = LbTarget(lb.base_url, KEY, creation_path="lower-case")
        outcome = await client.create_batch(bad_path, file_name="f", import_process_id=1, rows=ROWS)
        assert outcome.status == 400 and "creationPath" in outcome.message
        outcome = await client.create_batch(_target(lb), file_name="f", import_process_id=0, rows=ROWS)
        assert outcome.status == 400 and "importProcessId" in outcome.message
        outcome = await client.create_batch(_target(lb), file_name="f", import_process_id=1, rows=["[1,2]"])
        assert outcome.status == 400 and "not a JSON object" in outcome.message
