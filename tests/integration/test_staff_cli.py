"""`hub keys ...` and `hub programs ...` as staff run them: real processes on real PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hub_stream.access.keys import hash_secret, lookup_grants

pytestmark = pytest.mark.integration

HUB = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hub")
LB_SECRET = "LBKEY-cli-test-9f8e7d6c"


@pytest.fixture
def env(database_dsn: str) -> dict[str, str]:
    """Only the database: the staff commands need no broker and no running API."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return {**base, "HUB_DATABASE_URL": database_dsn}


def hub(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HUB, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_keys_create_system_bootstraps_a_fresh_install(env: dict[str, str], pool: asyncpg.Pool) -> None:
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == 0
    result = hub(env, "keys", "create", "--system")
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(r"(u_[0-9a-f]{32}):(\S{43,})\n", result.stdout)
    assert match, result.stdout
    user_id, secret = match.groups()
    assert "cannot show it again" in result.stderr and secret not in result.stderr
    grants = await lookup_grants(pool, user_id, secret)
    assert grants is not None and grants.system
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE user_id = $1", user_id)
    assert bytes(row["secret_hash"]) == hash_secret(secret) and secret not in str(dict(row))


async def test_keys_create_for_programs_list_and_revoke(env: dict[str, str], pool: asyncpg.Pool) -> None:
    for program_id in ("ACME", "BETA"):
        assert hub(env, "programs", "put", program_id, "--name", program_id).returncode == 0
    result = hub(env, "keys", "create", "--program", "ACME=write", "--program", "BETA=read")
    assert result.returncode == 0, result.stderr
    user_id, secret = result.stdout.strip().split(":", 1)
    grants = await lookup_grants(pool, user_id, secret)
    assert grants is not None and grants.programs == {"ACME": "write", "BETA": "read"} and not grants.system

    listed = ok_json(hub(env, "keys", "list"))
    assert [k["UserId"] for k in listed] == [user_id]
    assert listed[0]["Programs"] == {"ACME": "write", "BETA": "read"} and listed[0]["RevokedUtc"] is None
    assert secret not in json.dumps(listed)

    revoked = ok_json(hub(env, "keys", "revoke", user_id))
    assert revoked["UserId"] == user_id and revoked["RevokedUtc"]
    assert await lookup_grants(pool, user_id, secret) is None
    assert ok_json(hub(env, "keys", "list", "--active")) == []
    assert [k["UserId"] for k in ok_json(hub(env, "keys", "list"))] == [user_id]


async def test_keys_create_refuses_unregistered_programs(env: dict[str, str], pool: asyncpg.Pool) -> None:
    assert hub(env, "programs", "put", "ACME", "--name", "Acme").returncode == 0
    result = hub(env, "keys", "create", "--program", "ACME=read", "--program", "NOPE=write")
    assert result.returncode == 1
    assert "NOPE" in result.stderr and result.stdout == ""
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == 0


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--system", "--program", "ACME=read"],
        ["--program", "ACME=admin"],
        ["--program", "ACME"],
        ["--program", "a b=read"],
    ],
    ids=["neither", "both", "bad-access", "no-access", "bad-id"],
)
async def test_keys_create_refuses_bad_arguments(env: dict[str, str], pool: asyncpg.Pool, args: list[str]) -> None:
    result = hub(env, "keys", "create", *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == 0


async def test_keys_revoke_unknown_is_refused(env: dict[str, str], pool: asyncpg.Pool) -> None:
    result = hub(env, "keys", "revoke", "u_nobody")
    assert result.returncode == 1 and "u_nobody" in result.stderr


async def test_programs_put_get_list_and_keep_the_lb_key(env: dict[str, str], pool: asyncpg.Pool) -> None:
    result = hub(
        env, "programs", "put", "ACME",
        "--name", "Acme Board",
        "--lb-base-url", "https://acme.lb.example.com",
        "--lb-api-key", LB_SECRET,
        "--creation-path", "HUB_1",
        "--success-email", "ops@acme.example",
        "--failure-email", "it@acme.example",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "created" in result.stdout and LB_SECRET not in result.stdout + result.stderr
    shown = ok_json(hub(env, "programs", "get", "ACME"))
    assert shown["Name"] == "Acme Board" and shown["LbApiKeySet"] is True
    assert shown["LbBaseUrl"] == "https://acme.lb.example.com" and shown["CreationPath"] == "HUB_1"
    assert shown["SendSuccessEmailTo"] == "ops@acme.example" and shown["SendFailureEmailTo"] == "it@acme.example"
    assert "LbApiKey" not in shown

    # Replace without the key: the stored key stays, the other options are cleared.
    result = hub(env, "programs", "put", "ACME", "--name", "Acme 2")
    assert result.returncode == 0 and "replaced" in result.stdout
    shown = ok_json(hub(env, "programs", "get", "ACME"))
    assert shown["Name"] == "Acme 2" and shown["LbApiKeySet"] is True
    assert shown["LbBaseUrl"] is None and shown["CreationPath"] == "LH"
    assert await pool.fetchval("SELECT lb_api_key FROM programs WHERE program_id = 'ACME'") == LB_SECRET

    # The key from stdin, out of the process arguments.
    result = hub(env, "programs", "put", "ACME", "--name", "Acme", "--lb-api-key", "-", stdin="LBKEY-stdin\n")
    assert result.returncode == 0, result.stderr
    assert await pool.fetchval("SELECT lb_api_key FROM programs WHERE program_id = 'ACME'") == "LBKEY-stdin"
    assert hub(env, "programs", "put", "ACME", "--name", "Acme", "--clear-lb-api-key").returncode == 0
    assert ok_json(hub(env, "programs", "get", "ACME"))["LbApiKeySet"] is False

    assert hub(env, "programs", "put", "beta", "--name", "Beta").returncode == 0
    assert [p["ProgramId"] for p in ok_json(hub(env, "programs", "list"))] == ["ACME", "beta"]


@pytest.mark.parametrize(
    "args",
    [
        ["a b", "--name", "x"],
        ["x" * 26, "--name", "x"],
        ["ACME", "--name", "x", "--creation-path", "lh"],
        ["ACME", "--name", "x", "--creation-path", "A" * 16],
        ["ACME", "--name", "x", "--lb-base-url", "ftp://lb"],
        ["ACME", "--name", "x", "--success-email", "nobody"],
        ["ACME", "--name", " "],
        ["ACME"],
        ["ACME", "--name", "x", "--lb-api-key", "k", "--clear-lb-api-key"],
    ],
    ids=["id-space", "id-long", "path-lower", "path-long", "url", "email", "blank-name", "no-name", "key-and-clear"],
)
async def test_programs_put_refuses_bad_input(env: dict[str, str], pool: asyncpg.Pool, args: list[str]) -> None:
    result = hub(env, "programs", "put", *args)
    assert result.returncode == 2, result.stderr
    assert await pool.fetchval("SELECT count(*) FROM programs") == 0


async def test_programs_get_unknown_is_refused(env: dict[str, str], pool: asyncpg.Pool) -> None:
    result = hub(env, "programs", "get", "NOPE")
    assert result.returncode == 1 and "NOPE" in result.stderr


async def test_programs_delete_needs_force_because_it_cannot_see_subscriptions(
    env: dict[str, str], pool: asyncpg.Pool
) -> None:
    assert hub(env, "programs", "put", "ACME", "--name", "Acme").returncode == 0
    result = hub(env, "programs", "delete", "ACME")
    assert result.returncode == 2 and "DELETE /api/programs/ACME" in result.stderr
    assert await pool.fetchval("SELECT count(*) FROM programs") == 1
    result = hub(env, "programs", "delete", "ACME", "--force")
    assert result.returncode == 0, result.stderr
    assert await pool.fetchval("SELECT count(*) FROM programs") == 0
    result = hub(env, "programs", "delete", "ACME", "--force")
    assert result.returncode == 1 and "ACME" in result.stderr


def test_without_a_database_url_the_commands_say_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    result = subprocess.run([HUB, "keys", "list"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2 and "HUB_DATABASE_URL" in result.stderr


def test_an_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = "postgresql://hub:s3cretPW@127.0.0.1:1/hub"
    result = subprocess.run([HUB, "keys", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot connect to the database" in result.stderr and "Traceback" not in result.stderr
    assert "s3cretPW" not in result.stderr
