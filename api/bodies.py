"""Reading JSON request bodies into pydantic models, with every error listed at once."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from api.errors import ApiError
from hub_stream.platform import safe_json

M = TypeVar("M", bound=BaseModel)


def validation_problem(exc: ValidationError, what: str = "request body") -> ApiError:
    """A 400 that lists every field error (unknown fields included) with its location."""
    errors: list[dict[str, Any]] = []
    unknown: list[str] = []
    for err in exc.errors(include_url=False, include_context=False):
        field = ".".join(str(p) for p in err["loc"]) or "(body)"
        if err["type"] == "extra_forbidden":
            unknown.append(field)
        errors.append({"field": field, "problem": err["msg"]})
    if unknown:
        message = f"The {what} has unknown field(s): {', '.join(unknown)}."
        code = "unknown_fields"
    else:
        first = errors[0] if errors else {"field": "(body)", "problem": "invalid"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        message = f"The {what} is invalid: {first['field']}: {first['problem']}{more}."
        code = "invalid_body"
    details: dict[str, Any] = {"errors": errors}
    if unknown:
        details["unknown_fields"] = unknown
    return ApiError(400, code, message, details)


async def read_json(request: web.Request) -> Any:
    """The body parsed as JSON; 400 ``invalid_json``, ``invalid_text`` or ``too_deep`` (hub_stream.platform.safe_json)."""
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "invalid_json", "The request body is empty; send a JSON object.")
    try:
        return safe_json.loads(raw)
    except safe_json.JsonRefused as exc:
        raise ApiError(400, exc.code, f"The request body is refused: {exc.message}") from None


async def read_model(request: web.Request, model: type[M]) -> M:
    """The body validated into ``model`` (which should forbid extra fields)."""
    doc = await read_json(request)
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_body", "The request body must be a JSON object.")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def plain_text(value: str, what: str) -> str:
    """``value`` (an id, name or key from the request), or 400 ``invalid_text`` if it holds a NUL."""
    if "\x00" in value:
        raise ApiError(400, "invalid_text", f"The {what} contains a NUL character.", {"field": what})
    return value
