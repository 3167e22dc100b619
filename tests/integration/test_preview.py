"""Seeing before sending, end to end: preview, dry run and the save-time check on the real stack.

A real worker, broker, PostgreSQL and the LB stand-in over HTTP (the
fixtures of test_sync: row cap 3, so a dry run's 3-row Sample is a whole batch).
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from typing import Any

import asyncpg
import pytest
import test_sync
from aiohttp.test_utils import TestClient
from support import settings_env
from test_sync import append, event, names, process, register, subscribe

from hub_stream.events.records import encode_deletion, encode_event
from schemas.timefmt import utc_now_text

pytestmark = pytest.mark.integration
stack = test_sync.stack  # the fixtures: a worker and the LB stand-in for this module, and the API
http = test_sync.http

STRICT = {  # "score": {{n}} unquoted: an event whose n is text gives a row that is not JSON
    "COURSE": {"importProcessId": 11, "batchRowTemplate": '{"email": "{{email}}", "score": {{n}}}'},
    "EXAM": {"importProcessId": 22, "batchRowTemplate": '{"email": "{{email}}", "exam": {{json n}}}'},
    "SPAM": {"action": "ignore"},
}


def texted(pub: str, n: int) -> dict[str, Any]:
    """A COURSE event whose ``n`` is text: STRICT's row for it is not JSON."""
    doc = event(pub, n)
    doc["PublisherEventData"]["n"] = "text"
    return doc


def published(pub: str, n: int, category: str = "COURSE", **data: Any) -> dict[str, Any]:
    """An event body as a publisher sends it (no EventId, no CreatedUtc)."""
    body = event(pub, n, category, **data)
    del body["EventId"], body["CreatedUtc"]
    return body


