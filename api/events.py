"""Events (publishers): POST /api/events, DELETE /api/events/{EventId}, GET /api/events/{programId}.

Publishing and deleting are requests to the intake agent on the incoming
topic, keyed by the publisher (hub_stream.platform.request_reply); the agent deduplicates,
appends to hub.events and answers. Listing reads hub.events directly (a log
anyone may read) and asks the intake agent which of the events read are
deleted. GET and DELETE have one path shape, two names: ``{programId}`` to
list, ``{eventId}`` to delete; an id with a ``:`` is an EventId, never a
program id, so the two resources are disjoint (GET of an EventId or DELETE of
an id without ``:`` is 405). See docs/events.md.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from aiokafka import TopicPartition

from api.auth import require_read, require_write
from api.bodies import read_json
from api.errors import OUTCOME_UNKNOWN, ApiError
from api.openapi import NO_WORKER, Operation, Param
from api.programs import program_id_from
from api.state import POOL, SETTINGS
from api.workers import ask
from hub_stream.access.programs import PublisherRegistry, registered_programs
from hub_stream.events.intake_rules import (
    InvalidEvent,
    Rejection,
    ensure_fits,
    not_found,
    publisher_of,
    unknown_program,
    validate_event,
)
from hub_stream.events.listing import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    BadQuery,
    EventQuery,
    decode_page_token,
    encode_page_token,
    scan_page,
)
from hub_stream.events.log import EventLogReader, offset_at_time
from hub_stream.events.records import partition_for
from hub_stream.platform.db import DB_COMMAND_TIMEOUT_S
from schemas.common import EVENT_ID_SCHEMA, PROGRAM_ID_SCHEMA, TIMESTAMP_SCHEMA
from schemas.events import EventCreated, EventIn, EventPage
from schemas.timefmt import parse_utc

INCOMING = "events.incoming"
PUBLISH_OUTCOME_UNKNOWN = (
    "The event may or may not have been stored: publish the same event again (same PublisherEventId"
    " and content) to learn its EventId; that is safe and never stores it twice."
)
QUERY_PARAMS = ("createdAfter", "createdBefore", "eventType", "limit", "pageToken")


REGISTERED = web.AppKey("registered_publishers", PublisherRegistry)
"""Which publishers are registered: a yes remembered for 10 s, a no never (docs/events.md)."""


async def publish_event(request: web.Request) -> web.Response:
    doc = await read_json(request)
    try:
        event = ensure_fits(validate_event(doc))
    except InvalidEvent as exc:
        raise ApiError(400, exc.code, f"The event is invalid: {exc}.", exc.details()) from None
    except Rejection as exc:
        raise ApiError(413, exc.code, exc.message, exc.details) from None
    require_write(request, event.publisher)
    if event.publisher not in await request.app[REGISTERED].registered({event.publisher}):
        unknown = unknown_program(event.publisher)
        raise ApiError(422, unknown.code, unknown.message, unknown.details)
    # The worker validates the same body again: one decision path for HTTP and stream publishers.
    request[OUTCOME_UNKNOWN] = PUBLISH_OUTCOME_UNKNOWN
    reply = await ask(request.app, INCOMING, event.publisher, "publish", doc, command_id=uuid.uuid4().hex)
    event_id = str(reply.body["EventId"])
    return web.json_response(
        {"EventId": event_id}, status=reply.status, headers={"Location": f"/api/events/{event_id}"}
    )


async def delete_event(request: web.Request) -> web.Response:
    event_id = request.match_info["eventId"]
    publisher = publisher_of(event_id)
    if publisher is None:
        body = not_found(event_id)
        raise ApiError(404, body["error"], body["message"], body["details"])
    require_write(request, publisher)
    await ask(request.app, INCOMING, publisher, "delete", {"EventId": event_id}, command_id=uuid.uuid4().hex)
    return web.Response(status=204)


def _query(program_id: str, params: Any) -> EventQuery:
    """The listing's filters from the query string; BadQuery naming every bad parameter."""
    problems: dict[str, str] = {}
    unknown = sorted(set(params) - set(QUERY_PARAMS))
    for name in unknown:
        problems[name] = f"unknown parameter; use {', '.join(QUERY_PARAMS)}"
    for name in QUERY_PARAMS:
        if len(params.getall(name, [])) > 1:
            problems[name] = "given more than once"
    times = {}
    for name in ("createdAfter", "createdBefore"):
        if name in params:
            try:
                times[name] = parse_utc(params[name])
            except (ValueError, OverflowError):
                problems[name] = f"not an ISO 8601 timestamp: {params[name][:60]!r}"
    event_type = params.get("eventType")
    if event_type is not None and not 1 <= len(event_type) <= 50:
        problems["eventType"] = "must be 1-50 characters"
    limit = DEFAULT_LIMIT
    if "limit" in params:
        raw = params["limit"]
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
            problems["limit"] = f"must be a whole number from 1 to {MAX_LIMIT}"
        else:
            limit = int(raw)
    if problems:
        raise BadQuery(problems)
    return EventQuery(program_id, times.get("createdAfter"), times.get("createdBefore"), event_type, limit)


