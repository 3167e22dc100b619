"""The OpenAPI document covers every route and is valid OpenAPI 3.1 in shape."""

from __future__ import annotations

from api.app import create_app
from api.openapi import build_spec
from api.routes import all_operations
from hub_stream.platform.settings import HubSettings


def _routes() -> set[tuple[str, str]]:
    app = create_app(HubSettings(kafka_bootstrap="unused:1"))
    found = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        found.add((route.method, path))
    return found


def test_every_route_has_an_entry_and_every_entry_a_route() -> None:
    spec = build_spec(all_operations())
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    routes = _routes()
    assert routes - documented == set(), "routes without an OpenAPI entry"
    assert documented - routes == set(), "OpenAPI entries without a route"


def test_spec_shape() -> None:
    spec = build_spec(all_operations())
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["basicAuth"] == {
        "type": "http",
        "scheme": "basic",
        "description": "userId:apiKey",
    }
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op["responses"], (method, path)
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Problem", (method, path, status)
                for content in response.get("content", {}).values():
                    schema = content["schema"]
                    ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
                    assert ref.rsplit("/", 1)[-1] in schemas
    # The LB API key is a request field only: no answer schema names it.
    assert "LbApiKey" in schemas["ProgramBody"]["properties"]
    assert "LbApiKey" not in schemas["ProgramOut"]["properties"]
