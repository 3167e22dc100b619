"""Typed keys of what the aiohttp app carries, and fixed limits."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from hub_stream.access.key_cache import KeyCache
from hub_stream.events.log import ConsumerPool
from hub_stream.platform.request_reply import RpcClient
from hub_stream.platform.settings import HubSettings

MAX_BODY_BYTES = 1024 * 1024
MAX_URL_BYTES = 8192
"""Longer request targets get 414; aiohttp's own limit is raised above it so the answer is JSON."""
MAX_REQUEST_LINE_BYTES = MAX_BODY_BYTES
"""aiohttp's own limit on the request line (its answer past it is plain text, not a problem)."""

SETTINGS = web.AppKey("settings", HubSettings)
RPC = web.AppKey("rpc", RpcClient)
POOL = web.AppKey("pool", asyncpg.Pool)
KEYS = web.AppKey("key_cache", KeyCache)
EVENT_READERS = web.AppKey("event_readers", ConsumerPool)
"""Consumers of hub.events kept for the API's reads (preview, dry run): no consumer start per request."""
