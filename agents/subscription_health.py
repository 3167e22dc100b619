"""Per-subscription gauges for operators: pending records, last success, last status.

Every 15 s the worker takes the subscriptions it owns (its partitions of the
subscriptions table), their cursors, the log ends of hub.events and the sync
ledger in PostgreSQL, and replaces the snapshot that
``hub_stream.platform.metrics.SUBSCRIPTION_HEALTH`` serves. Read from the
ledger, the last status and last success survive a worker restart and follow
a program to the worker that owns it now.

Parked events (``OnRenderError: park``) are counted from the cursors, where
the sync agent keeps them (hub_stream.sync.parking).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import TopicPartition

from agents.tables import cursors_table, subscriptions_table
from hub_stream.events.records import partition_for
from hub_stream.platform import db
from hub_stream.platform.faust_app import HubApp
from hub_stream.platform.metrics import REGISTRY, SUBSCRIPTION_HEALTH, SubscriptionHealth
from hub_stream.platform.offsets import log_ends
from hub_stream.subscriptions.records import SubscriberRecord
from hub_stream.sync.cursors import SubscriberCursors

logger = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 15.0

LAST_SYNCS_SQL = """
SELECT DISTINCT ON (program_id) program_id, status, result
FROM syncs
WHERE program_id = ANY($1::text[]) AND status <> 'running'
ORDER BY program_id, started_utc DESC
"""
LAST_SUCCESSES_SQL = """
SELECT s.program_id, sub->>'PublisherProgramId' AS publisher, max(s.finished_utc) AS finished
FROM syncs s CROSS JOIN LATERAL jsonb_array_elements(s.result->'Subscriptions') AS sub
WHERE s.program_id = ANY($1::text[]) AND jsonb_typeof(s.result->'Subscriptions') = 'array'
  AND sub->>'Status' = 'ok'
GROUP BY 1, 2
"""


@dataclass(frozen=True)
class LastSync:
    """A program's last finished sync: its ledger status and its answer body."""

    status: str
    result: Any


def statuses_of(last: LastSync) -> dict[str, str]:
    """Publisher → outcome of that sync for it: "ok", its error code, or the sync's status."""
    result = last.result if isinstance(last.result, dict) else {}
    subs = result.get("Subscriptions")
    if not isinstance(subs, list):  # interrupted, or an answer without per-subscription results
        return {"*": last.status}
    codes = {
        d.get("PublisherProgramId"): d.get("Error")
        for d in ((result.get("details") or {}).get("Subscriptions") or [])
        if isinstance(d, dict)
    }
    out: dict[str, str] = {}
    for s in subs:
        if isinstance(s, dict) and isinstance(s.get("PublisherProgramId"), str):
            pub = s["PublisherProgramId"]
            out[pub] = "ok" if s.get("Status") == "ok" else str(codes.get(pub) or "failed")
    return out


def health_rows(
    subscribers: Mapping[str, SubscriberRecord],
    cursors: Mapping[str, SubscriberCursors],
    events_ends: Mapping[int, int],
    events_partitions: int,
    last_syncs: Mapping[str, LastSync],
    last_successes: Mapping[tuple[str, str], datetime],
) -> dict[tuple[str, str], SubscriptionHealth]:
    """The snapshot: one row per (subscriber, publisher) subscription."""
    rows: dict[tuple[str, str], SubscriptionHealth] = {}
    for program, record in subscribers.items():
        statuses = statuses_of(last_syncs[program]) if program in last_syncs else {}
        program_cursors = cursors.get(program, SubscriberCursors())
        for sub in record.sorted():
            cursor = program_cursors.cursor_of(sub)
            end = events_ends.get(partition_for(sub.publisher, events_partitions))
            pending = max(0, end - cursor.next_offset) if end is not None and cursor.next_offset is not None else None
            success = last_successes.get((program, sub.publisher))
            rows[(program, sub.publisher)] = SubscriptionHealth(
                pending_records=pending,
                last_success_unix=success.timestamp() if success is not None else None,
                last_status=statuses.get(sub.publisher, statuses.get("*")) if sub.sync_enabled else None,
                parked_events=len(cursor.parked),
            )
    return rows


async def read_ledger(
    pool: asyncpg.Pool, programs: Iterable[str]
) -> tuple[dict[str, LastSync], dict[tuple[str, str], datetime]]:
    ids = sorted(programs)
    last = {
        r["program_id"]: LastSync(r["status"], json.loads(r["result"]) if isinstance(r["result"], str) else r["result"])
        for r in await pool.fetch(LAST_SYNCS_SQL, ids)
    }
    successes = {(r["program_id"], r["publisher"]): r["finished"] for r in await pool.fetch(LAST_SUCCESSES_SQL, ids)}
    return last, successes


def register(app: HubApp) -> None:
    """Every 15 s, replace the hub_subscription_* snapshot with this worker's subscriptions."""
    REGISTRY.register(SUBSCRIPTION_HEALTH)
    subscriptions = subscriptions_table(app)
    cursors = cursors_table(app)
    settings = app.hub_settings
    events_topic = settings.topic("events")
    commands_topic = settings.topic("subscriptions.commands")  # keyed by subscriber, like the table
    pools: list[asyncpg.Pool] = []

    @app.timer(interval=HEALTH_INTERVAL_S)
    async def report_subscription_health() -> None:
        try:
            # The in-memory store keeps the values of partitions revoked from this
            # worker: only the subscribers of partitions it owns now are reported.
            owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == commands_topic}
            subscribers = {
                str(k): SubscriberRecord.from_json(v)
                for k, v in subscriptions.items()
                if partition_for(str(k), settings.subscriber_partitions) in owned
            }
            subscribers = {k: v for k, v in subscribers.items() if v.subscriptions}
            if not subscribers:
                SUBSCRIPTION_HEALTH.replace({})
                return
            if not pools:
                pools.append(await db.create_pool(settings.model_copy(update={"database_pool_max": 1})))
            last_syncs, successes = await read_ledger(pools[0], subscribers)
            wanted = {partition_for(s.publisher, settings.events_partitions) for r in subscribers.values() for s in r.sorted()}
            ends = await log_ends(settings.kafka_bootstrap or "", [TopicPartition(events_topic, p) for p in sorted(wanted)])
            program_cursors = {k: SubscriberCursors.from_json(cursors.get(k)) for k in subscribers}
            SUBSCRIPTION_HEALTH.replace(
                health_rows(
                    subscribers,
                    program_cursors,
                    {tp.partition: end for tp, end in ends.items()},
                    settings.events_partitions,
                    last_syncs,
                    successes,
                )
            )
        except Exception:  # a metric must never take the worker down
            logger.debug("subscription health not available", exc_info=True)

    async def close_pool(sender: Any = None, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        for pool in pools:
            await pool.close()

    app.on_before_shutdown.connect(close_pool)
