"""The API's cache of key lookups, kept true by PostgreSQL notifications.

Reading the key's row on every request cost about a fifth of the API's CPU
under load (a database round trip per request, and a woken backend). The
cache keeps the rows of keys that worked; every change to a row is announced
on channel ``hub_api_keys`` by a trigger (migration 002), and the cache drops
that entry when the announcement arrives, so a revocation made anywhere (the
API, ``hub keys revoke``, psql) stops the key on every API process within
the time PostgreSQL takes to deliver a notification (milliseconds).

What keeps it honest:

- Only while the listening connection is up. When it drops, every lookup
  reads the row again until a new connection listens (which empties the
  cache: the notifications missed in between cannot matter then).
- While PostgreSQL does not answer at all, a key read from its row in the
  last ``outage_grace_s`` keeps working from the cache (CONTRACT.md: calls
  that need no database beyond the key go on). Nobody can revoke a key
  while the database is down; the one exception, a revocation made while
  only this process cannot reach the database, lasts until it can again.
- A lookup that read the row before a notification arrived does not store
  what it read (a generation count), so a revocation racing a lookup wins.
- Entries also expire after ``ttl_s`` (a bound on the damage of a
  notification lost in a way the connection did not notice) and the cache
  holds at most ``max_entries`` keys.
- Failed lookups (unknown user, wrong secret, revoked) are never cached:
  those read the row each time.
- The secret is checked against the cached hash on every request, in
  constant time; the secret itself is never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from hub_stream.access.keys import Grants, lookup_key_row, secrets_match
from hub_stream.platform.outages import DATABASE, OUTAGES, unavailable_dependency

logger = logging.getLogger(__name__)

CHANNEL = "hub_api_keys"
RECONNECT_S = 1.0


@dataclass(frozen=True)
class _Entry:
    secret_hash: bytes
    grants: Grants
    expires: float
    outage_until: float  # served while the database does not answer, until then


DB_RETRY_S = 1.0
"""After a failed read, lookups of cached keys wait this long before trying the database again."""


class KeyCache:
    """Key lookups for one API process: ``lookup`` answers from memory while the listener is up."""

    def __init__(
        self, dsn: str | None, *, ttl_s: float = 60.0, max_entries: int = 10_000, outage_grace_s: float = 600.0
    ) -> None:
        self._dsn = dsn
        self.ttl_s = ttl_s
        self.outage_grace_s = outage_grace_s
        self._db_failed_at: float | None = None
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._generation = 0
        self._listener: asyncpg.Connection | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.hits = 0
        self.misses = 0

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def start(self) -> None:
        """Listen now if the database lets us; keep (re)connecting in the background either way."""
        await self._listen()
        if self._dsn is None:
            return  # no database to listen to: no cache
        self._keeper = asyncio.create_task(self._keep_listening(), name="key-cache-listener")

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
            self._keeper = None
        await self._close_listener()
        self._drop_all()

    async def lookup(self, db: asyncpg.Pool | asyncpg.Connection, user_id: str, secret: str) -> Grants | None:
        """The grants of an active key whose secret matches, else None (as ``keys.lookup_grants``)."""
        entry = self._entries.get(user_id)
        now = time.monotonic()
        if entry is not None:
            if entry.expires > now and self.listening:
                if secrets_match(secret, entry.secret_hash):
                    self.hits += 1
                    return entry.grants
                # A wrong secret: answer from the row, as without the cache.
            elif self._db_failed_at is not None and now - self._db_failed_at < DB_RETRY_S:
                stale = self._outage_grants(entry, secret, now)
                if stale is not None:
                    return stale
        self.misses += 1
        generation = self._generation
        try:
            found = await lookup_key_row(db, user_id, secret)
        except Exception as exc:
            if unavailable_dependency(exc) is None:
                raise
            self._db_failed_at = time.monotonic()
            stale = self._outage_grants(entry, secret, now)
            if stale is None:
                raise
            OUTAGES.failed(DATABASE, f"key lookup served from the cache: {type(exc).__name__}: {exc}"[:300])
            return stale
        self._db_failed_at = None
        if found is None:
            return None
        secret_hash, grants = found
        if generation == self._generation and self.listening:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # rare: as many active keys in use as that
            now = time.monotonic()
            self._entries[user_id] = _Entry(secret_hash, grants, now + self.ttl_s, now + self.outage_grace_s)
        return grants

    def _outage_grants(self, entry: _Entry | None, secret: str, now: float) -> Grants | None:
        if entry is None or entry.outage_until <= now or not secrets_match(secret, entry.secret_hash):
            return None
        self.hits += 1
        return entry.grants

    def forget(self, user_id: str) -> None:
        """Drop one key at once (this process changed it), before the notification comes back."""
        self._generation += 1
        self._entries.pop(user_id, None)

    # --- the listening connection ------------------------------------------------

    def _drop_all(self) -> None:
        self._generation += 1
        self._entries.clear()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == "*":
            self._drop_all()
        else:
            self.forget(payload)

    def _terminated(self, _conn: Any) -> None:
        self._generation += 1  # entries stay, for an outage; a new listener empties the cache
        self._lost.set()

    async def _listen(self) -> bool:
        if self._dsn is None:
            return False
        try:
            conn = await asyncpg.connect(self._dsn, timeout=10)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            OUTAGES.failed(DATABASE, f"key cache cannot listen for key changes: {type(exc).__name__}: {exc}"[:300])
            return False
        try:
            conn.add_termination_listener(self._terminated)
            await conn.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("key cache off: LISTEN failed (%s)", type(exc).__name__)
            await conn.close()
            return False
        self._drop_all()  # anything read before this connection listened may have missed a change
        self._listener = conn
        self._lost.clear()
        self._db_failed_at = None
        OUTAGES.recovered(DATABASE)
        return True

    async def _close_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                conn.remove_termination_listener(self._terminated)
                await conn.close(timeout=5)

    async def _keep_listening(self) -> None:
        while True:
            if self.listening:
                await self._lost.wait()
                logger.warning("key cache off: the listening connection was lost; reconnecting")
            await self._close_listener()
            self._generation += 1
            if not await self._listen():
                await asyncio.sleep(RECONNECT_S)
