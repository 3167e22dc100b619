"""schemathesis against /openapi.json on a running hub: 0 server errors, 0 schema mismatches.

The schemathesis CLI with every check (server errors, status codes, content
types, response schemas, schema-valid data accepted, schema-invalid data
rejected, auth, use after free, and every 4xx/5xx a JSON problem: the hooks
in fuzz_hooks.py) and every phase, stateless and stateful, with a system key,
against a real API process backed by a worker. Bounded for CI by
HUB_FUZZ_EXAMPLES per operation; set it higher for a long run.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import hub_processes, make_settings, new_system_key, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Bounded for CI (about two minutes); HUB_FUZZ_EXAMPLES=200 (and more) for a long run.
EXAMPLES_PER_OPERATION = int(os.environ.get("HUB_FUZZ_EXAMPLES", "10"))


@pytest.fixture(scope="module")
def live_api(kafka_bootstrap: str, database_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    settings = make_settings(kafka_bootstrap, database_dsn, tmp)

    with hub_processes(settings, tmp, workers=1, apis=1) as (procs, urls):
        asyncio.run(wait_ready(urls[0], procs))
        yield urls[0], asyncio.run(new_system_key(database_dsn))["Authorization"]


FUZZ_HOOKS = Path(__file__).with_name("fuzz_hooks.py")


def test_schemathesis_run_stateless_and_stateful_finds_nothing(live_api: tuple[str, str], tmp_path: Path) -> None:
    """The schemathesis CLI, every check, every phase (stateful included), a bounded number of examples."""
    url, authorization = live_api
    own_user = base64.b64decode(authorization.split()[1]).decode().split(":", 1)[0]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks", "HUB_FUZZ_OWN_USER": own_user, "PYTHONPATH": str(FUZZ_HOOKS.parent)}
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(FUZZ_HOOKS.with_name("schemathesis.toml")),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: {authorization}",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        "16",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    # In tmp_path: schemathesis keeps a cache directory where it runs.
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-4000:]
    # The run did not revoke the key it ran with.
    check = subprocess.run(
        [sys.executable, "-c", f"import urllib.request as u; print(u.urlopen(u.Request('{url}/api/keys', headers={{'Authorization': '{authorization}'}})).status)"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert check.stdout.strip() == "200", check.stderr[-2000:]
