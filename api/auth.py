"""Basic authentication on every /api request, and the access checks handlers use.

``Authorization: Basic base64(userId:apiKey)``. Missing or wrong credentials:
401 with ``WWW-Authenticate: Basic``; a valid key without the access: 403.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from api.bodies import plain_text
from api.errors import ApiError
from api.state import KEYS, POOL
from hub_stream.access.keys import Grants

GRANTS_KEY = web.RequestKey("grants", Grants)
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="learning-hub", charset="UTF-8"'}


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers=_CHALLENGE)


def _credentials(header: str | None) -> tuple[str, str]:
    if not header:
        raise _unauthorized("Send Authorization: Basic base64(userId:apiKey).")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise _unauthorized("Only Basic authentication is accepted: Authorization: Basic base64(userId:apiKey).")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _unauthorized("The Basic credentials are not valid base64 of userId:apiKey.") from None
    user_id, sep, secret = decoded.partition(":")
    if not sep or not user_id or not secret:
        raise _unauthorized("The Basic credentials must be userId:apiKey.")
    return plain_text(user_id, "user id"), plain_text(secret, "API key")


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Authenticate every request under /api/; hand the grants to the handler."""
    if request.path.startswith("/api/") or request.path == "/api":
        user_id, secret = _credentials(request.headers.get("Authorization"))
        grants = await request.app[KEYS].lookup(request.app[POOL], user_id, secret)
        if grants is None:
            raise _unauthorized("Unknown user id, wrong API key, or a revoked key.")
        request[GRANTS_KEY] = grants
    return await handler(request)


def grants_of(request: web.Request) -> Grants:
    return request[GRANTS_KEY]


def require_system(request: web.Request) -> Grants:
    grants = grants_of(request)
    if not grants.system:
        raise ApiError(403, "forbidden", "This call needs a system key.")
    return grants


def require_read(request: web.Request, program_id: str) -> Grants:
    grants = grants_of(request)
    if not grants.can_read(program_id):
        raise ApiError(403, "forbidden", f"This key has no read access to program {program_id!r}.")
    return grants


def require_write(request: web.Request, program_id: str) -> Grants:
    grants = grants_of(request)
    if not grants.can_write(program_id):
        raise ApiError(403, "forbidden", f"This key has no write access to program {program_id!r}.")
    return grants
