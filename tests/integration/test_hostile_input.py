"""Hostile input gets a 4xx problem, never a 5xx (CONTRACT.md "Conventions"), on a running hub.

One API process and one worker; every request below once got a 500 with a
traceback (RecursionError, UnicodeEncodeError, asyncpg refusing a NUL) or a
non-JSON answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support import event_doc, hub_processes, make_settings, new_system_key, wait_ready

pytestmark = pytest.mark.integration

DEEP = 10_000
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, database_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running hub, a system key, and two registered programs (subscriber SUB, publisher PUB)."""
    tmp: Path = tmp_path_factory.mktemp("hostile")
    settings = make_settings(kafka_bootstrap, database_dsn, tmp)
    tag = uuid.uuid4().hex[:6]
    sub, pub = f"SUB{tag}", f"PUB{tag}"

    async def prepare(url: str) -> dict[str, str]:
        auth = await new_system_key(database_dsn)
        async with aiohttp.ClientSession(headers=auth) as http:
            for program in (sub, pub):
                async with http.put(f"{url}/api/programs/{program}", json={"Name": program}) as r:
                    assert r.status == 201, await r.text()
        return auth

    with hub_processes(settings, tmp, workers=1, apis=1) as (procs, urls):
        asyncio.run(wait_ready(urls[0], procs))
        auth = asyncio.run(prepare(urls[0]))
        yield {"url": urls[0], "auth": auth, "sub": sub, "pub": pub, "procs": procs}


