"""Seeing before sending (docs/subscriptions.md "Preview", docs/sync.md "Dry run").

- ``POST /api/programs/{programId}/eventSubs/{pub}/preview`` (system key):
  a template (the body's, else the stored one) rendered against given
  events or the publisher's latest live ones; nothing sent or stored.
- ``check_on_latest``: the save-time check of POST/PATCH eventSubs.
- ``dry_run``: ``processEvents?dryRun=true``, the plan of the real sync.

The API reads hub.events itself (as the events listing does) and asks the
workers only for what they own: the stored subscription and the cursors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from aiokafka.errors import KafkaError

from api.auth import require_system
from api.bodies import read_model
from api.errors import ApiError
from api.openapi import Operation, Param
from api.programs import program_id_from
from api.state import EVENT_READERS, POOL, SETTINGS
from api.workers import ask
from hub_stream.access.programs import Program, get_program
from hub_stream.events.intake_rules import InvalidEvent, validate_event
from hub_stream.events.log import EventLogError, KafkaEventSource
from hub_stream.subscriptions.records import template_problem
from hub_stream.sync.cursors import SyncCursor
from hub_stream.sync.delivery import SubscriptionOutcome, SyncJob
from hub_stream.sync.dry_run import dry_run_answer, plan_subscription
from hub_stream.sync.preview import (
    DEFAULT_LATEST,
    first_failure,
    latest_live_events,
    preview,
    registration_floor,
)
from hub_stream.templating import PayloadTemplate, PayloadTemplateError, parse_payload_template
from schemas.common import PROGRAM_ID_SCHEMA
from schemas.preview import PreviewIn, PreviewOut
from schemas.timefmt import format_utc, utc_now

RETRY_AFTER_S = "5"


def flag(request: web.Request, name: str) -> bool:
    """A true/false query parameter (absent: false); 400 ``invalid_query`` for anything else."""
    raw = request.query.getall(name, [])
    if not raw:
        return False
    if len(raw) == 1 and raw[0].lower() in ("true", "false"):
        return raw[0].lower() == "true"
    raise ApiError(400, "invalid_query", f"{name} must be given once, as true or false.", {"parameters": {name: "true or false"}})


def _unavailable(what: str, exc: Exception) -> ApiError:
    return ApiError(
        503,
        "unavailable",
        f"{what} could not be read ({type(exc).__name__}); try again shortly.",
        {"dependency": "broker"},
        headers={"Retry-After": RETRY_AFTER_S},
    )


def _template(value: Any, import_process_id: int | None) -> PayloadTemplate:
    """The compiled template, or 422 ``invalid_template`` exactly as POST answers it."""
    bad = template_problem(value, import_process_id)
    if value is None and bad is None:
        bad = {
            "error": "invalid_template",
            "message": "There is no LbApiPayloadTemplate to preview; send one in the body.",
            "details": {"field": "LbApiPayloadTemplate", "entry": None, "line": None, "column": None, "reason": "missing"},
        }
    if bad is not None:
        raise ApiError(422, bad["error"], bad["message"], bad["details"])
    return parse_payload_template(value, import_process_id=import_process_id)


async def latest_events(app: web.Application, publisher: Program, count: int) -> list[dict[str, Any]]:
    """The publisher's newest ``count`` live events, oldest first; 503 when hub.events does not answer."""
    source = KafkaEventSource(app[SETTINGS], consumers=app[EVENT_READERS])
    floor = registration_floor(source, publisher.program_id, publisher.created_utc)
    try:
        return await latest_live_events(source, publisher.program_id, count, floor=floor)
    except (EventLogError, KafkaError, OSError) as exc:
        raise _unavailable("hub.events", exc) from None


