"""POST /api/processEvents (the nightly sync) and GET /api/programs/{programId}/syncs."""

from __future__ import annotations

import uuid

from aiohttp import web

from api.auth import require_read, require_write
from api.errors import ApiError
from api.openapi import Operation, Param
from api.preview import dry_run, flag
from api.programs import program_id_from, unknown_program
from api.state import POOL, RPC, SETTINGS
from hub_stream.access.programs import get_program
from hub_stream.platform.request_reply import RpcTimeout
from hub_stream.sync import ledger
from schemas.common import PROGRAM_ID_SCHEMA, Problem
from schemas.preview import SyncOrDryRunOut
from schemas.sync import SyncListOut, SyncProblem


async def process_events(request: web.Request) -> web.Response:
    """Run the sync of every SyncEnabled subscription of ``programId``; answer when done."""
    program_id = program_id_from(request.query.get("programId", ""))
    require_write(request, program_id)
    program = await get_program(request.app[POOL], program_id)
    if program is None:
        raise unknown_program(program_id)
    if flag(request, "dryRun"):
        return await dry_run(request, program_id)  # calls no LB: needs no LB connection
    if not program.lb_configured:
        raise ApiError(
            422,
            "program_not_configured",
            f"Program {program_id!r} has no LearningBuilder connection; set LbBaseUrl and LbApiKey first.",
            {"programId": program_id},
        )
    settings = request.app[SETTINGS]
    sync_id = f"S:{program_id}-{uuid.uuid4()}"
    try:
        reply = await request.app[RPC].request(
            settings.topic("sync.requests"),
            program_id,
            "sync",
            {"ProgramId": program_id, "SyncId": sync_id},
            timeout=settings.sync_timeout_s,
            command_id=sync_id,
        )
    except RpcTimeout:
        raise ApiError(
            504,
            "sync_timeout",
            f"The sync did not finish within {settings.sync_timeout_s:g} s; it goes on and is recorded"
            f" (GET /api/programs/{program_id}/syncs).",
            {"ProgramId": program_id, "SyncId": sync_id},
        ) from None
    return web.json_response(reply.body, status=reply.status)


async def list_syncs(request: web.Request) -> web.Response:
    """The program's recent syncs with their batches and LB's answers."""
    program_id = program_id_from(request.match_info["programId"])
    require_read(request, program_id)
    try:
        limit = int(request.query.get("limit", "20"))
        if not 1 <= limit <= 200:
            raise ValueError
    except ValueError:
        raise ApiError(400, "invalid_limit", "limit must be a whole number from 1 to 200.", {"limit": request.query.get("limit")}) from None
    pool = request.app[POOL]
    if await get_program(pool, program_id) is None:
        raise unknown_program(program_id)
    return web.json_response({"ProgramId": program_id, "Syncs": await ledger.recent_syncs(pool, program_id, limit=limit)})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/processEvents", process_events)
    app.router.add_get("/api/programs/{programId}/syncs", list_syncs)


_PROGRAM = Param("programId", "path", "the program", schema=PROGRAM_ID_SCHEMA)
_INTERRUPTED = (
    "The sync could not record its progress or was taken over too often (sync_interrupted),"
    " or could not read hub.events (events_unavailable): the whole sync answer; call again."
    " Or no worker or broker answered (unavailable: a plain problem, with Retry-After)."
)
_RENDER_FAILED = (
    "A template failed on an event (render_failed: the whole sync answer, details name the EventIds),"
    " or no LB connection (program_not_configured, a plain problem)."
)
_TIMED_OUT = (
    "The sync did not finish in time (sync_timeout); it goes on (a worker that stops hands it to the next)"
    " and is recorded: GET /api/programs/{programId}/syncs."
)
OPERATIONS = [
    Operation(
        "POST",
        "/api/processEvents",
        "Sync every SyncEnabled subscription of a program into its LearningBuilder (answers when done).",
        {
            200: ("Every subscription synced (or had nothing new); with dryRun=true the plan (DryRun: true, BatchId null, Sample rows).", SyncOrDryRunOut),
            400: ("programId is missing or invalid.", Problem),
            404: ("The program is not registered.", Problem),
            422: (_RENDER_FAILED, (SyncProblem, Problem)),
            409: ("A PATCH LastSyncUtc moved a cursor while the sync ran (cursor_moved; the whole sync answer); call again.", SyncProblem),
            502: ("LB refused or failed a batch (lb_rejected): the whole sync answer; details give LB's status per subscription.", SyncProblem),
            503: (_INTERRUPTED, (SyncProblem, Problem)),
            504: (_TIMED_OUT, None),
        },
        params=(
            Param("programId", "query", "the subscriber program to sync", required=True, schema=PROGRAM_ID_SCHEMA),
            Param("dryRun", "query", "true: plan only (same windows, routing, grouping, row cap); no LB call, cursor move or ledger write", type="boolean"),
        ),
        tag="sync",
    ),
    Operation(
        "GET",
        "/api/programs/{programId}/syncs",
        "Recent syncs of a program with their batches and LB's answers.",
        {200: ("The newest syncs first.", SyncListOut), 400: ("Invalid id or limit.", None), 404: ("Unknown program.", None)},
        params=(_PROGRAM, Param("limit", "query", "1-200, default 20", schema={"type": "integer", "minimum": 1, "maximum": 200})),
        tag="sync",
    ),
]
