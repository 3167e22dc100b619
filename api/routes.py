"""The route table: every endpoint of the hub, module by module.

Each module adds its routes in ``setup(app)`` and describes them in
``OPERATIONS``, from which GET /openapi.json is built.
"""

from __future__ import annotations

from aiohttp import web

from api import (
    console,
    events,
    health,
    keys,
    observability,
    openapi,
    preview,
    programs,
    subscriptions,
    sync,
)
from api import parked as parked_events
from api.openapi import Operation
from schemas.common import Health, Problem, Readiness

AREAS = (programs, keys, subscriptions, parked_events, preview, events, sync, console)

OPERATIONS = [
    Operation("GET", "/healthz", "The process is alive.", {200: ("Alive.", Health)}, auth=False, tag="operations"),
    Operation(
        "GET",
        "/readyz",
        "Broker, database and a worker answer.",
        {200: ("Ready.", Readiness), 503: ("Not ready; details name the failing checks.", Problem)},
        auth=False,
        tag="operations",
    ),
    Operation("GET", "/metrics", "Prometheus metrics of this API process (text format).", {200: ("Metrics.", None)}, auth=False, tag="operations"),
    Operation("GET", "/openapi.json", "This OpenAPI 3.1 document.", {200: ("The spec.", None)}, auth=False, tag="operations"),
    Operation("GET", "/docs", "A page that renders this spec (served offline).", {200: ("HTML.", None)}, auth=False, tag="operations"),
]


def all_operations() -> list[Operation]:
    ops = list(OPERATIONS)
    for module in AREAS:
        ops.extend(getattr(module, "OPERATIONS", []))
    return ops


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", observability.metrics)
    app.router.add_get("/openapi.json", openapi.openapi_json)
    app.router.add_get("/docs", openapi.docs_page)
    for module in AREAS:
        module.setup(app)
    app[openapi.SPEC] = openapi.build_spec(all_operations())
