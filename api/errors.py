"""Every 4xx/5xx answer as the JSON problem shape of CONTRACT.md.

``{"error": "snake_case_code", "message": "one human sentence", "details": {...}}``:
never a stack trace, never an HTML page, for unknown paths and wrong methods too.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from api.state import MAX_BODY_BYTES

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A domain error that becomes one problem answer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def problem(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {"error": code, "message": message, "details": details or {}},
        status=status,
        headers=headers,
    )


_HTTP_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "Credentials are missing or wrong."),
    403: ("forbidden", "This key may not do that."),
    404: ("not_found", "There is nothing at this path."),
    405: ("method_not_allowed", "This path does not accept that method."),
    413: ("payload_too_large", f"Request bodies are limited to {MAX_BODY_BYTES} bytes."),
    415: ("unsupported_media_type", "Send the body as application/json."),
}


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason or "HTTP error."))
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if exc.status == 404:
        message = f"There is nothing at {request.path}."
    elif exc.status == 405 and isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        message = f"{request.path} does not accept {request.method}; it accepts {', '.join(allowed)}."
        details = {"allowed": allowed}
        headers["Allow"] = ",".join(allowed)
    return problem(exc.status, code, message, details, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn domain errors, HTTP errors and crashes into problem answers."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        return problem(413, *_HTTP_CODES[413], {"limit": MAX_BODY_BYTES, "got": length})
    try:
        response = await handler(request)
    except ApiError as exc:
        return problem(exc.status, exc.code, exc.message, exc.details, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(request, exc)
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal_error", "The hub failed on this request; it has been logged.")
    return response
