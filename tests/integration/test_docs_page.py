"""GET /docs renders the OpenAPI spec in a real browser, with no network access needed: search,
examples from the document, and try-it forms that send with a key kept in the page's memory."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS
from support import hub_processes

from hub_stream.access.keys import create_key
from hub_stream.access.programs import put_program
from hub_stream.platform.settings import HubSettings
from schemas.programs import ProgramBody

pytestmark = pytest.mark.integration


async def served_spec(url: str) -> dict[str, Any]:
    """GET /openapi.json once the API answers."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(f"{url}/openapi.json") as r:
                    return dict(await r.json())
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"{url}/openapi.json did not answer")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (scripts/test-deps.sh installs it as root)")
async def test_docs_page_lists_every_endpoint_in_headless_chromium(settings: HubSettings, tmp_path: Path) -> None:
    with hub_processes(settings, tmp_path, workers=0, apis=1) as (_procs, urls):
        spec = await served_spec(urls[0])
        # The flags keep Chromium off the network entirely (this machine has none).
        out = await asyncio.to_thread(
            subprocess.run,
            [
                CHROMIUM,
                "--headless",
                *CHROMIUM_ARGS,
                f"--user-data-dir={tmp_path / 'chromium'}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                f"{urls[0]}/docs",
            ],
            capture_output=True,
            check=False,
            text=True,
            timeout=120,
        )
        dom = out.stdout
        error = re.search(r'<div id="error">([^<]*)</div>', dom)
        assert error is not None and error.group(1) == "", error
        listed = set(re.findall(r'data-method="(\w+)" data-path="([^"]+)"', dom))
        expected = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
        assert expected and listed == expected, f"missing on the page: {expected - listed}"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (scripts/test-deps.sh installs it as root)")
async def test_docs_page_searches_shows_examples_and_tries_a_call_with_a_key_kept_in_memory(
    settings: HubSettings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is in the test extras")
    system = await create_key(pool, system=True)
    await put_program(pool, "ACMEDOCS", ProgramBody(Name="Acme seen from /docs"))
    with hub_processes(settings, tmp_path, workers=0, apis=1) as (_procs, urls):
        url = urls[0]
        spec = await served_spec(url)
        total = sum(len(item) for item in spec["paths"].values())
        requested: list[str] = []
        csp_reports: list[str] = []
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context()
            page = await context.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.on("console", lambda m: csp_reports.append(m.text) if "Content Security Policy" in m.text else None)
            await page.goto(f"{url}/docs")
            await page.wait_for_selector("#operations > .op")
            assert await page.text_content("#count") == f"{total} of {total} operations"

            # Search: every word must match; the rest are hidden.
            await page.fill("#search", "parked")
            visible = await page.eval_on_selector_all("#operations > .op:not([hidden])", "ops => ops.map(o => o.dataset.path)")
            assert len(visible) == 3 and all("/parked" in p for p in visible), visible
            assert await page.text_content("#count") == f"3 of {total} operations"
            await page.fill("#search", "Drop  PARKED")
            assert await page.eval_on_selector_all(
                "#operations > .op:not([hidden])", "ops => ops.map(o => o.dataset.method + ' ' + o.dataset.path)"
            ) == ["DELETE /api/programs/{programId}/eventSubs/{publisherProgramId}/parked/{eventId}"]
            await page.fill("#search", "")

            # The example request and answers come from the document's examples.
            publish = page.locator('.op[data-method="POST"][data-path="/api/events"]')
            await publish.locator(":scope > summary").click()
            request_text = await publish.locator(".example-request").text_content() or ""
            assert request_text.startswith("POST /api/events\n") and '"PublisherEventId": "course-done-4711"' in request_text
            created = await publish.locator('.example-response[data-status="201"]').text_content() or ""
            assert "Location: /api/events/E:UNIV-" in created and '"EventId"' in created

            # Try it: without a key 401, with the system key the real list.
            listing = page.locator('.op[data-method="GET"][data-path="/api/programs"]')
            await listing.locator(":scope > summary").click()
            await listing.locator("button.send").click()
            await listing.locator('.answer[data-status="401"]').wait_for()
            await page.fill("#user-id", system.user_id)
            await page.fill("#api-key", system.api_key)
            await listing.locator("button.send").click()
            await listing.locator('.answer[data-status="200"]').wait_for()
            answer = await listing.locator(".answer").text_content() or ""
            assert answer.startswith("HTTP 200") and '"ProgramId": "ACMEDOCS"' in answer

            one = page.locator('.op[data-method="GET"][data-path="/api/programs/{programId}"]')
            await one.locator(":scope > summary").click()
            await one.locator('input[name="programId"]').fill("ACMEDOCS")
            await one.locator("button.send").click()
            await one.locator('.answer[data-status="200"]').wait_for()
            assert '"Name": "Acme seen from /docs"' in (await one.locator(".answer").text_content() or "")

            # The key was used and is nowhere but in the page's memory.
            stored = await page.evaluate(
                "async () => ({local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,"
                " dbs: (await indexedDB.databases()).length})"
            )
            assert stored == {"local": 0, "session": 0, "cookie": "", "dbs": 0}
            assert await context.cookies() == []
            assert system.api_key not in await page.content()
            assert not any(system.api_key in r for r in requested)
            assert all(r.startswith(url) for r in requested), requested
            assert csp_reports == []
            await page.click("#forget")
            assert await page.input_value("#api-key") == ""
            await browser.close()
