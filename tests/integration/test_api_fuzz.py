"""schemathesis against /openapi.json on a running hub: no 5xx, every error a problem.

A bounded number of generated requests per operation, sent with a system key
(and some without credentials), to a real API process backed by a worker.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from support import hub_processes, make_settings, wait_ready

from hub_stream.access import keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def live_api(kafka_bootstrap: str, database_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    settings = make_settings(kafka_bootstrap, database_dsn, tmp)

    async def system_key() -> str:
        conn = await asyncpg.connect(database_dsn)
        try:
            new = await keys.create_key(conn, system=True)
        finally:
            await conn.close()
        return "Basic " + base64.b64encode(f"{new.user_id}:{new.api_key}".encode()).decode()

    with hub_processes(settings, tmp, workers=1, apis=1) as (procs, urls):
        asyncio.run(wait_ready(urls[0], procs))
        yield urls[0], asyncio.run(system_key())


@schemathesis.check
def problem_shape(ctx: object, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every 4xx/5xx is JSON {"error", "message", "details"}: never HTML, never a trace."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} answer is not JSON: {response.content[:200]!r}") from None
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("details"), dict), body
    assert "Traceback" not in response.text
    return True


def test_no_server_errors_and_every_error_is_a_problem(live_api: tuple[str, str]) -> None:
    url, authorization = live_api
    # schemathesis' pytest plugin does not run on pytest 9: drive hypothesis directly.
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the spec lists too few operations"
    failures: list[str] = []
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        def exercise(case: schemathesis.Case) -> None:
            response = case.call(base_url=url, headers={"Authorization": authorization}, timeout=30)
            case.validate_response(response, checks=(not_a_server_error, problem_shape))

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:800]}")
    assert not failures, "\n\n".join(failures)
