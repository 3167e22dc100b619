"""API keys: creation, hashing, lookup, listing and revocation.

Only the SHA-256 of a secret is stored; the secret is returned once, at
creation. The API and the `hub keys` CLI share these functions.

Secrets are 256 random bits, so a plain SHA-256 is enough (no slow KDF is
needed against guessing); user ids carry 128 random bits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import asyncpg

from hub_stream.access.programs import missing_programs, transaction
from schemas.keys import KeyOut
from schemas.programs import is_program_id
from schemas.timefmt import format_utc as utc_text

logger = logging.getLogger(__name__)

Access = Literal["read", "write"]


@dataclass(frozen=True)
class NewKey:
    user_id: str
    api_key: str = field(repr=False)  # the secret: shown once, never stored, never printed


@dataclass(frozen=True)
class Grants:
    """What one key may do."""

    user_id: str
    system: bool = False
    programs: dict[str, Access] = field(default_factory=dict)

    def can_read(self, program_id: str) -> bool:
        return self.system or program_id in self.programs

    def can_write(self, program_id: str) -> bool:
        return self.system or self.programs.get(program_id) == "write"


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secrets_match(secret: str, stored_hash: bytes) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(secret), bytes(stored_hash))


async def create_key(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    system: bool = False,
    programs: dict[str, Access] | None = None,
) -> NewKey:
    """Store a new key and return it with its secret (the only time it is seen)."""
    user_id = "u_" + secrets.token_hex(16)
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO api_keys (user_id, secret_hash, is_system, grants) VALUES ($1, $2, $3, $4::jsonb)",
        user_id,
        hash_secret(secret),
        system,
        json.dumps(programs or {}),
    )
    return NewKey(user_id, secret)


async def count_active_keys(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM api_keys WHERE revoked_utc IS NULL"))


async def lookup_grants(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, secret: str
) -> Grants | None:
    """The grants of an active key whose secret matches, else None.

    Reads the key's row. The API answers most requests from
    ``hub_stream.access.key_cache`` instead, which drops a row when PostgreSQL
    announces a change to it.
    """
    found = await lookup_key_row(conn, user_id, secret)
    return None if found is None else found[1]


async def lookup_key_row(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, secret: str
) -> tuple[bytes, Grants] | None:
    """(stored secret hash, grants) of an active key whose secret matches, else None."""
    row = await conn.fetchrow(
        "SELECT secret_hash, is_system, grants FROM api_keys WHERE user_id = $1 AND revoked_utc IS NULL",
        user_id,
    )
    if row is None:
        hash_secret(secret)  # same work as a hit, so timing does not tell ids apart
        return None
    if not secrets_match(secret, row["secret_hash"]):
        return None
    programs = row["grants"]
    if isinstance(programs, str):
        programs = json.loads(programs)
    grants = Grants(user_id=user_id, system=bool(row["is_system"]), programs=dict(programs or {}))
    return bytes(row["secret_hash"]), grants


class UnknownPrograms(Exception):
    """A key was to grant programs that are not registered."""

    def __init__(self, program_ids: list[str]) -> None:
        super().__init__(f"not registered: {', '.join(program_ids)}")
        self.program_ids = program_ids


@dataclass(frozen=True)
class KeyRecord:
    """One stored key as listed: what it may do and when; never its secret."""

    user_id: str
    system: bool
    programs: dict[str, Access]
    created_utc: datetime
    revoked_utc: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_utc is None


def key_json(record: KeyRecord) -> dict[str, Any]:
    """The key as the API and the CLI list it: never its secret."""
    return KeyOut(
        UserId=record.user_id,
        System=record.system,
        Programs=dict(sorted(record.programs.items())),
        CreatedUtc=utc_text(record.created_utc),
        RevokedUtc=utc_text(record.revoked_utc) if record.revoked_utc else None,
    ).model_dump()


def _grants_of(value: Any) -> dict[str, Access]:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


def _record(row: asyncpg.Record) -> KeyRecord:
    return KeyRecord(
        user_id=row["user_id"],
        system=bool(row["is_system"]),
        programs=_grants_of(row["grants"]),
        created_utc=row["created_utc"],
        revoked_utc=row["revoked_utc"],
    )


_KEY_COLUMNS = "user_id, is_system, grants, created_utc, revoked_utc"


async def create_granted_key(
    db: asyncpg.Connection | asyncpg.Pool,
    *,
    system: bool = False,
    programs: dict[str, Access] | None = None,
) -> NewKey:
    """Create a system key, or a program key whose programs are all registered.

    Raises ``UnknownPrograms`` naming every unregistered id, and ValueError
    for a key that grants nothing or ids that break the program id rule. The
    granted programs are share-locked until the key is stored, so a
    concurrent program delete cannot leave a grant behind.
    """
    programs = dict(programs or {})
    if system == bool(programs):
        raise ValueError("a key is either system or grants at least one program, not both")
    bad = sorted(p for p in programs if not is_program_id(p))
    if bad:
        raise ValueError(f"invalid program id(s): {', '.join(bad)}")
    if any(access not in ("read", "write") for access in programs.values()):
        raise ValueError("program access must be read or write")
    async with transaction(db) as conn:
        missing = await missing_programs(conn, programs, lock=True)
        if missing:
            raise UnknownPrograms(missing)
        new = await create_key(conn, system=system, programs=programs)
    # An audit line: the user id and what it may do, never the secret.
    logger.info("created key %s (%s)", new.user_id, "system" if system else _grants_text(programs))
    return new


def _grants_text(programs: dict[str, Access]) -> str:
    return ", ".join(f"{p}={a}" for p, a in sorted(programs.items()))


async def list_keys(db: asyncpg.Connection | asyncpg.Pool) -> list[KeyRecord]:
    """Every key, revoked ones included, oldest first."""
    rows = await db.fetch(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_utc, user_id")
    return [_record(r) for r in rows]


async def get_key(db: asyncpg.Connection | asyncpg.Pool, user_id: str) -> KeyRecord | None:
    row = await db.fetchrow(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE user_id = $1", user_id)
    return _record(row) if row is not None else None


async def revoke_key(db: asyncpg.Connection | asyncpg.Pool, user_id: str) -> KeyRecord | None:
    """Revoke a key at once; None when there is no such key.

    Revoking a revoked key changes nothing (its first revocation time stays).
    The row's trigger announces the change at commit, and every API process
    drops the key from its cache when the announcement arrives
    (hub_stream/access/key_cache.py).
    """
    row = await db.fetchrow(
        "UPDATE api_keys SET revoked_utc = COALESCE(revoked_utc, now()) WHERE user_id = $1"
        f" RETURNING {_KEY_COLUMNS}",
        user_id,
    )
    if row is None:
        return None
    logger.info("revoked key %s", user_id)
    return _record(row)
