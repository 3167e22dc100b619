"""Event subscriptions (system key): /api/programs/{programId}/eventSubs[/{publisherProgramId}].

Every call, reads included, is a command keyed by the subscriber on the
subscriptions command topic; the subscriptions agent answers (and is the
only writer of the table). ``PATCH LastSyncUtc`` is then also a cursor
command to the sync agent, same key. See docs/subscriptions.md.
"""

from __future__ import annotations

import asyncio
import uuid
from functools import partial
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ValidationError

from api.auth import require_system
from api.bodies import read_json, validation_problem
from api.errors import ApiError
from api.openapi import NO_WORKER, Operation, Param
from api.preview import check_on_latest, flag
from api.programs import SUBSCRIPTION_REFS, program_id_from
from api.state import POOL, SETTINGS
from api.workers import ask
from hub_stream.subscriptions.records import patched_template
from schemas.common import PROGRAM_ID_SCHEMA
from schemas.subscriptions import (
    READ_ONLY_FIELDS,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionPatch,
)
from schemas.timefmt import format_utc, utc_now


async def _registered(pool: asyncpg.Pool, program_ids: set[str]) -> set[str]:
    rows = await pool.fetch("SELECT program_id FROM programs WHERE program_id = ANY($1::text[])", sorted(program_ids))
    return {row["program_id"] for row in rows}


async def _body(request: web.Request, model: type[BaseModel], read_only: tuple[str, ...]) -> Any:
    doc = await read_json(request)
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_body", "The request body must be a JSON object.")
    fixed = [name for name in read_only if name in doc]
    if fixed:
        raise ApiError(
            400,
            "read_only_fields",
            f"{', '.join(fixed)} cannot be set here: the hub sets them (ProgramId and PublisherProgramId come from the path).",
            {"read_only_fields": fixed},
        )
    if "SynEnabled" in doc and "SyncEnabled" in doc:
        raise ApiError(
            400,
            "conflicting_fields",
            "Send SyncEnabled or its alias SynEnabled, not both.",
            {"fields": ["SyncEnabled", "SynEnabled"]},
        )
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def _path(request: web.Request) -> tuple[str, str | None]:
    program_id = program_id_from(request.match_info["programId"])
    publisher = request.match_info.get("publisherProgramId")
    return program_id, (program_id_from(publisher) if publisher is not None else None)


async def list_subscriptions(request: web.Request) -> web.Response:
    require_system(request)
    program_id, _ = _path(request)
    if not await _registered(request.app[POOL], {program_id}):
        raise ApiError(404, "unknown_program", f"Program {program_id!r} is not registered.", {"ProgramId": program_id})
    reply = await ask(request.app, "subscriptions.commands", program_id, "list")
    return web.json_response(reply.body)


async def get_subscription(request: web.Request) -> web.Response:
    require_system(request)
    program_id, publisher = _path(request)
    reply = await ask(request.app, "subscriptions.commands", program_id, "get", {"PublisherProgramId": publisher})
    return web.json_response(reply.body)


async def create_subscription(request: web.Request) -> web.Response:
    require_system(request)
    program_id, _ = _path(request)
    body: SubscriptionCreate = await _body(request, SubscriptionCreate, ("ProgramId", "CreatedUtc", "UpdatedUtc"))
    publisher = body.PublisherProgramId
    if publisher == program_id:
        raise ApiError(
            422,
            "self_subscription",
            f"Program {program_id!r} cannot subscribe to its own events.",
            {"ProgramId": program_id, "PublisherProgramId": publisher},
        )
    missing = sorted({program_id, publisher} - await _registered(request.app[POOL], {program_id, publisher}))
    if missing:
        raise ApiError(
            422,
            "unknown_program",
            f"Not registered: {', '.join(repr(m) for m in missing)}; register both programs first.",
            {"ProgramIds": missing},
        )
    if not flag(request, "force"):
        await check_on_latest(request.app, publisher, body.LbApiPayloadTemplate, body.ImportProcessId)
    command = body.model_dump()
    command["At"] = format_utc(utc_now())
    await ask(request.app, "subscriptions.commands", program_id, "create", command, command_id=uuid.uuid4().hex)
    return web.Response(status=201, headers={"Location": f"/api/programs/{program_id}/eventSubs/{publisher}"})


async def patch_subscription(request: web.Request) -> web.Response:
    require_system(request)
    program_id, publisher = _path(request)
    body: SubscriptionPatch = await _body(request, SubscriptionPatch, READ_ONLY_FIELDS)
    changes = body.changes()
    if not changes:
        raise ApiError(
            400,
            "empty_patch",
            "The body changes nothing; send any of LastSyncUtc, SyncEnabled, LbApiPayloadTemplate, ImportProcessId, OnRenderError.",
        )
    force = flag(request, "force")
    if not force and ("LbApiPayloadTemplate" in changes or "ImportProcessId" in changes):
        old = (await ask(request.app, "subscriptions.commands", program_id, "get", {"PublisherProgramId": publisher})).body
        template, ipid = patched_template(old["LbApiPayloadTemplate"], old["ImportProcessId"], changes)
        await check_on_latest(request.app, str(publisher), template, ipid)
    command_id = uuid.uuid4().hex
    command = {"PublisherProgramId": publisher, "Changes": changes, "At": format_utc(utc_now())}
    reply = await ask(request.app, "subscriptions.commands", program_id, "patch", command, command_id=command_id)
    if "LastSyncUtc" in changes:
        # The cursor is the sync agent's: same key, so same partition number and worker.
        cursor = {
            "PublisherProgramId": publisher,
            "SubscriptionId": reply.body["SubscriptionId"],
            "LastSyncUtc": changes["LastSyncUtc"],
        }
        await ask(request.app, "sync.requests", program_id, "set_cursor", cursor, command_id=f"{command_id}:cursor")
    return web.Response(status=204)


