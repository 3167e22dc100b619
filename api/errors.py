"""Every 4xx/5xx answer as the JSON problem shape of CONTRACT.md.

``{"error": "snake_case_code", "message": "one human sentence", "details": {...}}``:
never a stack trace, never an HTML page, for unknown paths and wrong methods too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from api.state import MAX_BODY_BYTES, MAX_URL_BYTES, SETTINGS
from hub_stream.platform.outages import (
    BROKER,
    DATABASE,
    OUTAGES,
    RETRY_AFTER_S,
    DependencyUnavailable,
    request_deadline,
    unavailable_dependency,
)

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
    414: ("uri_too_long", f"Request URLs are limited to {MAX_URL_BYTES} bytes."),
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


def unavailable(dependency: str, message: str | None = None, details: dict[str, Any] | None = None) -> ApiError:
    """503 ``unavailable``: a dependency did not answer; the call may be retried."""
    return ApiError(
        503,
        "unavailable",
        message or f"{dependency[:1].upper()}{dependency[1:]} did not answer; try again in a few seconds.",
        {"dependency": dependency, **(details or {})},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _deadline_s(request: web.Request) -> float | None:
    """How long an /api call may take: HUB_REQUEST_TIMEOUT_S (a sync: its own, longer, timeout)."""
    if not request.path.startswith("/api/"):
        return None
    settings = request.app[SETTINGS]
    if request.path == "/api/processEvents":
        return settings.sync_timeout_s + settings.request_timeout_s
    return settings.request_timeout_s


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn domain errors, HTTP errors, missing dependencies and crashes into problem answers."""
    if len(request.raw_path) > MAX_URL_BYTES:
        return problem(414, *_HTTP_CODES[414], {"limit": MAX_URL_BYTES, "got": len(request.raw_path)})
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        return problem(413, *_HTTP_CODES[413], {"limit": MAX_BODY_BYTES, "got": length})
    deadline = _deadline_s(request)
    token = request_deadline.set(None if deadline is None else asyncio.get_running_loop().time() + deadline)
    try:
        response = await _within(deadline, handler(request))
    except ApiError as exc:
        return _answer(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(request, exc)
    except Exception as exc:  # noqa: BLE001 - a crash too is answered as a problem, never a trace
        return _failed(request, exc)
    finally:
        request_deadline.reset(token)
    return response


OUTCOME_UNKNOWN = web.RequestKey("outcome_unknown", str)
"""Set by a handler once its command may have taken effect: what a 503/504 then tells the caller."""


def _answer(request: web.Request, exc: ApiError) -> web.Response:
    message, details = exc.message, exc.details
    note = request.get(OUTCOME_UNKNOWN)
    if note is not None and exc.status in (503, 504):
        message = f"{message} {note}"
        details = {**details, "outcome": "unknown", "safeToRetry": True}
    return problem(exc.status, exc.code, message, details, headers=exc.headers)


async def _within(deadline: float | None, call: Coroutine[Any, Any, web.StreamResponse]) -> web.StreamResponse:
    """The handler's response, or TimeoutError at the deadline, whatever the handler does then.

    ``asyncio.timeout`` alone is not enough: it cancels the handler and then
    waits for it, and a handler cancelled inside a client library can take
    long to unwind (aiokafka's consumer stop waited for its fetch, a minute
    with brokers down). The handler runs in a task of its own; at the
    deadline it is cancelled and left to unwind while the caller is answered.
    """
    if deadline is None:
        return await call
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=deadline)
    except asyncio.CancelledError:  # the client went away: so does the handler
        task.cancel()
        raise
    if done:
        return task.result()
    waited_on = _awaited_library(task)
    task.cancel()
    _UNWINDING.add(task)
    task.add_done_callback(_unwound)
    raise DependencyUnavailable(waited_on or "a dependency", f"no answer within {deadline:g} s")


def _awaited_library(task: asyncio.Task[Any]) -> str | None:
    """The dependency a still-running handler is waiting on, from the modules of its await chain."""
    found = None
    for frame in task.get_stack(limit=200):
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith("asyncpg"):
            found = DATABASE
        elif module.startswith(_BROKER_MODULES):
            found = BROKER
    return found


_BROKER_MODULES = ("aiokafka", "hub_stream.events.log", "hub_stream.platform.offsets")
"""Modules whose awaits are the broker's (a chain can end in one, waiting on an aiokafka future)."""


_UNWINDING: set[asyncio.Task[web.StreamResponse]] = set()
"""Handlers cancelled at their deadline and still unwinding (kept referenced until they end)."""


def _unwound(task: asyncio.Task[web.StreamResponse]) -> None:
    _UNWINDING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        dependency = unavailable_dependency(exc) if isinstance(exc, Exception) else None
        if dependency is not None:
            OUTAGES.failed(dependency, f"{type(exc).__name__}: {exc}"[:300])
        else:
            logger.error("a handler cancelled at its deadline failed while unwinding", exc_info=exc)


def _failed(request: web.Request, exc: Exception) -> web.Response:
    dependency = unavailable_dependency(exc)
    if dependency is not None:
        OUTAGES.failed(dependency, f"{type(exc).__name__}: {exc}"[:300])
        return _answer(request, unavailable(dependency))
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500, "internal_error", "The hub failed on this request; it has been logged.")