async def call(hub: dict[str, Any], method: str, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One request; the status, the body (which must be a JSON problem when >= 400) and the headers."""
    sent = {**hub["auth"], **JSON, **(headers or {})}
    async with aiohttp.ClientSession() as http, http.request(method, hub["url"] + path, data=data, headers=sent) as r:
        raw = await r.read()
        assert r.status < 500, f"{method} {path[:80]}: {r.status} {raw[:300]!r}"
        body = json.loads(raw) if raw else {}
        if r.status >= 400:
            assert r.content_type == "application/json", (r.status, r.content_type, raw[:200])
            assert set(body) == {"error", "message", "details"}, body
        return r.status, body, dict(r.headers)


def _json_endpoints(hub: dict[str, Any]) -> list[tuple[str, str]]:
    sub, pub = hub["sub"], hub["pub"]
    return [
        ("POST", "/api/events"),
        ("PUT", f"/api/programs/{sub}"),
        ("POST", "/api/keys"),
        ("POST", f"/api/programs/{sub}/eventSubs"),
        ("PATCH", f"/api/programs/{sub}/eventSubs/{pub}"),
        ("POST", f"/api/programs/{sub}/eventSubs/{pub}/preview"),
        ("POST", f"/api/programs/{sub}/eventSubs/{pub}/parked/redeliver"),
    ]


async def test_json_nested_ten_thousand_deep_is_too_deep_on_every_json_endpoint(hub: dict[str, Any]) -> None:
    bodies = {
        "array": b"[" * DEEP + b"]" * DEEP,
        "in a field": b'{"PublisherEventData": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}",
    }
    for method, path in _json_endpoints(hub):
        for what, body in bodies.items():
            status, problem, _ = await call(hub, method, path, data=body)
            assert (status, problem["error"]) == (400, "too_deep"), (method, path, what, problem)


def _event(hub: dict[str, Any], data_text: str) -> bytes:
    """An otherwise valid event whose PublisherEventData is ``data_text`` (raw JSON text)."""
    doc = event_doc(hub["pub"], 1)
    doc["PublisherEventData"] = "__DATA__"
    return json.dumps(doc).replace('"__DATA__"', data_text).encode()


async def test_lone_surrogates_non_numbers_and_huge_numbers_are_refused(hub: dict[str, Any]) -> None:
    cases = {
        '{"name": "\\ud800"}': "invalid_text",
        '{"\\udfff": 1}': "invalid_text",
        '{"score": NaN}': "invalid_json",
        '{"score": Infinity}': "invalid_json",
        '{"score": -Infinity}': "invalid_json",
        '{"score": 1e400}': "invalid_json",
        '{"score": ' + "9" * 400 + "}": "invalid_json",
        '{"score": ' + "9" * 5000 + "}": "invalid_json",  # past Python's own digit limit
    }
    for data, code in cases.items():
        status, problem, _ = await call(hub, "POST", "/api/events", data=_event(hub, data))
        assert (status, problem["error"]) == (400, code), (data[:40], problem)
    # A real pair of surrogates is one real character: accepted.
    status, body, _ = await call(hub, "POST", "/api/events", data=_event(hub, '{"smile": "\\ud83d\\ude00"}'))
    assert status == 201, body


async def test_nul_in_credentials_key_ids_and_names_is_400(hub: dict[str, Any]) -> None:
    nul_basic = "Basic " + base64.b64encode(b"u_\x00abc:x").decode()
    status, problem, _ = await call(hub, "GET", "/api/programs", headers={"Authorization": nul_basic})
    assert (status, problem["error"]) == (400, "invalid_text"), problem
    status, problem, _ = await call(hub, "GET", "/api/keys/a%00b")
    assert (status, problem["error"]) == (400, "invalid_text"), problem
    status, problem, _ = await call(hub, "DELETE", "/api/keys/a%00b")
    assert (status, problem["error"]) == (400, "invalid_text"), problem
    body = json.dumps({"Name": "Acme\u0000Corp"}).encode()
    status, problem, _ = await call(hub, "PUT", f"/api/programs/{hub['sub']}", data=body)
    assert status == 400 and problem["details"]["errors"][0]["field"] == "Name", problem


async def test_preview_parked_and_event_paths_answer_hostile_input_with_a_4xx(hub: dict[str, Any]) -> None:
    """The request paths added for preview, parked events and the split event routes: no 5xx."""
    sub, pub = hub["sub"], hub["pub"]
    preview = f"/api/programs/{sub}/eventSubs/{pub}/preview"
    cases: list[tuple[str, str, bytes | None]] = [
        ("POST", preview, b'{"Events": [' + _event(hub, '{"name": "\\ud800"}') + b"]}"),
        ("POST", preview, b'{"Latest": 1e400}'),
        ("POST", preview, b'{"Latest": NaN}'),
        ("POST", preview, b'{"LbApiPayloadTemplate": "{\\"a\\": \\"\\u0000\\"}", "Latest": 1}'),
        ("POST", f"/api/programs/{sub}/eventSubs/{pub}/parked/redeliver", b'{"EventIds": ["E:a\\u0000b"]}'),
        ("GET", f"/api/programs/{sub}/eventSubs/{pub}/parked?pageToken=%00", None),
        ("GET", "/api/events/a%00b", None),
        ("DELETE", "/api/events/E:a%00b", None),
    ]
    for method, path, body in cases:
        status, problem, _ = await call(hub, method, path, data=body)
        assert 400 <= status < 500, (method, path, body and body[:80], status, problem)


async def test_a_url_over_8_kb_is_414_as_json(hub: dict[str, Any]) -> None:
    status, problem, _ = await call(hub, "GET", f"/api/events/{hub['pub']}?eventType=" + "x" * 9000)
    assert (status, problem["error"]) == (414, "uri_too_long"), problem


async def test_a_template_of_3000_nested_subexpressions_is_422(hub: dict[str, Any]) -> None:
    template = '{"x": {{json ' + "(json " * 3000 + "a" + ")" * 3000 + "}}}"
    body = {"PublisherProgramId": hub["pub"], "LbApiPayloadTemplate": template, "ImportProcessId": 1}
    status, problem, _ = await call(hub, "POST", f"/api/programs/{hub['sub']}/eventSubs", data=json.dumps(body).encode())
    assert (status, problem["error"]) == (422, "invalid_template"), problem
    # The object form, its entry's row template nested the same way.
    entries = {"_default": {"importProcessId": 1, "batchRowTemplate": template}}
    body = {"PublisherProgramId": hub["pub"], "LbApiPayloadTemplate": entries}
    status, problem, _ = await call(hub, "POST", f"/api/programs/{hub['sub']}/eventSubs", data=json.dumps(body).encode())
    assert (status, problem["error"]) == (422, "invalid_template"), problem


async def test_no_traceback_was_logged_for_any_of_it(hub: dict[str, Any]) -> None:
    for proc in hub["procs"]:
        text = proc.log_path.read_text(errors="replace")
        assert "Traceback" not in text and "RecursionError" not in text, proc.log_tail(60)
