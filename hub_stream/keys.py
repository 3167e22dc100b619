"""API keys: creation, hashing and lookup. Only the SHA-256 of a secret is stored.

Secrets are 256 random bits, so a plain SHA-256 is enough (no slow KDF is
needed against guessing); user ids carry 128 random bits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Literal

import asyncpg

Access = Literal["read", "write"]


@dataclass(frozen=True)
class NewKey:
    user_id: str
    api_key: str  # the secret: shown once, never stored


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

    No cache: every request reads the key's row (a primary-key lookup), so a
    revocation takes effect on every API instance at the next request.
    """
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
    return Grants(user_id=user_id, system=bool(row["is_system"]), programs=dict(programs or {}))
