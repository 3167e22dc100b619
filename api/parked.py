"""Parked events of a subscription (system key): list, queue for redelivery, drop.

/api/programs/{programId}/eventSubs/{publisherProgramId}/parked[...]. The
parked events live in the sync cursors (hub_stream.sync.parking), so every
call, the list included, is a request to the sync agent keyed by the
subscriber. A drop is recorded in the ledger (``parked_drops``).
"""

from __future__ import annotations

from aiohttp import web

from api.auth import require_system
from api.bodies import read_model
from api.errors import ApiError
from api.openapi import NO_WORKER, Operation, Param
from api.programs import program_id_from
from api.state import POOL
from api.workers import ask
from hub_stream.sync import ledger
from hub_stream.sync.parking import DEFAULT_PAGE, MAX_PAGE
from schemas.common import EVENT_ID_SCHEMA, PROGRAM_ID_SCHEMA
from schemas.parked import ParkedPage, RedeliverIn, RedeliverOut
from schemas.timefmt import utc_now

_BASE = "/api/programs/{programId}/eventSubs/{publisherProgramId}/parked"


def _path(request: web.Request) -> tuple[str, str]:
    return program_id_from(request.match_info["programId"]), program_id_from(request.match_info["publisherProgramId"])


def _page_query(request: web.Request) -> tuple[int, int | None]:
    problems: dict[str, str] = {}
    limit, after = DEFAULT_PAGE, None
    raw = request.query.get("limit")
    if raw is not None:
        if raw.isdigit() and 1 <= int(raw) <= MAX_PAGE:
            limit = int(raw)
        else:
            problems["limit"] = f"must be a whole number from 1 to {MAX_PAGE}"
    token = request.query.get("pageToken")
    if token is not None:
        if token.isdigit():
            after = int(token)
        else:
            problems["pageToken"] = "must be the NextPageToken of the previous page"
    if problems:
        raise ApiError(400, "invalid_query", "; ".join(f"{k} {v}" for k, v in problems.items()), problems)
    return limit, after


async def list_parked(request: web.Request) -> web.Response:
    require_system(request)
    program_id, publisher = _path(request)
    limit, after = _page_query(request)
    body = {"PublisherProgramId": publisher, "Limit": limit, "After": after}
    reply = await ask(request.app, "sync.requests", program_id, "list_parked", body)
    return web.json_response(reply.body)


async def redeliver_parked(request: web.Request) -> web.Response:
    require_system(request)
    program_id, publisher = _path(request)
    event_ids = None
    if (await request.read()).strip():  # the body is optional: none means every parked event
        event_ids = (await read_model(request, RedeliverIn)).EventIds
    body = {"PublisherProgramId": publisher, "EventIds": event_ids}
    reply = await ask(request.app, "sync.requests", program_id, "redeliver_parked", body)
    return web.json_response(reply.body)


async def drop_parked(request: web.Request) -> web.Response:
    grants = require_system(request)
    program_id, publisher = _path(request)
    event_id = request.match_info["eventId"]
    body = {"PublisherProgramId": publisher, "EventId": event_id}
    reply = await ask(request.app, "sync.requests", program_id, "drop_parked", body)
    await ledger.record_parked_drop(request.app[POOL], program_id, publisher, reply.body, when=utc_now(), by=grants.user_id)
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_get(_BASE, list_parked)
    app.router.add_post(_BASE + "/redeliver", redeliver_parked)
    # Only an EventId (E:...) names a parked event: .../parked/redeliver is another resource (POST only).
    app.router.add_delete(_BASE + "/{eventId:E:[^/]+}", drop_parked)


_PROGRAM = Param("programId", "path", "the subscriber: 1-25 of A-Z a-z 0-9 _ - .", schema=PROGRAM_ID_SCHEMA)
_PUBLISHER = Param("publisherProgramId", "path", "the publisher: 1-25 of A-Z a-z 0-9 _ - .", schema=PROGRAM_ID_SCHEMA)
_NO_SUB = (404, ("No such subscription (subscription_not_found).", None))
OPERATIONS = [
    Operation(
        "GET",
        _BASE,
        "Events parked for this subscription (OnRenderError park), oldest first, paged (system key).",
        {200: ("One page.", ParkedPage), 400: ("Invalid id, limit or pageToken (invalid_query).", None), _NO_SUB[0]: _NO_SUB[1], NO_WORKER[0]: NO_WORKER[1]},
        params=(
            _PROGRAM,
            _PUBLISHER,
            Param(
                "limit",
                "query",
                f"events per page, 1-{MAX_PAGE} (default {DEFAULT_PAGE})",
                schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
            ),
            Param("pageToken", "query", "NextPageToken of the previous page"),
        ),
        tag="subscriptions",
    ),
    Operation(
        "POST",
        _BASE + "/redeliver",
        "Queue parked events for the next sync, which renders them with the current template and sends those that"
        " now render, in their original order, before the new events; those failing again stay parked (system key).",
        {200: ("Queued.", RedeliverOut), 400: ("Invalid id or body.", None), _NO_SUB[0]: _NO_SUB[1], NO_WORKER[0]: NO_WORKER[1]},
        body=RedeliverIn,
        body_required=False,
        params=(_PROGRAM, _PUBLISHER),
        tag="subscriptions",
    ),
    Operation(
        "DELETE",
        _BASE + "/{eventId}",
        "Drop one parked event: it is never delivered; the drop is recorded in the ledger (system key).",
        {
            204: ("Dropped.", None),
            400: ("Invalid program id.", None),
            404: ("No such subscription, or the event is not parked (parked_event_not_found).", None),
            NO_WORKER[0]: NO_WORKER[1],
        },
        params=(_PROGRAM, _PUBLISHER, Param("eventId", "path", "the parked event's EventId", schema=EVENT_ID_SCHEMA)),
        tag="subscriptions",
    ),
]
