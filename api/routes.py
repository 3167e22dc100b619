"""The route table: every endpoint of the hub, module by module."""

from __future__ import annotations

from aiohttp import web

from api import events, health, keys, observability, programs, subscriptions, sync


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", observability.metrics)
    for module in (programs, keys, subscriptions, events, sync):
        module.setup(app)
