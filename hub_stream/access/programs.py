"""The programs registry in PostgreSQL: each program's LB connection.

The one place the registry's SQL lives; the API and the `hub programs` CLI
both call these functions. The LB API key is a secret: it is held as a
``SecretStr`` (masked when printed), never returned by the API and never
logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import SecretStr

from schemas.programs import ProgramBody, ProgramOut, is_program_id
from schemas.timefmt import format_utc as utc_text

logger = logging.getLogger(__name__)

Db = asyncpg.Connection | asyncpg.Pool

SubscriptionRefs = Callable[[str], Awaitable[list[str]]]
"""``async (program_id) -> names`` of the subscriptions that reference a program,
as subscriber or as publisher. The subscriptions live in Faust tables, out of
PostgreSQL's reach, so the API is handed this function."""


async def no_subscription_refs(program_id: str) -> list[str]:
    """The stand-in used where subscriptions cannot be seen: reports none."""
    return []


class ProgramInUse(Exception):
    """A program cannot be deleted while subscriptions reference it."""

    def __init__(self, program_id: str, subscriptions: list[str]) -> None:
        super().__init__(f"program {program_id!r} is referenced by {len(subscriptions)} subscription(s)")
        self.program_id = program_id
        self.subscriptions = subscriptions


@dataclass(frozen=True)
class Program:
    """One registry entry."""

    program_id: str
    name: str
    lb_base_url: str | None
    lb_api_key: SecretStr | None
    creation_path: str
    success_email: str | None
    failure_email: str | None
    created_utc: datetime
    updated_utc: datetime

    @property
    def lb_api_key_set(self) -> bool:
        return self.lb_api_key is not None

    @property
    def lb_configured(self) -> bool:
        """True when the hub can call this program's LearningBuilder (URL and key both set)."""
        return self.lb_base_url is not None and self.lb_api_key is not None


def program_json(program: Program) -> dict[str, Any]:
    """The program as the API and the CLI show it: ``LbApiKeySet``, never the key."""
    return ProgramOut(
        ProgramId=program.program_id,
        Name=program.name,
        LbBaseUrl=program.lb_base_url,
        LbApiKeySet=program.lb_api_key_set,
        CreationPath=program.creation_path,
        SendSuccessEmailTo=program.success_email,
        SendFailureEmailTo=program.failure_email,
        CreatedUtc=utc_text(program.created_utc),
        UpdatedUtc=utc_text(program.updated_utc),
    ).model_dump()


_COLUMNS = (
    "program_id, name, lb_base_url, lb_api_key, creation_path,"
    " send_success_email_to, send_failure_email_to, created_utc, updated_utc"
)


def _program(row: asyncpg.Record) -> Program:
    key = row["lb_api_key"]
    return Program(
        program_id=row["program_id"],
        name=row["name"],
        lb_base_url=row["lb_base_url"],
        lb_api_key=SecretStr(key) if key is not None else None,
        creation_path=row["creation_path"],
        success_email=row["send_success_email_to"],
        failure_email=row["send_failure_email_to"],
        created_utc=row["created_utc"],
        updated_utc=row["updated_utc"],
    )


def _check_id(program_id: str) -> None:
    if not is_program_id(program_id):
        raise ValueError(f"invalid program id {program_id!r}")


@asynccontextmanager
async def transaction(db: Db) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction, from a pool or an open connection."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db


async def put_program(db: Db, program_id: str, body: ProgramBody) -> bool:
    """Create or replace a program; True when it was created.

    A replace overwrites every field, except that a body without ``LbApiKey``
    keeps the stored key (``LbApiKey: null`` clears it). ``CreatedUtc`` stays.
    """
    _check_id(program_id)
    key = body.LbApiKey.get_secret_value() if body.LbApiKey is not None else None
    keep = body.keeps_stored_lb_api_key
    # xmax = 0 only on a freshly inserted row: tells create from replace in one statement.
    created = await db.fetchval(
        "INSERT INTO programs (program_id, name, lb_base_url, lb_api_key, creation_path,"
        " send_success_email_to, send_failure_email_to)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (program_id) DO UPDATE SET"
        " name = EXCLUDED.name, lb_base_url = EXCLUDED.lb_base_url,"
        " lb_api_key = CASE WHEN $8 THEN programs.lb_api_key ELSE EXCLUDED.lb_api_key END,"
        " creation_path = EXCLUDED.creation_path,"
        " send_success_email_to = EXCLUDED.send_success_email_to,"
        " send_failure_email_to = EXCLUDED.send_failure_email_to,"
        " updated_utc = now()"
        " RETURNING (xmax = 0)",
        program_id,
        body.Name,
        body.LbBaseUrl,
        key,
        body.CreationPath,
        body.SendSuccessEmailTo,
        body.SendFailureEmailTo,
        keep,
    )
    # An audit line; never the LB API key itself.
    logger.info(
        "%s program %s (LB key %s)",
        "created" if created else "replaced",
        program_id,
        "kept" if keep else ("set" if key is not None else "cleared"),
        extra={"program_id": program_id},
    )
    return bool(created)


async def get_program(db: Db, program_id: str) -> Program | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM programs WHERE program_id = $1", program_id)
    return _program(row) if row is not None else None


