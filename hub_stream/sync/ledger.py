"""The sync ledger in PostgreSQL: one row per sync and one per CreateBatch call.

Written only by the sync agent; read by GET /api/programs/{programId}/syncs.
A batch row is written ``sending`` before the CreateBatch call and gets LB's
answer right after it (after the cursor recorded an acceptance), so a worker
that dies mid-sync leaves a trace: the next sync of the program marks the
dead sync ``interrupted`` and settles each ``sending`` batch as ``accepted``
(the cursor had recorded it) or ``unanswered`` (sent again; LB may hold it
twice). A sync stopped on a worker is resumed by the next owner of its
request partition under the same SyncId: ``interrupted`` -> ``running``
again, with ``resumed`` counting the takeovers. Sync status: running | ok |
failed | interrupted. Batch status: sending | accepted | rejected | unanswered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from schemas.timefmt import format_utc, parse_utc


async def start_sync(conn: asyncpg.Pool | asyncpg.Connection, sync_id: str, program_id: str, started: datetime) -> bool:
    """Record a sync as ``running``; False when it was recorded before (a redelivered request)."""
    status = await conn.execute(
        "INSERT INTO syncs (sync_id, program_id, started_utc, status) VALUES ($1, $2, $3, 'running')"
        " ON CONFLICT (sync_id) DO NOTHING",
        sync_id,
        program_id,
        started,
    )
    return status.split()[-1] == "1"


@dataclass(frozen=True)
class RecordedSync:
    """A sync as the ledger has it, for a worker about to run (or resume) it."""

    status: str
    started_utc: datetime
    http_status: int | None
    result: dict[str, Any] | None
    resumed: int

    @property
    def finished(self) -> bool:
        return self.status in ("ok", "failed")


async def recorded_sync(conn: asyncpg.Pool | asyncpg.Connection, sync_id: str) -> RecordedSync | None:
    row = await conn.fetchrow("SELECT status, started_utc, http_status, result, resumed FROM syncs WHERE sync_id = $1", sync_id)
    if row is None:
        return None
    result = row["result"]
    return RecordedSync(row["status"], row["started_utc"], row["http_status"], json.loads(result) if isinstance(result, str) else result, row["resumed"])


async def resume_sync(conn: asyncpg.Pool | asyncpg.Connection, sync_id: str) -> None:
    """A worker takes over a sync another worker (or this one, earlier) stopped: ``running`` again."""
    await conn.execute(
        "UPDATE syncs SET status = 'running', finished_utc = NULL, resumed = resumed + 1 WHERE sync_id = $1", sync_id
    )


async def interrupt_sync(conn: asyncpg.Pool | asyncpg.Connection, sync_id: str, finished: datetime, token: str | None = None) -> None:
    """This worker stopped the sync (handover or shutdown): no worker runs it until the next owner resumes it.

    ``token``: the stopping run's claim; a run that lost the program's claim
    leaves the sync as the run that claimed it has it (it may run it now).
    """
    await conn.execute(
        "UPDATE syncs SET status = 'interrupted', finished_utc = $2 WHERE sync_id = $1 AND status = 'running'"
        " AND NOT EXISTS (SELECT 1 FROM sync_claims c WHERE c.program_id = syncs.program_id AND c.token <> $3)",
        sync_id,
        finished,
        token or "",
    )


@dataclass(frozen=True)
class RecordedBatch:
    """A batch an earlier run of the same sync sent (a resumed sync builds on them)."""

    seq: int
    publisher_program_id: str
    import_process_id: int
    row_count: int
    first_offset: int
    last_offset: int
    status: str
    lb_status: int | None
    batch_id: str | None
    batch_url: str | None
    file_name: str | None


async def sync_batches(conn: asyncpg.Pool | asyncpg.Connection, sync_id: str) -> list[RecordedBatch]:
    rows = await conn.fetch(
        "SELECT seq, publisher_program_id, import_process_id, row_count, first_offset, last_offset, status,"
        " lb_status, batch_id, batch_url, file_name FROM sync_batches WHERE sync_id = $1 ORDER BY seq",
        sync_id,
    )
    return [RecordedBatch(*row) for row in rows]


class SyncSuperseded(RuntimeError):
    """Another run of a sync of this program claimed it: this run must send nothing more."""


async def claim_program(conn: asyncpg.Pool | asyncpg.Connection, program_id: str, sync_id: str, token: str, now: datetime) -> None:
    """This run (``token``) now sends the program's batches; a run that held the claim before sends no more."""
    await conn.execute(
        "INSERT INTO sync_claims (program_id, token, sync_id, claimed_utc) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (program_id) DO UPDATE SET token = $2, sync_id = $3, claimed_utc = $4",
        program_id,
        token,
        sync_id,
        now,
    )