async def delete_subscription(request: web.Request) -> web.Response:
    require_system(request)
    program_id, publisher = _path(request)
    command = {"PublisherProgramId": publisher, "At": format_utc(utc_now())}
    await ask(request.app, "subscriptions.commands", program_id, "delete", command, command_id=uuid.uuid4().hex)
    return web.Response(status=204)


async def subscription_refs(app: web.Application, program_id: str) -> list[str]:
    """Subscriptions naming ``program_id`` as subscriber or as publisher, as ``SUB<-PUB``.

    As subscriber: one ``list`` request on its key. As publisher: any
    subscriber may name it, so one ``find_by_publisher`` request goes to each
    partition of the command topic. Raises ApiError 503 when workers do not answer.
    """
    partitions = app[SETTINGS].subscriber_partitions
    mine = ask(app, "subscriptions.commands", program_id, "list")
    theirs = [
        ask(app, "subscriptions.commands", program_id, "find_by_publisher", {"PublisherProgramId": program_id}, partition=p)
        for p in range(partitions)
    ]
    replies = await asyncio.gather(mine, *theirs)
    names = {f"{program_id}<-{s['PublisherProgramId']}" for s in replies[0].body}
    for reply in replies[1:]:
        names.update(reply.body)
    return sorted(names)


def install_subscription_refs(app: web.Application) -> None:
    """Make DELETE /api/programs ask the workers (``subscription_refs``) before deleting."""
    app[SUBSCRIPTION_REFS] = partial(subscription_refs, app)


def setup(app: web.Application) -> None:
    """Add the subscription routes; DELETE /api/programs then asks the workers for references."""
    install_subscription_refs(app)
    base = "/api/programs/{programId}/eventSubs"
    app.router.add_get(base, list_subscriptions)
    app.router.add_post(base, create_subscription)
    app.router.add_get(base + "/{publisherProgramId}", get_subscription)
    app.router.add_patch(base + "/{publisherProgramId}", patch_subscription)
    app.router.add_delete(base + "/{publisherProgramId}", delete_subscription)


_PROGRAM = Param("programId", "path", "the subscriber: 1-25 of A-Z a-z 0-9 _ - .", schema=PROGRAM_ID_SCHEMA)
_PUBLISHER = Param("publisherProgramId", "path", "the publisher: 1-25 of A-Z a-z 0-9 _ - .", schema=PROGRAM_ID_SCHEMA)
_FORCE = Param("force", "query", "true: save even when the template fails on the publisher's latest live event", type="boolean")
_BASE = "/api/programs/{programId}/eventSubs"
_ONE = _BASE + "/{publisherProgramId}"
OPERATIONS = [
    Operation(
        "GET",
        _BASE,
        "The subscriber's event subscriptions, sorted by PublisherProgramId (system key).",
        {200: ("The subscriptions (empty array if none).", SubscriptionOut), 400: ("Invalid program id.", None), 404: ("The program is not registered (unknown_program).", None), NO_WORKER[0]: NO_WORKER[1]},
        params=(_PROGRAM,),
        list_response=frozenset({200}),
        tag="subscriptions",
    ),
    Operation(
        "POST",
        _BASE,
        "Subscribe the program to a publisher's events (system key). 201 with Location, no body.",
        {
            201: ("Created; Location names the new subscription.", None),
            409: ("The subscription exists (subscription_exists).", None),
            422: (
                (
                    "unknown_program (either side), self_subscription, invalid_template (details: entry, line, column, reason),"
                    " or template_fails_on_latest_event (details: EventId, EntryKey, Error) unless force=true."
                ),
                None,
            ),
            NO_WORKER[0]: NO_WORKER[1],
        },
        body=SubscriptionCreate,
        params=(_PROGRAM, _FORCE),
        tag="subscriptions",
    ),
    Operation(
        "GET",
        _ONE,
        "One subscription (system key).",
        {200: ("The subscription.", SubscriptionOut), 400: ("Invalid program id.", None), 404: ("No such subscription (subscription_not_found).", None), NO_WORKER[0]: NO_WORKER[1]},
        params=(_PROGRAM, _PUBLISHER),
        tag="subscriptions",
    ),
    Operation(
        "PATCH",
        _ONE,
        "Change SyncEnabled, LbApiPayloadTemplate, ImportProcessId, OnRenderError, or move the cursor with LastSyncUtc (system key).",
        {
            204: ("Changed.", None),
            400: ("Invalid id or body, or a read-only field (read_only_fields).", None),
            404: ("No such subscription (subscription_not_found).", None),
            422: ("invalid_template (details: entry, line, column, reason), or template_fails_on_latest_event unless force=true.", None),
            NO_WORKER[0]: NO_WORKER[1],
        },
        body=SubscriptionPatch,
        params=(_PROGRAM, _PUBLISHER, _FORCE),
        tag="subscriptions",
    ),
    Operation(
        "DELETE",
        _ONE,
        "Delete a subscription (system key).",
        {204: ("Deleted.", None), 400: ("Invalid program id.", None), 404: ("No such subscription (subscription_not_found).", None), NO_WORKER[0]: NO_WORKER[1]},
        params=(_PROGRAM, _PUBLISHER),
        tag="subscriptions",
    ),
]
