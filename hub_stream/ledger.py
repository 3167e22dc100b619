"""The sync ledger in PostgreSQL: one row per sync and one per CreateBatch call.

Written only by the sync agent; read by GET /api/programs/{programId}/syncs.
A batch row is written right after LB answers, before the next batch goes
out, so the ledger tells what LB accepted even when a worker dies mid-sync.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from schemas.timefmt import format_utc


async def start_sync(conn: asyncpg.Pool | asyncpg.Connection, sync_id: str, program_id: str, started: datetime) -> None:
    await conn.execute(
        "INSERT INTO syncs (sync_id, program_id, started_utc, status) VALUES ($1, $2, $3, 'running')"
        " ON CONFLICT (sync_id) DO NOTHING",
        sync_id,
        program_id,
        started,
    )


async def record_batch(
    conn: asyncpg.Pool | asyncpg.Connection,
    sync_id: str,
    *,
    publisher_program_id: str,
    import_process_id: int,
    row_count: int,
    first_offset: int,
    last_offset: int,
    status: str,
    lb_status: int | None,
    lb_message: str | None,
    batch_id: str | None,
    batch_url: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO sync_batches (sync_id, seq, publisher_program_id, import_process_id, row_count,"
        " first_offset, last_offset, status, lb_status, lb_message, batch_id, batch_url)"
        " VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM sync_batches WHERE sync_id = $1),"
        " $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        sync_id,
        publisher_program_id,
        import_process_id,
        row_count,
        first_offset,
        last_offset,
        status,
        lb_status,
        lb_message,
        batch_id,
        batch_url,
    )


async def finish_sync(
    conn: asyncpg.Pool | asyncpg.Connection,
    sync_id: str,
    *,
    finished: datetime,
    status: str,
    http_status: int,
    result: dict[str, Any],
) -> None:
    await conn.execute(
        "UPDATE syncs SET finished_utc = $2, status = $3, http_status = $4, result = $5::jsonb WHERE sync_id = $1",
        sync_id,
        finished,
        status,
        http_status,
        json.dumps(result),
    )


async def recent_syncs(conn: asyncpg.Pool | asyncpg.Connection, program_id: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest syncs of a program, each with its batches and LB's answers."""
    syncs = await conn.fetch(
        "SELECT sync_id, started_utc, finished_utc, status, http_status, result FROM syncs"
        " WHERE program_id = $1 ORDER BY started_utc DESC LIMIT $2",
        program_id,
        limit,
    )
    if not syncs:
        return []
    batches = await conn.fetch(
        "SELECT * FROM sync_batches WHERE sync_id = ANY($1::text[]) ORDER BY sync_id, seq",
        [s["sync_id"] for s in syncs],
    )
    by_sync: dict[str, list[dict[str, Any]]] = {}
    for b in batches:
        by_sync.setdefault(b["sync_id"], []).append(
            {
                "PublisherProgramId": b["publisher_program_id"],
                "ImportProcessId": b["import_process_id"],
                "Rows": b["row_count"],
                "Status": b["status"],
                "LbStatus": b["lb_status"],
                "LbMessage": b["lb_message"],
                "BatchId": b["batch_id"],
                "BatchUrl": b["batch_url"],
                "CreatedUtc": format_utc(b["created_utc"]),
            }
        )
    out = []
    for s in syncs:
        result = s["result"]
        if isinstance(result, str):
            result = json.loads(result)
        out.append(
            {
                "SyncId": s["sync_id"],
                "StartedUtc": format_utc(s["started_utc"]),
                "FinishedUtc": format_utc(s["finished_utc"]) if s["finished_utc"] else None,
                "Status": s["status"],
                "HttpStatus": s["http_status"],
                "Subscriptions": (result or {}).get("Subscriptions", []),
                "Batches": by_sync.get(s["sync_id"], []),
            }
        )
    return out
