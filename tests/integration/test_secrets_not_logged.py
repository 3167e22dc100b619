"""Secrets stay out of logs: real `hub api` processes at DEBUG, then their log files are searched.

The same run checks that a key revoked through one API process stops
working on the other within a second.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from support import HubProcess, basic, hub_processes, make_settings, settings_env

from hub_stream.access.keys import create_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _wait_alive(http: aiohttp.ClientSession, url: str, procs: list[HubProcess]) -> None:
    """/healthz, not /readyz: no worker runs here, and the registry needs none."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for proc in procs:
            assert proc.process.poll() is None, f"{proc.command} exited:\n{proc.log_tail()}"
        try:
            async with http.get(f"{url}/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never answered /healthz")


async def test_lb_keys_and_api_secrets_never_reach_the_logs(
    kafka_bootstrap: str, database_dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path, log_level="DEBUG")
    tag = uuid.uuid4().hex
    lb_keys = [f"LBSECRET{tag}A", f"LBSECRET{tag}B", f"LBSECRET{tag}C"]
    wrong_secret = f"WRONGSECRET{tag}"
    admin_key = await create_key(pool, system=True)
    admin = basic(admin_key.user_id, admin_key.api_key)
    secrets = [*lb_keys, admin_key.api_key, wrong_secret]

    with hub_processes(settings, tmp_path, workers=0, apis=2) as (procs, (first, second)):
        async with aiohttp.ClientSession() as http:
            await _wait_alive(http, first, procs)
            await _wait_alive(http, second, procs)

            program = {"Name": "Acme", "LbBaseUrl": "https://lb.example.com", "LbApiKey": lb_keys[0]}
            acme1, acme2 = f"{first}/api/programs/ACME", f"{second}/api/programs/ACME"
            async with http.put(acme1, json=program, headers=admin) as r:
                assert r.status == 201
            async with http.put(acme2, json={**program, "LbApiKey": lb_keys[1]}, headers=admin) as r:
                assert r.status == 204
            for url in (f"{first}/api/programs/ACME", f"{second}/api/programs"):
                async with http.get(url, headers=admin) as r:
                    assert r.status == 200 and lb_keys[1] not in await r.text()
            # Refused bodies that carry a key: unknown field, bad value, not JSON.
            refused = [
                {**program, "LbApiKey": lb_keys[2], "X": 1},
                {**program, "LbApiKey": f"{lb_keys[2]} x"},
                {**program, "LbApiKey": lb_keys[2], "Name": 5},
            ]
            for doc in refused:
                async with http.put(acme1, json=doc, headers=admin) as r:
                    assert r.status == 400 and lb_keys[2] not in await r.text()
            raw = f'{{"Name": "Acme", "LbApiKey": "{lb_keys[2]}"'.encode()
            json_headers = {**admin, "Content-Type": "application/json"}
            async with http.put(acme1, data=raw, headers=json_headers) as r:
                assert r.status == 400 and lb_keys[2] not in await r.text()

            # Key creation on one process, use on the other, a failed login, revocation.
            async with http.post(f"{first}/api/keys", json={"System": True}, headers=admin) as r:
                assert r.status == 201
                made = await r.json()
            secrets.append(made["ApiKey"])
            user = basic(made["UserId"], made["ApiKey"])
            async with http.post(f"{second}/api/keys", json={"Programs": {"ACME": "write"}}, headers=user) as r:
                assert r.status == 201
                secrets.append((await r.json())["ApiKey"])
            async with http.get(f"{second}/api/keys", headers=basic(made["UserId"], wrong_secret)) as r:
                assert r.status == 401
            async with http.delete(f"{first}/api/keys/{made['UserId']}", headers=admin) as r:
                assert r.status == 204
            revoked_at = time.monotonic()
            async with http.get(f"{second}/api/keys", headers=user) as r:
                assert r.status == 401
            assert time.monotonic() - revoked_at < 1.0

    # The CLI path too: its own output and log lines.
    env = settings_env(make_settings(kafka_bootstrap, database_dsn, tmp_path, log_level="DEBUG"))
    put = await asyncio.create_subprocess_exec(
        str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hub"),
        "programs", "put", "ACME", "--name", "Acme", "--lb-api-key", "-",
        env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await put.communicate(f"{lb_keys[2]}\n".encode())
    assert put.returncode == 0, err
    assert await pool.fetchval("SELECT lb_api_key FROM programs WHERE program_id = 'ACME'") == lb_keys[2]

    logs = {p.log_path.name: p.log_path.read_text(errors="replace") for p in procs}
    logs["cli"] = (out + err).decode(errors="replace")
    assert all(p.log_path.stat().st_size > 0 for p in procs), "the API processes logged nothing: nothing was checked"
    everything = "\n".join(logs.values())
    # The audit lines are there, so the search below looked at real log output.
    for line in ("created program ACME", "replaced program ACME", f"created key {made['UserId']}",
                 f"revoked key {made['UserId']}", "API listening"):
        assert line in everything, line
    for name, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"a secret appears in {name}"
        for user_id, secret in [(made["UserId"], made["ApiKey"]), (admin_key.user_id, admin_key.api_key)]:
            assert base64.b64encode(f"{user_id}:{secret}".encode()).decode() not in text, f"credentials in {name}"
