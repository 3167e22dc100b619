"""GET /docs renders the OpenAPI spec in a real browser, with no network access needed."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS
from support import hub_processes

from hub_stream.platform.settings import HubSettings

pytestmark = pytest.mark.integration


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (scripts/test-deps.sh installs it as root)")
async def test_docs_page_lists_every_endpoint_in_headless_chromium(settings: HubSettings, tmp_path: Path) -> None:
    import aiohttp

    with hub_processes(settings, tmp_path, workers=0, apis=1) as (procs, urls):
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"{urls[0]}/openapi.json") as r:
                        spec = await r.json()
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        # The flags keep Chromium off the network entirely (this machine has none).
        out = subprocess.run(
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
            text=True,
            timeout=120,
        )
        dom = out.stdout
        error = re.search(r'<div id="error">([^<]*)</div>', dom)
        assert error is not None and error.group(1) == "", error
        listed = set(re.findall(r'data-method="(\w+)" data-path="([^"]+)"', dom))
        expected = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
        assert expected and listed == expected, f"missing on the page: {expected - listed}"