async def list_programs(db: Db) -> list[Program]:
    """Every program, sorted by id (byte order, so case-sensitive and locale-free)."""
    rows = await db.fetch(f'SELECT {_COLUMNS} FROM programs ORDER BY program_id COLLATE "C"')
    return [_program(r) for r in rows]


async def missing_programs(db: Db, program_ids: Iterable[str], *, lock: bool = False) -> list[str]:
    """The ids among ``program_ids`` that are not registered, sorted.

    With ``lock`` (inside a transaction) the registered rows are share-locked,
    so a concurrent delete waits until the caller commits.
    """
    wanted = sorted(set(program_ids))
    if not wanted:
        return []
    lock_clause = " FOR SHARE" if lock else ""
    rows = await db.fetch(
        f"SELECT program_id FROM programs WHERE program_id = ANY($1::text[]){lock_clause}", wanted
    )
    found = {r["program_id"] for r in rows}
    return [p for p in wanted if p not in found]


async def registered_programs(db: Db, program_ids: Iterable[str]) -> set[str]:
    """The ids among ``program_ids`` that are registered."""
    wanted = set(program_ids)
    return wanted.difference(await missing_programs(db, wanted))


REGISTERED_TTL_S = 10.0  # a publisher found in the registry counts as registered this long (as in the API)
REGISTERED_MAX = 100_000  # publishers remembered; forgotten wholesale beyond that
LOOKUP_BUDGET_S = 4.0  # a failing registry lookup is retried this long, then the batch fails (the worker stops)
LOOKUP_TIMEOUT_S = 2.0  # one attempt


Lookup = Callable[[list[str]], Awaitable[Iterable[str]]]
"""``async (program ids) -> the registered ones among them``."""


class RegistryUnavailable(RuntimeError):
    """The programs registry did not answer: the batch cannot be decided, and nothing in it is rejected for that."""


class PublisherRegistry:
    """Which stream publishers are registered (PostgreSQL ``programs``), asked at most once per batch.

    Shared by the API (one publisher a request) and the worker's intake
    (the stream publishers of a batch). A yes is remembered for ``ttl_s``: a
    program deleted from the registry is still accepted that long. A no is
    never remembered, so a publisher registered after its first records were
    rejected is accepted from its next record on. A lookup that fails is
    retried for ``budget_s``, then raises RegistryUnavailable: never is a
    publisher taken as unknown because the database did not answer.
    """

    def __init__(
        self,
        lookup: Lookup,
        *,
        ttl_s: float = REGISTERED_TTL_S,
        budget_s: float = LOOKUP_BUDGET_S,
        attempt_s: float = LOOKUP_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._budget_s = budget_s
        self._attempt_s = attempt_s
        self._clock = clock
        self._known: dict[str, float] = {}  # publisher -> until when (clock) it counts as registered

    async def registered(self, publishers: Collection[str]) -> set[str]:
        """The registered ones among ``publishers``: from memory, else from one lookup of all the others."""
        now = self._clock()
        known = self._known
        unsure = sorted(p for p in publishers if known.get(p, 0.0) <= now)
        if not unsure:
            return set(publishers)
        found = set(await self._ask(unsure))
        until = self._clock() + self._ttl_s
        if len(known) + len(found) > REGISTERED_MAX:
            known.clear()  # bounded: only a flood of distinct publishers gets here
        for publisher in unsure:
            if publisher in found:
                known[publisher] = until
            else:
                known.pop(publisher, None)
        return {p for p in publishers if p in found or p not in unsure}

    async def _ask(self, publishers: list[str]) -> Iterable[str]:
        started = time.monotonic()
        delay, attempts = 0.1, 0
        while True:
            attempts += 1
            try:
                return await asyncio.wait_for(self._lookup(publishers), self._attempt_s)
            except Exception as exc:
                left = self._budget_s - (time.monotonic() - started)
                if left <= delay:
                    raise RegistryUnavailable(
                        f"the programs registry did not answer ({attempts} attempt(s) in"
                        f" {time.monotonic() - started:.1f} s): {exc!r}"
                    ) from exc
                logger.warning(
                    "looking %d publisher(s) up in the programs registry failed (%r); retrying",
                    len(publishers),
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(2 * delay, 1.0)


async def delete_program(
    db: Db, program_id: str, *, subscription_refs: SubscriptionRefs = no_subscription_refs
) -> bool:
    """Delete a program; False when it is not registered.

    Raises ``ProgramInUse`` while ``subscription_refs`` reports subscriptions.
    Keys lose their grant on the program in the same transaction, so a program
    registered later under the same id does not inherit old keys' access.
    """
    if await get_program(db, program_id) is None:
        return False
    refs = await subscription_refs(program_id)
    if refs:
        raise ProgramInUse(program_id, sorted(refs))
    async with transaction(db) as conn:
        deleted = await conn.fetchval("DELETE FROM programs WHERE program_id = $1 RETURNING true", program_id)
        if not deleted:
            return False
        await conn.execute(
            "UPDATE api_keys SET grants = grants - $1::text WHERE grants ? $1::text", program_id
        )
    logger.info("deleted program %s", program_id, extra={"program_id": program_id})
    return True
