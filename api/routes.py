"""The route table: every endpoint of the hub in one place."""

from __future__ import annotations

from aiohttp import web

from api import health


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
