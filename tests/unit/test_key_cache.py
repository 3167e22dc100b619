"""The API's key cache: what it may answer from memory, and what must read the row again.

The listening connection and its notifications are exercised against a real
PostgreSQL in tests/integration/test_auth.py; here a stand-in for the pool
counts row reads, so the rules are checked one by one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub_stream.access.key_cache import KeyCache
from hub_stream.access.keys import hash_secret

SECRET = "s3cret-of-the-key"


class Rows:
    """Answers ``fetchrow`` like the api_keys query; counts the reads; can hold one read open."""

    def __init__(self) -> None:
        self.reads = 0
        self.revoked = False
        self.hold: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def fetchrow(self, _query: str, user_id: str) -> dict[str, Any] | None:
        self.reads += 1
        row = None if self.revoked else {"secret_hash": hash_secret(SECRET), "is_system": False, "grants": '{"ACME": "write"}'}
        self.reading.set()
        if self.hold is not None:
            await self.hold.wait()  # the row as it was when read, answered later
        return row


class Listening(KeyCache):
    listening = True  # as if the notification connection were up


async def test_a_key_that_worked_is_answered_from_memory() -> None:
    rows, cache = Rows(), Listening(None)
    for _ in range(3):
        grants = await cache.lookup(rows, "u_1", SECRET)  # type: ignore[arg-type]
        assert grants is not None and grants.can_write("ACME")
    assert rows.reads == 1


async def test_a_wrong_secret_is_refused_even_when_the_key_is_cached() -> None:
    rows, cache = Rows(), Listening(None)
    assert await cache.lookup(rows, "u_1", SECRET) is not None  # type: ignore[arg-type]
    assert await cache.lookup(rows, "u_1", SECRET + "x") is None  # type: ignore[arg-type]
    assert await cache.lookup(rows, "u_1", SECRET[:-1]) is None  # type: ignore[arg-type]


async def test_a_notified_change_makes_the_next_lookup_read_the_row() -> None:
    rows, cache = Rows(), Listening(None)
    await cache.lookup(rows, "u_1", SECRET)  # type: ignore[arg-type]
    rows.revoked = True
    cache._notified(None, 0, "hub_api_keys", "u_1")
    assert await cache.lookup(rows, "u_1", SECRET) is None  # type: ignore[arg-type]
    assert rows.reads == 2


async def test_a_lookup_racing_a_change_does_not_store_what_it_read() -> None:
    rows, cache = Rows(), Listening(None)
    rows.hold = asyncio.Event()
    racing = asyncio.create_task(cache.lookup(rows, "u_1", SECRET))  # type: ignore[arg-type]
    await rows.reading.wait()  # it has read the row (still active) ...
    rows.revoked = True
    cache._notified(None, 0, "hub_api_keys", "u_1")  # ... and the revocation is announced before it stores it
    rows.hold.set()
    await racing
    rows.hold = None
    assert await cache.lookup(rows, "u_1", SECRET) is None  # type: ignore[arg-type]


async def test_truncate_drops_every_key() -> None:
    rows, cache = Rows(), Listening(None)
    await cache.lookup(rows, "u_1", SECRET)  # type: ignore[arg-type]
    await cache.lookup(rows, "u_2", SECRET)  # type: ignore[arg-type]
    cache._notified(None, 0, "hub_api_keys", "*")
    await cache.lookup(rows, "u_1", SECRET)  # type: ignore[arg-type]
    await cache.lookup(rows, "u_2", SECRET)  # type: ignore[arg-type]
    assert rows.reads == 4


async def test_nothing_is_cached_while_not_listening_or_after_the_ttl() -> None:
    rows = Rows()
    not_listening = KeyCache(None)
    for _ in range(2):
        await not_listening.lookup(rows, "u_1", SECRET)  # type: ignore[arg-type]
    assert rows.reads == 2
    expired = Listening(None, ttl_s=0.0)
    for _ in range(2):
        await expired.lookup(rows, "u_1", SECRET)  # type: ignore[arg-type]
    assert rows.reads == 4


class Switchable(KeyCache):
    listening = True  # the test says when the notification connection is lost


async def test_after_a_lost_listening_connection_lookups_read_the_row() -> None:
    rows, cache = Rows(), Switchable(None)
    await cache.lookup(rows, "u_1", SECRET)  # type: ignore[arg-type]
    cache.listening = False
    cache._terminated(None)
    await cache.lookup(rows, "u_1", SECRET)  # type: ignore[arg-type]
    assert rows.reads == 2


class DownRows(Rows):
    """PostgreSQL does not answer: every read fails as a refused connection does."""

    async def fetchrow(self, _query: str, user_id: str) -> dict[str, Any] | None:
        self.reads += 1
        raise ConnectionRefusedError(111, "Connect call failed")


async def test_while_the_database_is_down_a_cached_key_keeps_working_and_others_fail() -> None:
    cache = Switchable(None)
    assert await cache.lookup(Rows(), "u_1", SECRET) is not None  # type: ignore[arg-type]
    cache.listening = False  # the database went away: the listener is lost with it
    cache._terminated(None)
    down = DownRows()
    for _ in range(3):
        grants = await cache.lookup(down, "u_1", SECRET)  # type: ignore[arg-type]
        assert grants is not None and grants.can_write("ACME")
    assert down.reads == 1, "after one failed read, cached keys are answered without trying again at once"
    with pytest.raises(ConnectionRefusedError):
        await cache.lookup(down, "u_1", SECRET + "x")  # type: ignore[arg-type]
    with pytest.raises(ConnectionRefusedError):
        await cache.lookup(down, "u_2", SECRET)  # type: ignore[arg-type]


async def test_a_key_cached_longer_ago_than_the_grace_fails_in_an_outage() -> None:
    cache = Switchable(None, outage_grace_s=0.0)
    await cache.lookup(Rows(), "u_1", SECRET)  # type: ignore[arg-type]
    cache.listening = False
    with pytest.raises(ConnectionRefusedError):
        await cache.lookup(DownRows(), "u_1", SECRET)  # type: ignore[arg-type]
