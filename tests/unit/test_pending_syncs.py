"""The pending-syncs table's bookkeeping (agents/pending_syncs.py), over a dict standing in for the Faust table."""

from __future__ import annotations

from typing import Any

from agents.pending_syncs import PendingSyncs
from hub_stream.platform.request_reply import Request
from hub_stream.sync.delivery import SubscriptionOutcome


def sync_request(program: str, sync_id: str, partition: int) -> Request:
    return Request(
        kind="sync",
        key=program,
        body={"ProgramId": program, "SyncId": sync_id},
        command_id=sync_id,
        reply_to="api-1",
        reply_partition=0,
        correlation_id=f"c-{sync_id}",
        partition=partition,
        offset=7,
    )


def test_a_recorded_sync_can_be_answered_by_any_worker_and_is_forgotten_once_done() -> None:
    table: dict[str, Any] = {}
    pending = PendingSyncs(table, topic=None)  # type: ignore[arg-type]
    first, second = sync_request("SUB", "S1", 2), sync_request("SUB", "S2", 2)
    pending.add(first)
    pending.add(second)
    pending.add(first)  # redelivered: recorded once
    pending.add(sync_request("OTHER", "S3", 1))
    assert [e.SyncId for e in pending.of("SUB")] == ["S1", "S2"]
    resumed = [e.request() for e in pending.owned({2})]
    assert [r.command_id for r in resumed] == ["S1", "S2"]
    # What the runner and the reply need, as the agent first saw it.
    assert (resumed[0].reply_to, resumed[0].reply_partition, resumed[0].correlation_id, resumed[0].partition) == ("api-1", 0, "c-S1", 2)
    assert resumed[0].body == {"ProgramId": "SUB", "SyncId": "S1"}
    pending.remove("SUB", "S1")
    pending.remove("SUB", "S1")  # a repeated sync_done changes nothing
    assert [e.SyncId for e in pending.owned({1, 2})] == ["S2", "S3"]
    pending.remove("SUB", "S2")
    assert "SUB" not in table


def test_an_outcome_survives_the_ledger_round_trip() -> None:
    outcome = SubscriptionOutcome("PUB", events=5, imported=4, ignored=1, resent=1)
    outcome.batches.append({"ImportProcessId": 3, "Rows": 4, "BatchId": "b1", "BatchUrl": None})
    assert SubscriptionOutcome.from_json(outcome.as_json()).as_json() == outcome.as_json()