async def batch_sending(
    conn: asyncpg.Pool | asyncpg.Connection,
    sync_id: str,
    seq: int,
    *,
    publisher_program_id: str,
    import_process_id: int,
    row_count: int,
    first_offset: int,
    last_offset: int,
    file_name: str,
    claim: tuple[str, str] | None = None,
) -> None:
    """Record a batch about to go to LB (status ``sending``) as number ``seq`` of the sync.

    ``claim`` (program, token): written only while that run holds the
    program's claim (``claim_program``), else SyncSuperseded and nothing is
    written. The claim row is read ``FOR SHARE`` in the same statement, so a
    claim taken meanwhile waits for this row: the new run sees it ``sending``.
    """
    values = (sync_id, seq, publisher_program_id, import_process_id, row_count, first_offset, last_offset, file_name)
    columns = (
        "INSERT INTO sync_batches (sync_id, seq, publisher_program_id, import_process_id, row_count,"
        " first_offset, last_offset, status, file_name)"
    )
    if claim is None:
        await conn.execute(columns + " VALUES ($1, $2, $3, $4, $5, $6, $7, 'sending', $8)", *values)
        return
    status = await conn.execute(
        columns + " SELECT $1, $2, $3, $4, $5, $6, $7, 'sending', $8"
        " WHERE EXISTS (SELECT 1 FROM sync_claims WHERE program_id = $9 AND token = $10 FOR SHARE)",
        *values,
        *claim,
    )
    if status.split()[-1] != "1":
        raise SyncSuperseded(f"another run of a sync of {claim[0]!r} claimed the program; this run sends nothing more")


async def batch_answered(
    conn: asyncpg.Pool | asyncpg.Connection,
    sync_id: str,
    seq: int,
    *,
    status: str,
    lb_status: int | None,
    lb_message: str | None,
    batch_id: str | None,
    batch_url: str | None,
) -> None:
    """What LB answered to a batch: ``accepted`` or ``rejected``, its status, message and batch id."""
    await conn.execute(
        "UPDATE sync_batches SET status = $3, lb_status = $4, lb_message = $5, batch_id = $6, batch_url = $7"
        " WHERE sync_id = $1 AND seq = $2 AND status = 'sending'",
        sync_id,
        seq,
        status,
        lb_status,
        lb_message,
        batch_id,
        batch_url,
    )


@dataclass(frozen=True)
class UnsettledBatch:
    """A batch a sync that is no longer running sent without recording LB's answer."""

    sync_id: str
    seq: int
    publisher_program_id: str
    import_process_id: int
    first_offset: int
    last_offset: int
    row_count: int = 0
    file_name: str | None = None

    def settled_unanswered(self) -> RecordedBatch:
        """The batch as settled ``unanswered``: its rows are sent again, a counted resend under its file name."""
        return RecordedBatch(
            self.seq, self.publisher_program_id, self.import_process_id, self.row_count, self.first_offset,
            self.last_offset, "unanswered", None, None, None, self.file_name,
        )


