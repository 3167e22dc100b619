"""PostgreSQL access: the connection pool and the plain-SQL migrations."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

from hub_stream.platform.settings import HubSettings

logger = logging.getLogger(__name__)

DB_COMMAND_TIMEOUT_S = 30.0
_MIGRATION_LOCK = 0x6875625F6D6967  # "hub_mig": one migrator at a time across processes


def database_dsn(settings: HubSettings) -> str:
    if settings.database_url is None:
        raise ValueError("HUB_DATABASE_URL is not set (or run `hub dev` for embedded PostgreSQL)")
    return settings.database_url.get_secret_value()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without ``RESET ALL``: the hub never changes session state (no SET, LISTEN or advisory locks on pooled connections)."""


async def create_pool(settings: HubSettings) -> asyncpg.Pool:
    """The pool. asyncpg still rolls back an open transaction on release; the
    default reset query on top of that cost a database round trip per API
    request (measured: ~10% of the API's CPU under load)."""
    pool = await asyncpg.create_pool(
        database_dsn(settings),
        min_size=1,
        max_size=settings.database_pool_max,
        command_timeout=DB_COMMAND_TIMEOUT_S,
        reset=_keep_session,
    )
    assert pool is not None
    return pool


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) of every migration shipped with the package, in order."""
    folder = resources.files("hub_stream.platform") / "migrations"
    files = sorted(f for f in folder.iterdir() if f.name.endswith(".sql"))
    return [(f.name.removesuffix(".sql"), f.read_text()) for f in files]


async def migrate(dsn: str) -> list[str]:
    """Apply every migration not applied yet, each in its own transaction.

    Safe to run from several processes at once (an advisory lock serialises
    them). Returns the versions applied by this call.
    """
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_utc timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied: list[str] = []
        for version, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
            logger.info("applied migration %s", version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await conn.close()