async def preview(http: TestClient, system: dict[str, str], sub: str, pub: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    r = await http.post(f"/api/programs/{sub}/eventSubs/{pub}/preview", json=body, headers=system)
    return r.status, await r.json()


async def test_preview_of_latest_live_events_and_of_given_ones_sends_and_stores_nothing(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, other = names()
    newcomer = f"NEW{sub[3:]}"
    await register(pool, lb, sub, pub, other)
    await register(pool, lb, newcomer)
    await subscribe(http, system, sub, pub, STRICT)
    events = [event(pub, 1), event(pub, 2, "EXAM"), event(other, 99), texted(pub, 3), event(pub, 4, "SPAM"), event(pub, 5)]
    await append(settings, [encode_event(e) for e in events] + [encode_deletion(pub, events[0]["EventId"], utc_now_text())])

    status, body = await preview(http, system, sub, pub)  # stored template, latest 10 live events
    assert status == 200, body
    results = body["Results"]
    assert [r["EventId"] for r in results] == [e["EventId"] for e in events if e["PublisherProgramId"] == pub][1:]
    exam, text, spam, five = results
    assert (exam["EntryKey"], exam["ImportProcessId"], exam["Row"]) == ("EXAM", 22, {"email": "p2@example.org", "exam": 2})
    assert text["Row"] is None and text["Error"]["error"] == "row_not_json" and text["Error"]["column"] == 38  # the "t" of text
    assert (spam["Action"], spam["Row"]) == ("ignore", None)
    assert five["Row"] == {"email": "p5@example.org", "score": 5} and five["Error"] is None
    assert body["Summary"] == {"Import": 2, "Ignore": 1, "Failed": 1}

    status, body = await preview(http, system, sub, pub, {"Latest": 1, "Events": [published(pub, 1)]})
    assert status == 422 and body["error"] == "conflicting_fields", body
    status, body = await preview(http, system, sub, pub, {"Latest": 1})
    assert status == 200 and [r["PublisherEventId"] for r in body["Results"]] == ["ev-5"]

    # A subscription that does not exist yet: the template and the events come in the body.
    plain = {"LbApiPayloadTemplate": '{"who": "{{@event.PublisherParticipantId}}"}', "ImportProcessId": 7}
    status, body = await preview(http, system, newcomer, pub, {**plain, "Events": [published(pub, 8), published(pub, 9)]})
    assert status == 200, body
    assert [(r["EventId"], r["ImportProcessId"], r["Row"]) for r in body["Results"]] == [
        (None, 7, {"who": "p8@example.org"}),
        (None, 7, {"who": "p9@example.org"}),
    ]
    status, body = await preview(http, system, newcomer, pub, {**plain, "Events": [published(pub, 8), {**published(pub, 9), "EventType": 5}, published(other, 1)]})
    assert status == 400 and body["error"] == "invalid_event", body
    assert [e["field"] for e in body["details"]["errors"]] == ["Events.1.EventType"]
    status, body = await preview(http, system, newcomer, pub, {**plain, "Events": [published(pub, 8), published(other, 1)]})
    assert status == 422 and body["error"] == "wrong_publisher", body
    assert [e["field"] for e in body["details"]["errors"]] == ["Events.1.PublisherProgramId"]

    status, body = await preview(http, system, newcomer, pub, {"LbApiPayloadTemplate": {"X": {"importProcessId": 1, "batchRowTemplate": "{{#each}}"}}})
    assert status == 422 and body["error"] == "invalid_template" and body["details"]["entry"] == "X", body
    status, body = await preview(http, system, newcomer, pub)
    assert status == 404 and body["error"] == "subscription_not_found" and "preview one before subscribing" in body["message"]

    # Nothing was sent or stored.
    assert lb.accepted == []
    r = await http.get(f"/api/programs/{newcomer}/eventSubs", headers=system)
    assert await r.json() == []
    r = await http.get(f"/api/programs/{sub}/syncs", headers=system)
    assert (await r.json())["Syncs"] == []


async def test_dry_run_plans_exactly_the_rows_the_next_sync_sends(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, other = names()
    await register(pool, lb, sub, pub, other)
    await subscribe(http, system, sub, pub, STRICT)
    events = [event(pub, n, "EXAM" if n % 3 == 0 else "COURSE") for n in range(1, 11)]
    events.insert(4, event(other, 99))
    events.append(event(pub, 11, "SPAM"))
    await append(settings, [encode_event(e) for e in events] + [encode_deletion(pub, events[1]["EventId"], utc_now_text())])

    r = await http.post(f"/api/processEvents?programId={sub}&dryRun=true", headers=system)
    plan = await r.json()
    assert r.status == 200 and plan["DryRun"] is True and plan["SyncId"] is None, plan
    [planned] = plan["Subscriptions"]
    assert (planned["Events"], planned["Imported"], planned["Ignored"], planned["LastSyncUtc"]) == (10, 9, 1, None)
    assert all(b["BatchId"] is None and len(b["Sample"]) == b["Rows"] <= 3 for b in planned["Batches"])
    # Nothing sent, nothing recorded, no cursor moved.
    assert lb.accepted == []
    assert (await (await http.get(f"/api/programs/{sub}/syncs", headers=system)).json())["Syncs"] == []
    assert (await (await http.get(f"/api/programs/{sub}/eventSubs/{pub}", headers=system)).json())["LastSyncUtc"] is None

    status, body = await process(http, system, sub)
    assert status == 200, body
    sent = [(b.import_process_id, b.rows) for b in lb.accepted]
    assert [(b["ImportProcessId"], b["Sample"]) for b in planned["Batches"]] == sent
    assert [b["Rows"] for b in planned["Batches"]] == [b["Rows"] for b in body["Subscriptions"][0]["Batches"]]

    r = await http.post(f"/api/processEvents?programId={sub}&dryRun=true", headers=system)
    again = await r.json()
    assert again["Subscriptions"][0]["Batches"] == [] and again["Subscriptions"][0]["LastSyncUtc"] == body["StartedUtc"]
    r = await http.post(f"/api/processEvents?programId={sub}&dryRun=maybe", headers=system)
    assert r.status == 400 and (await r.json())["error"] == "invalid_query"


async def test_saving_a_template_that_fails_on_the_latest_event_needs_force(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, _ = names()
    second = f"TWO{sub[3:]}"
    await register(pool, lb, sub, pub)
    await register(pool, lb, second)
    await subscribe(http, system, sub, pub, STRICT)  # no event yet: nothing to check against
    await append(settings, [encode_event(event(pub, 1)), encode_event(texted(pub, 2))])
    latest = f"/api/programs/{sub}/eventSubs/{pub}"

    lenient = {**STRICT, "COURSE": {"importProcessId": 11, "batchRowTemplate": '{"score": {{json n}}}'}}
    r = await http.patch(latest, json={"LbApiPayloadTemplate": lenient}, headers=system)
    assert r.status == 204, await r.text()
    r = await http.patch(latest, json={"LbApiPayloadTemplate": STRICT}, headers=system)
    problem = await r.json()
    assert r.status == 422 and problem["error"] == "template_fails_on_latest_event", problem
    assert problem["details"]["EntryKey"] == "COURSE" and problem["details"]["Error"]["error"] == "row_not_json"
    assert problem["details"]["EventId"].startswith(f"E:{pub}-")
    assert (await (await http.get(latest, headers=system)).json())["LbApiPayloadTemplate"] == lenient  # unchanged
    r = await http.patch(latest + "?force=true", json={"LbApiPayloadTemplate": STRICT}, headers=system)
    assert r.status == 204

    create = {"PublisherProgramId": pub, "LbApiPayloadTemplate": STRICT}
    r = await http.post(f"/api/programs/{second}/eventSubs", json=create, headers=system)
    assert r.status == 422 and (await r.json())["error"] == "template_fails_on_latest_event"
    r = await http.post(f"/api/programs/{second}/eventSubs?force=yes", json=create, headers=system)
    assert r.status == 400 and (await r.json())["error"] == "invalid_query"
    r = await http.post(f"/api/programs/{second}/eventSubs?force=true", json=create, headers=system)
    assert r.status == 201


async def hub(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`hub ARGS` in a child process (the API under test runs in this event loop: never block it)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub_stream.cli", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


async def test_staff_see_subscriptions_previews_and_syncs_from_a_terminal(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, _ = names()
    await register(pool, lb, sub, pub)
    await subscribe(http, system, sub, pub, STRICT)
    await append(settings, [encode_event(event(pub, 1)), encode_event(event(pub, 2, "EXAM"))])
    user, secret = base64.b64decode(system["Authorization"].split()[1]).decode().split(":", 1)
    env = {**settings_env(settings), "HUB_CLI_API_URL": str(http.make_url("")), "HUB_CLI_CREDENTIALS": f"{user}:{secret}"}

    code, out, _ = await hub(env, "subs", "list", sub)
    assert code == 0 and pub in out and "sync on" in out and "3 entries" in out, out
    code, out, _ = await hub(env, "subs", "show", sub, pub, "--json")
    assert code == 0 and json.loads(out)["LbApiPayloadTemplate"] == STRICT
    code, out, _ = await hub(env, "subs", "preview", sub, pub)
    assert code == 0 and "2 import, 0 ignore, 0 failed" in out, out

    await append(settings, [encode_event(texted(pub, 3))])
    code, out, _ = await hub(env, "subs", "preview", sub, pub, "--latest", "1")
    assert code == 4 and "FAIL" in out and "row_not_json at line 1, column 38" in out, out
    code, _, err = await hub(env, "subs", "show", sub, "GHOST")
    assert code == 1 and "subscription_not_found" in err
    code, _, err = await hub({**env, "HUB_CLI_CREDENTIALS": ""}, "subs", "list", sub)
    assert code == 2 and "HUB_CLI_CREDENTIALS" in err
    code, _, err = await hub({**env, "HUB_CLI_API_URL": "http://127.0.0.1:9"}, "subs", "list", sub)
    assert code == 3 and "did not answer" in err

    status, body = await process(http, system, sub)
    assert status == 422  # event 3 fails: the sync stops (OnRenderError stop)
    code, out, _ = await hub(env, "syncs", "list", sub)
    assert code == 0 and body["SyncId"] in out and "failed" in out, out
    code, out, _ = await hub(env, "syncs", "show", body["SyncId"], "--json")
    assert code == 0 and json.loads(out)["SyncId"] == body["SyncId"]
