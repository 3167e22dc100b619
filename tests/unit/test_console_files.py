"""The console's files as /console serves them: headers, no way out of the package, and
nothing that the strict Content-Security-Policy would block; the vendored axe-core as pinned."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api import console
from api.errors import error_middleware

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "api" / "static" / "console"


async def serve() -> TestClient:
    app = web.Application(middlewares=[error_middleware])
    console.setup(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_every_console_answer_carries_the_security_headers() -> None:
    client = await serve()
    try:
        for path in (
            "/console/",
            "/console/app.js",
            "/console/console.css",
            "/console/nothing.js",
            "/console/..%2Fdocs.html",
        ):
            r = await client.get(path, allow_redirects=False)
            assert r.headers["X-Frame-Options"] == "DENY", path
            csp = r.headers["Content-Security-Policy"]
            assert (
                "script-src 'self'" in csp
                and "frame-ancestors 'none'" in csp
                and "unsafe" not in csp
            ), path
            assert r.headers["Referrer-Policy"] == "no-referrer"
        r = await client.get("/console", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/console/"
        r = await client.get("/console/app.js")
        assert r.status == 200 and r.content_type == "text/javascript"
        r = await client.post("/console/")
        assert r.status == 405 and r.headers["X-Frame-Options"] == "DENY"
    finally:
        await client.close()


async def test_only_the_console_files_are_served() -> None:
    client = await serve()
    try:
        for path in (
            "/console/..%2Fdocs.html",
            "/console/.hidden.js",
            "/console/nothing.js",
            "/console/console.py",
        ):
            assert (await client.get(path)).status == 404, path
    finally:
        await client.close()


def test_the_page_has_no_inline_script_style_or_outside_url() -> None:
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert (
        "<style" not in html and " style=" not in html and re.search(r"\son[a-z]+=", html) is None
    )
    for path in STATIC.iterdir():
        text = path.read_text()
        loads = re.search(
            r"""(from\s*|import\(\s*|url\(\s*|src=|href=|fetch\(\s*)["'`]?(https?:)?//""", text
        )
        assert loads is None, f"{path.name} loads from outside: {loads}"
        assert "innerHTML" not in text and "eval(" not in text and "new Function" not in text, (
            path.name
        )


def test_vendored_axe_core_is_the_pinned_file() -> None:
    vendor = ROOT / "tests" / "vendor" / "axe-core"
    pinned = dict(
        line.split("=", 1)
        for line in (vendor / "PINNED").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert (
        hashlib.sha256((vendor / "axe.min.js").read_bytes()).hexdigest()
        == pinned["axe.min.js.sha256"]
    )
    assert (vendor / "LICENSE").read_text().startswith("Mozilla Public License")
