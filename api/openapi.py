"""GET /openapi.json (OpenAPI 3.1) and GET /docs, from the pydantic models in schemas/.

Every route module declares ``OPERATIONS``: one ``Operation`` per route, next
to the route it describes. The spec is built from them; a test fails when a
route has no entry.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.openapi_examples import EXAMPLES, PARAMETERS
from schemas.common import Problem

PROBLEM_CODES = {400, 401, 403, 404, 409, 413, 422, 502, 503, 504}
NO_WORKER = (503, ("No worker (or no broker) answered in time (unavailable, with Retry-After).", None))
"""The 503 of every operation that asks the workers (api/workers.py answers it)."""


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" | "query"
    description: str = ""
    required: bool = False
    type: str = "string"
    schema: dict[str, Any] | None = None  # the whole JSON Schema (patterns, bounds); else {"type": type}


# One model, or several the answer may be any of (``anyOf``, the first listed tried first).
Answer = type[BaseModel] | tuple[type[BaseModel], ...] | None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    responses: dict[int, tuple[str, Answer]]
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    auth: bool = True
    tag: str = "hub"
    list_response: frozenset[int] = field(default_factory=frozenset)  # statuses whose body is a list
    body_required: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return self.method.upper(), self.path


def _models(answer: Answer) -> tuple[type[BaseModel], ...]:
    if answer is None:
        return ()
    return answer if isinstance(answer, tuple) else (answer,)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _location(example: str | None) -> dict[str, Any]:
    """The header every 201 carries."""
    header: dict[str, Any] = {
        "description": "The path of the created resource (GET it, or DELETE it where the API allows).",
        "required": True,
        "schema": {"type": "string"},
    }
    return {"Location": header | ({"example": example} if example else {})}


def operation_id(op: Operation) -> str:
    """``get_api_programs_programId``, ``get_openapi_json``: letters, digits and ``_`` (a generated
    client's function names); a path ending in ``/`` adds ``_index`` (/console/ is not /console)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", op.path.strip("/").replace("{", "").replace("}", ""))
    return f"{op.method.lower()}_{name}" + ("_index" if op.path.endswith("/") and op.path != "/" else "")


def build_spec(operations: Iterable[Operation], *, version: str = "0.1.0") -> dict[str, Any]:
    ops = list(operations)
    models: set[type[BaseModel]] = {Problem}
    for op in ops:
        if op.body is not None:
            models.add(op.body)
        for _, answer in op.responses.values():
            models.update(_models(answer))
    ordered = sorted(models, key=lambda m: m.__name__)
    _, defs = models_json_schema(
        [(m, "validation" if any(op.body is m for op in ops) else "serialization") for m in ordered],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        item = paths.setdefault(op.path, {})
        entry: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": operation_id(op),
            "responses": {},
        }
        params = [
            {"name": p.name, "in": p.where, "required": p.required or p.where == "path", "description": p.description, "schema": p.schema or {"type": p.type}}
            | ({"example": PARAMETERS[p.name]} if p.name in PARAMETERS else {})
            for p in op.params
        ]
        if params:
            entry["parameters"] = params
        examples = EXAMPLES.get(op.key, {})
        if op.body is not None:
            media: dict[str, Any] = {"schema": _ref(op.body)}
            if "request" in examples:
                media["examples"] = {"example": {"value": examples["request"]}}
            entry["requestBody"] = {"required": op.body_required, "content": {"application/json": media}}
        statuses = dict(op.responses)
        if op.auth:
            statuses.setdefault(401, ("Missing or wrong credentials.", Problem))
            statuses.setdefault(403, ("The key lacks the access this call needs.", Problem))
        if op.body is not None:
            statuses.setdefault(400, ("The body is not valid.", Problem))
            statuses.setdefault(413, ("The body is over 1 MiB.", Problem))
        for status, (description, answer) in sorted(statuses.items()):
            response: dict[str, Any] = {"description": description}
            models = _models(answer) or ((Problem,) if status in PROBLEM_CODES else ())
            if models:
                schema: dict[str, Any] = _ref(models[0]) if len(models) == 1 else {"anyOf": [_ref(m) for m in models]}
                if status in op.list_response:
                    schema = {"type": "array", "items": schema}
                media = {"schema": schema}
                if status in examples:
                    media["examples"] = {"example": {"value": examples[status]}}
                response["content"] = {"application/json": media}
            if status == 201:
                response["headers"] = _location(examples.get("Location"))
            entry["responses"][str(status)] = response
        if op.auth:
            entry["security"] = [{"basicAuth": []}]
        else:
            entry["security"] = []
        item[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Learning Hub (hub-stream)",
            "version": version,
            "description": "Event clearinghouse for learning records. Every 4xx/5xx answer is a Problem.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic", "description": "userId:apiKey"}
            },
        },
    }


SPEC = web.AppKey("openapi_spec", dict)


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[SPEC])


@cache
def _docs_page() -> tuple[str, str]:
    """The page and its Content-Security-Policy: its own inline script and style (by hash), calls to
    this origin only. The page holds an API key typed in: nothing else may run on it."""
    page = (resources.files("api") / "static" / "docs.html").read_text()

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.DOTALL)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'" for text in found)

    csp = (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; connect-src 'self';"
        " img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return page, csp


async def docs_page(request: web.Request) -> web.Response:
    """A self-contained page that renders /openapi.json (no CDN, works offline), with try-it forms."""
    # The console's headers, but for the policy (a lazy import: api.console imports this module).
    from api.console import SECURITY_HEADERS

    page, csp = _docs_page()
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": csp}
    return web.Response(text=page, content_type="text/html", headers=headers)
