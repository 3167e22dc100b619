"""Request ids and HTTP metrics for every request."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub_stream.platform.logs import request_id_var
from hub_stream.platform.metrics import HTTP_LATENCY, HTTP_REQUESTS, REGISTRY

REQUEST_ID_HEADER = "X-Request-ID"
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _route_name(request: web.Request) -> str:
    """The route template (not the raw path), so labels stay few."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def observe_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Accept or make an X-Request-ID, echo it, log with it, and count the request."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _GOOD_ID.match(given) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        route = _route_name(request)
        HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        request_id_var.reset(token)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: this API process's metrics in the Prometheus text format."""
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