def _given_events(publisher: str, docs: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    """Body events checked as POST /api/events checks them, as envelopes without an EventId.

    A well-formed event of another publisher is 422: the body is valid, but
    not for the subscription in the path.
    """
    errors: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    events = []
    for i, doc in enumerate(docs):
        try:
            body = validate_event(doc).body
        except InvalidEvent as exc:
            errors.extend({"field": f"Events.{i}.{e.field}", "problem": e.problem} for e in exc.errors)
            continue
        if body["PublisherProgramId"] != publisher:
            others.append({"field": f"Events.{i}.PublisherProgramId", "problem": f"must be {publisher!r}, the publisher in the path"})
            continue
        events.append({"EventId": None, **body, "CreatedUtc": now})
    if errors:
        first = errors[0]
        raise ApiError(400, "invalid_event", f"Events are invalid: {first['field']}: {first['problem']}.", {"errors": errors})
    if others:
        first = others[0]
        raise ApiError(422, "wrong_publisher", f"Events are of another publisher: {first['field']}: {first['problem']}.", {"errors": others})
    return events


async def _programs(app: web.Application, *program_ids: str) -> dict[str, Program]:
    pool = app[POOL]
    found = {p: await get_program(pool, p) for p in dict.fromkeys(program_ids)}
    missing = [p for p, program in found.items() if program is None]
    if missing:
        raise ApiError(
            404, "unknown_program", f"Not registered: {', '.join(repr(m) for m in missing)}.", {"ProgramIds": missing}
        )
    return {p: program for p, program in found.items() if program is not None}


async def preview_subscription(request: web.Request) -> web.Response:
    require_system(request)
    program_id = program_id_from(request.match_info["programId"])
    publisher_id = program_id_from(request.match_info["publisherProgramId"])
    body = await _preview_body(request)
    given = body.model_fields_set
    if body.Events is not None and body.Latest is not None:
        # Each field is valid alone: the pair is what cannot be served (422, as the document allows both).
        raise ApiError(422, "conflicting_fields", "Send Events or Latest, not both.", {"fields": ["Events", "Latest"]})
    programs = await _programs(request.app, program_id, publisher_id)
    if body.LbApiPayloadTemplate is not None:
        template = _template(body.LbApiPayloadTemplate, body.ImportProcessId)
    else:
        stored = await _stored(request, program_id, publisher_id)
        ipid = body.ImportProcessId if "ImportProcessId" in given else stored.get("ImportProcessId")
        template = _template(stored.get("LbApiPayloadTemplate"), ipid)
    if body.Events is not None:
        events = _given_events(publisher_id, body.Events, format_utc(utc_now()))
    else:
        events = await latest_events(request.app, programs[publisher_id], body.Latest or DEFAULT_LATEST)
    return web.json_response(preview(template, events).as_json())


async def _preview_body(request: web.Request) -> PreviewIn:
    """The body as POST bodies are read; an empty one means every default."""
    return await read_model(request, PreviewIn) if (await request.read()).strip() else PreviewIn()


async def _stored(request: web.Request, program_id: str, publisher: str) -> dict[str, Any]:
    try:
        reply = await ask(request.app, "subscriptions.commands", program_id, "get", {"PublisherProgramId": publisher})
    except ApiError as exc:
        if exc.code == "subscription_not_found":
            exc.message = f"{exc.message.rstrip('.')}; send LbApiPayloadTemplate in the body to preview one before subscribing."
        raise
    return dict(reply.body)


async def check_on_latest(app: web.Application, publisher_id: str, template_value: Any, import_process_id: int | None) -> None:
    """The save-time check: 422 ``template_fails_on_latest_event`` when the template's row fails
    on the publisher's latest live event. A template that does not parse is left to the
    worker's 422 ``invalid_template``; no template, an unregistered publisher or no event: nothing to check."""
    if template_value is None or template_problem(template_value, import_process_id) is not None:
        return
    publisher = await get_program(app[POOL], publisher_id)
    if publisher is None:
        return
    template = parse_payload_template(template_value, import_process_id=import_process_id)
    failed = first_failure(template, await latest_events(app, publisher, 1))
    if failed is None:
        return
    error = failed["Error"]
    raise ApiError(
        422,
        "template_fails_on_latest_event",
        f"The template fails on {publisher_id}'s latest event {failed['EventId']}"
        f" (entry {failed['EntryKey']!r}): {error['message']}. Fix the template, or save anyway with ?force=true.",
        {"EventId": failed["EventId"], "EntryKey": failed["EntryKey"], "Error": error},
    )


async def dry_run(request: web.Request, program_id: str) -> web.Response:
    """``processEvents?dryRun=true``: the plan of the sync, from the cursors the workers hold now."""
    app = request.app
    started = utc_now()
    subscriptions = (await ask(app, "subscriptions.commands", program_id, "list")).body
    cursors = (await ask(app, "sync.requests", program_id, "get_cursors")).body
    source = KafkaEventSource(app[SETTINGS], consumers=app[EVENT_READERS])
    row_cap = app[SETTINGS].lb_batch_row_cap
    outcomes = []
    for sub in subscriptions:
        if not sub.get("SyncEnabled") or sub["PublisherProgramId"] not in cursors:
            continue
        job = await _job(app, sub, SyncCursor.from_json(cursors[sub["PublisherProgramId"]]))
        if isinstance(job, str):
            outcomes.append(_unusable(sub, job))
            continue
        try:
            outcomes.append(await plan_subscription(job, source=source, row_cap=row_cap))
        except (EventLogError, KafkaError, OSError) as exc:
            raise _unavailable("hub.events", exc) from None
    status, answer = dry_run_answer(program_id, started, utc_now(), outcomes)
    return web.json_response(answer, status=status)


async def _job(app: web.Application, sub: dict[str, Any], cursor: SyncCursor) -> SyncJob | str:
    """The SyncJob the real sync would build (agents/sync_runner.py), or why the template cannot be used."""
    try:
        template = parse_payload_template(sub.get("LbApiPayloadTemplate"), import_process_id=sub.get("ImportProcessId"))
    except PayloadTemplateError as exc:
        return str(exc)
    registered: datetime | None = None
    if cursor.next_offset is None and cursor.from_time is None:
        publisher = await get_program(app[POOL], sub["PublisherProgramId"])
        registered = publisher.created_utc if publisher is not None else None
    return SyncJob(sub["PublisherProgramId"], template, cursor, registered, park=sub.get("OnRenderError") == "park")


def _unusable(sub: dict[str, Any], reason: str) -> SubscriptionOutcome:
    outcome = SubscriptionOutcome(sub["PublisherProgramId"])
    outcome.fail("render_failed", f"The stored template cannot be used: {reason}")
    return outcome


def setup(app: web.Application) -> None:
    app.router.add_post("/api/programs/{programId}/eventSubs/{publisherProgramId}/preview", preview_subscription)


OPERATIONS = [
    Operation(
        "POST",
        "/api/programs/{programId}/eventSubs/{publisherProgramId}/preview",
        "Render a template (the body's, else the stored one) against given events or the publisher's latest"
        " live ones: routing, row or error per event. Nothing is sent or stored (system key).",
        {
            200: ("One result per event, in publication (or given) order, and a summary.", PreviewOut),
            400: ("Invalid body, or an invalid event in Events (invalid_event, every error listed).", None),
            404: ("No such subscription and no template in the body (subscription_not_found), or unknown_program.", None),
            422: ("invalid_template (details: entry, line, column, reason), as on POST.", None),
            503: ("hub.events or the workers did not answer (unavailable, with Retry-After).", None),
        },
        body=PreviewIn,
        body_required=False,
        params=(
            Param("programId", "path", "the subscriber", schema=PROGRAM_ID_SCHEMA),
            Param("publisherProgramId", "path", "the publisher", schema=PROGRAM_ID_SCHEMA),
        ),
        tag="subscriptions",
    ),
]
