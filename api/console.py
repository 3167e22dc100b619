"""The staff console: static files under /console, served from the package.

The page adds no powers of its own: it calls the API with the key staff type
in. Every answer under /console carries a strict Content-Security-Policy (no
inline script or style, nothing from other origins), ``X-Frame-Options: DENY``
and ``Referrer-Policy: no-referrer``. See docs/console.md.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from api.openapi import Operation, Param
from schemas.common import Problem

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


# What _asset serves at most (no path, no dot file, a known type): the document says so too.
ASSET_NAME_SCHEMA = {"type": "string", "pattern": r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(html|js|css|svg)$"}


def _asset(name: str) -> tuple[bytes, str] | None:
    """The packaged file ``name`` and its content type; None for anything else."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in CONTENT_TYPES:
        return None
    path = resources.files("api") / "static" / "console" / name
    if not path.is_file():
        return None
    return path.read_bytes(), CONTENT_TYPES[suffix]


async def console_file(request: web.Request) -> web.Response:
    name = request.match_info.get("name") or "index.html"
    found = _asset(name)
    if found is None:
        raise web.HTTPNotFound()
    body, content_type = found
    return web.Response(body=body, content_type=content_type, charset="utf-8")


async def console_slash(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")


async def _secure(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Every answer under /console (files, redirects, problems) gets the security headers."""
    if request.path == "/console" or request.path.startswith("/console/"):
        response.headers.update(SECURITY_HEADERS)


OPERATIONS = [
    Operation(
        "GET",
        "/console",
        "Redirects to /console/.",
        {302: ("To /console/.", None)},
        auth=False,
        tag="operations",
    ),
    Operation(
        "GET",
        "/console/",
        "The staff console (served offline; it calls this API with the key typed in, see docs/console.md).",
        {200: ("HTML.", None)},
        auth=False,
        tag="operations",
    ),
    Operation(
        "GET",
        "/console/{name}",
        "One of the console's script and style files.",
        {200: ("The file.", None), 404: ("No such console file.", Problem)},
        params=(Param("name", "path", "a file name such as app.js", required=True, schema=ASSET_NAME_SCHEMA),),
        auth=False,
        tag="operations",
    ),
]


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(_secure)
    app.router.add_get("/console", console_slash)
    app.router.add_get("/console/", console_file)
    app.router.add_get("/console/{name}", console_file)
