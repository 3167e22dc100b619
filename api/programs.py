"""The programs registry (system key): PUT, GET, list and DELETE of /api/programs.

The LB API key is accepted by PUT and never answered: GET says only
``LbApiKeySet``. See docs/programs-and-keys.md for the decisions.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import require_system
from api.bodies import read_model
from api.errors import ApiError
from api.openapi import Operation, Param
from api.state import POOL, SETTINGS
from hub_stream.access import programs
from hub_stream.access.programs import SubscriptionRefs, no_subscription_refs
from hub_stream.platform.settings import HubSettings
from schemas.common import PROGRAM_ID_SCHEMA
from schemas.programs import PROGRAM_ID_RULE, ProgramBody, ProgramOut, is_program_id

SUBSCRIPTION_REFS = web.AppKey("subscription_refs", SubscriptionRefs)
"""Who references a program. The subscriptions module sets it (after this
module's ``setup``); until then no program is ever reported in use."""


def program_id_from(value: str) -> str:
    """``value`` if it follows the program id rule, else 400 ``invalid_program_id``."""
    if not is_program_id(value):
        raise ApiError(
            400,
            "invalid_program_id",
            f"Program id {value!r} is invalid: use {PROGRAM_ID_RULE}.",
            {"ProgramId": value},
        )
    return value


def unknown_program(program_id: str) -> ApiError:
    return ApiError(
        404, "unknown_program", f"Program {program_id!r} is not registered.", {"ProgramId": program_id}
    )


def _with_dev_lb(settings: HubSettings, body: ProgramBody) -> ProgramBody:
    """Under `hub dev --fake-lb`, a program sent without an LB connection gets the stand-in."""
    if settings.dev_lb_base_url is None or settings.dev_lb_api_key is None:
        return body
    if body.LbBaseUrl is not None or "LbApiKey" in body.model_fields_set:
        return body
    return body.model_copy(update={"LbBaseUrl": settings.dev_lb_base_url, "LbApiKey": settings.dev_lb_api_key})


async def put_program(request: web.Request) -> web.Response:
    require_system(request)
    program_id = program_id_from(request.match_info["programId"])
    body = await read_model(request, ProgramBody)
    body = _with_dev_lb(request.app[SETTINGS], body)
    created = await programs.put_program(request.app[POOL], program_id, body)
    if created:
        return web.Response(status=201, headers={"Location": f"/api/programs/{program_id}"})
    return web.Response(status=204)


async def get_program(request: web.Request) -> web.Response:
    require_system(request)
    program_id = program_id_from(request.match_info["programId"])
    program = await programs.get_program(request.app[POOL], program_id)
    if program is None:
        raise unknown_program(program_id)
    return web.json_response(programs.program_json(program))


async def list_programs(request: web.Request) -> web.Response:
    require_system(request)
    listed = await programs.list_programs(request.app[POOL])
    return web.json_response([programs.program_json(p) for p in listed])


async def delete_program(request: web.Request) -> web.Response:
    require_system(request)
    program_id = program_id_from(request.match_info["programId"])
    refs = request.app.get(SUBSCRIPTION_REFS, no_subscription_refs)
    try:
        deleted = await programs.delete_program(request.app[POOL], program_id, subscription_refs=refs)
    except programs.ProgramInUse as exc:
        shown = ", ".join(exc.subscriptions[:10]) + (" ..." if len(exc.subscriptions) > 10 else "")
        raise ApiError(
            409,
            "program_in_use",
            f"Program {program_id!r} is referenced by {len(exc.subscriptions)} subscription(s) ({shown});"
            " delete them first.",
            {"ProgramId": program_id, "Subscriptions": exc.subscriptions},
        ) from None
    if not deleted:
        raise unknown_program(program_id)
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    """Add the registry routes, and the default ``SUBSCRIPTION_REFS`` if none is set."""
    app.setdefault(SUBSCRIPTION_REFS, no_subscription_refs)
    app.router.add_get("/api/programs", list_programs)
    app.router.add_put("/api/programs/{programId}", put_program)
    app.router.add_get("/api/programs/{programId}", get_program)
    app.router.add_delete("/api/programs/{programId}", delete_program)


_PROGRAM = Param("programId", "path", "1-25 of A-Z a-z 0-9 _ - .", schema=PROGRAM_ID_SCHEMA)
OPERATIONS = [
    Operation("GET", "/api/programs", "List registered programs (system key).", {200: ("All programs, sorted by id.", ProgramOut)}, list_response=frozenset({200}), tag="programs"),
    Operation(
        "PUT",
        "/api/programs/{programId}",
        "Create or replace a program and its LearningBuilder connection (system key).",
        {201: ("Created.", None), 204: ("Replaced.", None), 400: ("Invalid id or body.", None)},
        body=ProgramBody,
        params=(_PROGRAM,),
        tag="programs",
    ),
    Operation(
        "GET",
        "/api/programs/{programId}",
        "One program; never its LbApiKey, only LbApiKeySet (system key).",
        {200: ("The program.", ProgramOut), 400: ("Invalid id.", None), 404: ("Unknown program.", None)},
        params=(_PROGRAM,),
        tag="programs",
    ),
    Operation(
        "DELETE",
        "/api/programs/{programId}",
        "Delete a program (system key).",
        {204: ("Deleted.", None), 400: ("Invalid id.", None), 404: ("Unknown program.", None), 409: ("Subscriptions still name it.", None)},
        params=(_PROGRAM,),
        tag="programs",
    ),
]
