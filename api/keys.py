"""API keys (system key): create, list, show and revoke under /api/keys.

The secret appears only in the answer to POST. A revocation takes effect at
the next request on every API instance (the auth middleware reads the key's
row on every request). See docs/programs-and-keys.md.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import require_system
from api.bodies import plain_text, read_model
from api.errors import ApiError
from api.openapi import Operation, Param
from api.state import KEYS, POOL
from hub_stream.access import keys
from schemas.common import USER_ID_SCHEMA
from schemas.keys import KeyBody, KeyOut, NewKeyOut
from schemas.programs import PROGRAM_ID_RULE, is_program_id


def unknown_key(user_id: str) -> ApiError:
    return ApiError(404, "unknown_key", f"There is no API key with user id {user_id!r}.", {"UserId": user_id})


async def create_key(request: web.Request) -> web.Response:
    require_system(request)
    body = await read_model(request, KeyBody)
    granted = dict(body.Programs or {})
    bad = sorted(p for p in granted if not is_program_id(p))
    if bad:
        raise ApiError(
            400,
            "invalid_program_id",
            f"Program id(s) {', '.join(repr(p) for p in bad)} are invalid: use {PROGRAM_ID_RULE}.",
            {"ProgramIds": bad},
        )
    try:
        new = await keys.create_granted_key(request.app[POOL], system=bool(body.System), programs=granted)
    except keys.UnknownPrograms as exc:
        raise ApiError(
            422,
            "unknown_program",
            f"A key can only grant registered programs; not registered: {', '.join(exc.program_ids)}.",
            {"ProgramIds": exc.program_ids},
        ) from None
    return web.json_response(
        NewKeyOut(UserId=new.user_id, ApiKey=new.api_key).model_dump(),
        status=201,
        headers={"Location": f"/api/keys/{new.user_id}", "Cache-Control": "no-store"},
    )


async def list_keys(request: web.Request) -> web.Response:
    require_system(request)
    return web.json_response([keys.key_json(k) for k in await keys.list_keys(request.app[POOL])])


async def get_key(request: web.Request) -> web.Response:
    require_system(request)
    user_id = plain_text(request.match_info["userId"], "user id")
    record = await keys.get_key(request.app[POOL], user_id)
    if record is None:
        raise unknown_key(user_id)
    return web.json_response(keys.key_json(record))


async def revoke_key(request: web.Request) -> web.Response:
    require_system(request)
    user_id = plain_text(request.match_info["userId"], "user id")
    if await keys.revoke_key(request.app[POOL], user_id) is None:
        raise unknown_key(user_id)
    request.app[KEYS].forget(user_id)  # at once here; other processes on the trigger's notification
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    """Add this module's routes to ``app``."""
    app.router.add_post("/api/keys", create_key)
    app.router.add_get("/api/keys", list_keys)
    app.router.add_get("/api/keys/{userId}", get_key)
    app.router.add_delete("/api/keys/{userId}", revoke_key)


_USER = Param("userId", "path", "the key's user id (u_ and 32 hex digits)", schema=USER_ID_SCHEMA)
OPERATIONS = [
    Operation(
        "POST",
        "/api/keys",
        "Create an API key; the secret is in this answer only (system key).",
        {201: ("The new key.", NewKeyOut), 422: ("A granted program is not registered.", None)},
        body=KeyBody,
        tag="keys",
    ),
    Operation("GET", "/api/keys", "List keys, without secrets (system key).", {200: ("All keys.", KeyOut)}, list_response=frozenset({200}), tag="keys"),
    Operation("GET", "/api/keys/{userId}", "One key, without its secret (system key).", {200: ("The key.", KeyOut), 404: ("Unknown key.", None)}, params=(_USER,), tag="keys"),
    Operation("DELETE", "/api/keys/{userId}", "Revoke a key at once, on every API instance (system key).", {204: ("Revoked.", None), 404: ("Unknown key.", None)}, params=(_USER,), tag="keys"),
]
