"""Every ```sh block of README.md and docs/ runs as written, or is named here with what checks it.

A block runs in bash against a test stack: PostgreSQL (the test database),
the broker, one `hub worker` (metrics on a free port) and one `hub api` (a
free port). The only rewrites: `./hubw X` → `hub X` (hubw only forwards),
and the documented addresses `127.0.0.1:8080` / `127.0.0.1:9100` → the test
API's and worker's. `set -euo pipefail`: any failing command fails the test.
A new block that can neither run here nor is listed in ``CHECKED_ELSEWHERE``
fails the test, so a doc cannot promise a command nobody ran.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from support import HubProcess, make_settings, settings_env, wait_ready

from hub_stream.local.embedded import free_port
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Blocks that cannot run inside a test, by (file, first line): what checks them instead.
CHECKED_ELSEWHERE = {
    ("README.md", "./hubw dev"): "tests/integration/test_hub_dev.py starts `hub dev` and stops it",
    ("README.md", "./hubw test"): ".ci/run runs `./hubw test`",
    ("README.md", "export HUB_KAFKA_BOOTSTRAP=kafka1:9092,kafka2:9092"): (
        "hosts of the reader's; `hub db migrate`, `hub worker`, `hub api` with these variables are what"
        " every integration test starts (support.HubProcess) and docker-compose.yml runs"
    ),
    ("kafka.md", 'bootstrap="$(scripts/kafka.sh start | tail -n 1)"'): (
        "test_kafka_sh_starts_answers_and_stops (below) runs scripts/kafka.sh start, status and stop;"
        " the suite on a given broker is what .ci/run's stages do"
    ),
}


def sh_blocks() -> Iterator[tuple[str, str]]:
    """(file name, block text) of every ```sh block."""
    for path in DOCS:
        for match in re.finditer(r"^```sh\n(.*?)^```", path.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE):
            yield path.name, match.group(1)


BLOCKS = list(sh_blocks())


def first_line(block: str) -> str:
    return block.strip().splitlines()[0].strip()


def runnable() -> list[tuple[str, str]]:
    return [(name, block) for name, block in BLOCKS if (name, first_line(block)) not in CHECKED_ELSEWHERE]


def test_every_listed_block_still_exists() -> None:
    """A block removed or changed must leave the list too: the list says what was checked."""
    present = {(name, first_line(block)) for name, block in BLOCKS}
    assert set(CHECKED_ELSEWHERE) <= present, sorted(set(CHECKED_ELSEWHERE) - present)
    assert runnable(), "no runnable block found: the extraction is broken"


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, database_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    """The environment a block runs in: a worker and an API on free ports."""
    tmp = Path(tmp_path_factory.mktemp("docs"))
    api_port, metrics_port = free_port(), free_port()
    settings: HubSettings = make_settings(kafka_bootstrap, database_dsn, tmp, api_port=api_port)
    await ensure_topics(settings)
    worker = HubProcess("worker", settings, tmp / "worker.log", HUB_WORKER_METRICS_PORT=str(metrics_port))
    api = HubProcess("api", settings, tmp / "api.log")
    try:
        await wait_ready(f"http://127.0.0.1:{api_port}", [worker, api])
        deadline = time.monotonic() + 60  # the lag gauge is set by a 15 s timer
        while "hub_consumer_lag_records{" not in _get(f"http://127.0.0.1:{metrics_port}/metrics"):
            assert time.monotonic() < deadline, worker.log_tail()
            await asyncio.sleep(1)
        env = settings_env(settings)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["DOCS_API"] = f"127.0.0.1:{api_port}"
        env["DOCS_WORKER_METRICS"] = f"127.0.0.1:{metrics_port}"
        yield env
    finally:
        api.stop()
        worker.stop()


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


@pytest.fixture
async def clean_database(pool: asyncpg.Pool) -> None:
    """The pool fixture empties the application tables; a block starts from an empty hub."""


@pytest.mark.parametrize(("name", "block"), runnable(), ids=[f"{n}:{first_line(b)[:40]}" for n, b in runnable()])
def test_block_runs_as_written(name: str, block: str, stack: dict[str, str], clean_database: None, tmp_path: Path) -> None:
    script = re.sub(r"(^|\s)\./hubw ", r"\1hub ", block, flags=re.MULTILINE)
    script = script.replace("127.0.0.1:8080", stack["DOCS_API"]).replace("127.0.0.1:9100", stack["DOCS_WORKER_METRICS"])
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        env=stack,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{name}: block failed (exit {done.returncode})\n{block}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def test_kafka_sh_starts_answers_and_stops(tmp_path: Path) -> None:
    """docs/kafka.md: scripts/kafka.sh start prints the bootstrap last, status finds it, stop ends it."""
    env = {**os.environ, "HUB_KAFKA_WORKDIR": str(tmp_path / "kafka"), "HUB_KAFKA_PORT": str(free_port())}
    script = str(ROOT / "scripts" / "kafka.sh")
    try:
        started = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=180, check=False)
        assert started.returncode == 0, started.stderr[-2000:]
        bootstrap = started.stdout.strip().splitlines()[-1]
        assert bootstrap == f"127.0.0.1:{env['HUB_KAFKA_PORT']}", started.stdout
        status = subprocess.run([script, "status"], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert status.returncode == 0 and bootstrap in status.stdout, (status.stdout, status.stderr)
    finally:
        stopped = subprocess.run([script, "stop"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert stopped.returncode == 0, stopped.stderr
    after = subprocess.run([script, "status"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert after.returncode != 0, after.stdout