def _bad_query(exc: BadQuery) -> ApiError:
    return ApiError(400, "invalid_query", f"The query is invalid: {exc}.", {"parameters": exc.problems})


async def list_events(request: web.Request) -> web.Response:
    program_id = program_id_from(request.match_info["programId"])
    require_read(request, program_id)
    try:
        query = _query(program_id, request.query)
        token = request.query.get("pageToken")
        start = decode_page_token(token, query) if token is not None else None
    except BadQuery as exc:
        raise _bad_query(exc) from None
    settings = request.app[SETTINGS]
    tp = TopicPartition(settings.topic("events"), partition_for(program_id, settings.events_partitions))

    async def deleted_of(event_ids: list[str]) -> set[str]:
        reply = await ask(request.app, INCOMING, program_id, "deleted", {"EventIds": event_ids})
        return set(reply.body.get("Deleted") or [])

    async with EventLogReader(settings.kafka_bootstrap or "", fetch_max_wait_ms=settings.fetch_max_wait_ms) as reader:
        begin, end = await reader.bounds(tp)
        if start is None:
            after = query.after_ms()
            # Exclusive: the first record at or after the next millisecond.
            start = begin if after is None else await offset_at_time(settings.kafka_bootstrap or "", tp, after + 1)
        page = await scan_page(reader.records(tp, max(start, begin), end), query, deleted_of)
    token_out = encode_page_token(query, page.next_offset) if page.next_offset is not None else None
    return web.json_response({"Events": page.events, "NextPageToken": token_out})


def setup(app: web.Application) -> None:
    """Add the event routes: GET /api/events/{programId}, DELETE /api/events/{eventId}."""
    async def registered(program_ids: list[str]) -> set[str]:
        return await registered_programs(app[POOL], program_ids)

    # One attempt, bounded by the pool's own command timeout: a failure is this request's 500.
    app[REGISTERED] = PublisherRegistry(registered, budget_s=0.0, attempt_s=DB_COMMAND_TIMEOUT_S)
    app.router.add_post("/api/events", publish_event)
    # Disjoint by the ``:`` (a program id has none, an EventId always has one): each URL
    # is one resource of the document, so a 405's Allow names exactly its methods.
    app.router.add_get("/api/events/{programId:[^/:]+}", list_events)
    app.router.add_delete("/api/events/{eventId:[^/]*:[^/]*}", delete_event)


_PROGRAM = Param("programId", "path", "the publisher's programId (1-25 of A-Z a-z 0-9 _ - .)", schema=PROGRAM_ID_SCHEMA)
_EVENT = Param("eventId", "path", "an EventId (E:{programId}-{uuid4})", schema=EVENT_ID_SCHEMA)
_LIST_PARAMS = (
    _PROGRAM,
    Param("createdAfter", "query", "ISO 8601; only events created strictly after it", schema=TIMESTAMP_SCHEMA),
    Param("createdBefore", "query", "ISO 8601; only events created strictly before it", schema=TIMESTAMP_SCHEMA),
    Param("eventType", "query", "only events of this EventType (exact match)", schema={"type": "string", "minLength": 1, "maxLength": 50}),
    Param(
        "limit",
        "query",
        f"events per page, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})",
        schema={"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    ),
    Param("pageToken", "query", "NextPageToken of the previous page, with the same filters"),
)
OPERATIONS = [
    Operation(
        "POST",
        "/api/events",
        "Publish an event (write on PublisherProgramId). 201 new, with Location; 200 the same event again.",
        {
            201: ("Published; Location: /api/events/{EventId}.", EventCreated),
            200: ("The same PublisherEventId with the same content was published before: its EventId.", EventCreated),
            400: ("Invalid body: details.errors has one entry per field (invalid_json, invalid_event, unknown_fields).", None),
            409: ("duplicate_publisher_event_id (other content), or publisher_event_deleted.", None),
            413: ("The body is over 1 MiB, or the event over 999,800 bytes as JSON (event_too_large).", None),
            422: ("The publisher program is not registered (unknown_program).", None),
            503: (
                (
                    "No worker (or no broker) answered in time (unavailable, with Retry-After): the outcome"
                    " is unknown (details.outcome); publishing the same event again is safe."
                ),
                None,
            ),
        },
        body=EventIn,
        tag="events",
    ),
    Operation(
        "DELETE",
        "/api/events/{eventId}",
        "Delete an event (write on the program the EventId names): a deletion marker follows it on the stream.",
        {204: ("Deleted.", None), 404: ("Unknown, or already deleted (event_not_found).", None), NO_WORKER[0]: NO_WORKER[1]},
        params=(_EVENT,),
        tag="events",
    ),
    Operation(
        "GET",
        "/api/events/{programId}",
        "A publisher's events in publication order, deleted ones left out (read on programId).",
        {
            200: ("One page; NextPageToken is null on the last.", EventPage),
            400: ("Invalid program id (invalid_program_id), parameter or page token (invalid_query).", None),
            NO_WORKER[0]: NO_WORKER[1],
        },
        params=_LIST_PARAMS,
        tag="events",
    ),
]
