"""Routes of this area (not written yet)."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Add this module's routes to ``app``."""