async def unsettled_batches(
    conn: asyncpg.Pool | asyncpg.Connection, program_id: str, current_sync_id: str | None
) -> list[UnsettledBatch]:
    """Batches of the program still ``sending``, except the current sync's (None: all).

    Called by a sync of the program once it holds the program's claim
    (``claim_program``): no other run sends a batch of it then, so these
    were left by a worker that died, a sync that failed between sending a
    batch and recording LB's answer, or a run that lost the claim with a batch
    in flight. A redelivered sync request passes None: its own earlier
    batches are settled too.
    """
    rows = await conn.fetch(
        "SELECT b.sync_id, b.seq, b.publisher_program_id, b.import_process_id, b.first_offset, b.last_offset,"
        " b.row_count, b.file_name"
        " FROM sync_batches b JOIN syncs s USING (sync_id)"
        " WHERE s.program_id = $1 AND s.sync_id IS DISTINCT FROM $2 AND b.status = 'sending'"
        " ORDER BY s.started_utc, b.seq",
        program_id,
        current_sync_id,
    )
    return [UnsettledBatch(*row) for row in rows]


async def close_interrupted(
    conn: asyncpg.Pool | asyncpg.Connection,
    program_id: str,
    current_sync_id: str,
    *,
    finished: datetime,
    settled: Mapping[tuple[str, int], tuple[str, str]],
) -> int:
    """Mark the program's other ``running`` syncs ``interrupted``; settle their ``sending`` batches.

    ``settled`` maps (sync_id, seq) to (status, message). Returns how many syncs were closed.
    """
    for (sync_id, seq), (status, message) in settled.items():
        await conn.execute(
            "UPDATE sync_batches SET status = $3, lb_message = $4 WHERE sync_id = $1 AND seq = $2 AND status = 'sending'",
            sync_id,
            seq,
            status,
            message,
        )
    closed = await conn.execute(
        "UPDATE syncs SET status = 'interrupted', finished_utc = $3"
        " WHERE program_id = $1 AND status = 'running' AND sync_id <> $2",
        program_id,
        current_sync_id,
        finished,
    )
    return int(closed.split()[-1])


async def sync_progress(conn: asyncpg.Pool | asyncpg.Connection, sync_id: str, partial: dict[str, Any]) -> None:
    """What a running sync has completed so far (its finished subscriptions): a takeover keeps it."""
    await conn.execute("UPDATE syncs SET result = $2::jsonb WHERE sync_id = $1", sync_id, json.dumps(partial))


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
        "SELECT sync_id, started_utc, finished_utc, status, http_status, result, resumed FROM syncs"
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
                "Seq": b["seq"],
                "Status": b["status"],
                "LbStatus": b["lb_status"],
                "LbMessage": b["lb_message"],
                "BatchId": b["batch_id"],
                "BatchUrl": b["batch_url"],
                "FileName": b["file_name"],
                "FirstOffset": b["first_offset"],
                "LastOffset": b["last_offset"],
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
                "Resumed": s["resumed"],
                "Subscriptions": (result or {}).get("Subscriptions", []),
                "Batches": by_sync.get(s["sync_id"], []),
            }
        )
    return out


async def record_parked_drop(
    conn: asyncpg.Pool | asyncpg.Connection,
    program_id: str,
    publisher: str,
    dropped: Mapping[str, Any],
    *,
    when: datetime,
    by: str | None,
) -> None:
    """A parked event staff dropped (``dropped``: the parked event's JSON): it will never be delivered."""
    await conn.execute(
        "INSERT INTO parked_drops (program_id, publisher_program_id, event_id, event_offset, entry_key, reason,"
        " parked_utc, dropped_utc, dropped_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        program_id,
        publisher,
        dropped["EventId"],
        dropped["Offset"],
        dropped.get("EntryKey"),
        dropped["Reason"],
        parse_utc(dropped["ParkedUtc"]),
        when,
        by,
    )
