"""The aiohttp app factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from api.auth import auth_middleware
from api.errors import error_middleware
from api.observability import observe_middleware
from api.routes import setup_routes
from api.state import (
    EVENT_READERS,
    KEYS,
    MAX_BODY_BYTES,
    MAX_REQUEST_LINE_BYTES,
    POOL,
    RPC,
    SETTINGS,
)
from hub_stream.access.key_cache import KeyCache
from hub_stream.events.log import ConsumerPool
from hub_stream.platform import db
from hub_stream.platform.request_reply import RpcClient
from hub_stream.platform.settings import HubSettings

logger = logging.getLogger(__name__)


def create_app(
    settings: HubSettings,
    *,
    rpc: RpcClient | None = None,
    pool: asyncpg.Pool | None = None,
) -> web.Application:
    """The API app. Without ``rpc``/``pool`` it starts and stops its own."""
    app = web.Application(
        middlewares=[observe_middleware, error_middleware, auth_middleware],
        client_max_size=MAX_BODY_BYTES,
        handler_args={"max_line_size": MAX_REQUEST_LINE_BYTES},
    )
    app[SETTINGS] = settings

    async def resources(app: web.Application) -> AsyncIterator[None]:
        own_rpc = rpc is None
        own_pool = pool is None
        app[RPC] = rpc or RpcClient(settings)
        if own_rpc:
            # Without a broker the API still starts: calls that need it answer 503 until it is back.
            await app[RPC].start(background=True)
        try:
            app[POOL] = pool or await db.create_pool(settings)
            try:
                app[KEYS] = KeyCache(settings.database_url.get_secret_value() if settings.database_url else None)
                await app[KEYS].start()
                app[EVENT_READERS] = ConsumerPool(settings.kafka_bootstrap or "")  # consumers start on first use
                try:
                    yield
                finally:
                    await app[EVENT_READERS].close()
                    await app[KEYS].stop()
            finally:
                if own_pool:
                    await app[POOL].close()
        finally:
            if own_rpc:
                await app[RPC].stop()

    app.cleanup_ctx.append(resources)
    setup_routes(app)
    return app
