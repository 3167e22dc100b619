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
                    # A Problem, or (processEvents) the sync answer with the problem's fields.
                    schema = response["content"]["application/json"]["schema"]
                    refs = {s["$ref"].rsplit("/", 1)[-1] for s in schema.get("anyOf", [schema])}
                    assert refs <= {"Problem", "SyncProblem"}, (method, path, status)
                    assert all({"error", "message", "details"} <= set(schemas[r]["required"]) for r in refs)
                for content in response.get("content", {}).values():
                    schema = content["schema"]
                    schema = schema.get("items", schema)
                    for one in schema.get("anyOf", [schema]):
                        assert one["$ref"].rsplit("/", 1)[-1] in schemas
    # The LB API key is a request field only: no answer schema names it.
    assert "LbApiKey" in schemas["ProgramBody"]["properties"]
    assert "LbApiKey" not in schemas["ProgramOut"]["properties"]


def test_the_document_states_the_rules_the_code_checks() -> None:
    """What the spec calls valid the hub accepts (schemathesis checks it live; these are the anchors)."""
    import re

    from schemas.common import NAME_PATTERN, TIMESTAMP_SCHEMA
    from schemas.programs import EMAILS_PATTERN, LB_BASE_URL_PATTERN, ProgramBody

    spec = build_spec(all_operations())
    for path, item in spec["paths"].items():
        for op in item.values():
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    assert "pattern" in param["schema"], (path, param["name"])
    key_body = spec["components"]["schemas"]["KeyBody"]
    assert key_body["properties"]["System"] == {"type": "boolean", "enum": [True], "description": "a system key (may do everything)"}
    assert (key_body["minProperties"], key_body["maxProperties"]) == (1, 1)
    # Patterns of the document against the model's own validation.
    assert re.search(NAME_PATTERN, "Acme") and not re.search(NAME_PATTERN, " \x1c\u3000")
    assert not re.search(NAME_PATTERN, "Ac\x00me")
    assert re.search(EMAILS_PATTERN, "a@b.org; c.d@e.example.com")
    ProgramBody.model_validate({"Name": "x", "SendSuccessEmailTo": "a@b.org; c.d@e.example.com"})
    assert re.search(LB_BASE_URL_PATTERN, "https://lb.example.com:8443/x/y")
    ProgramBody.model_validate({"Name": "x", "LbBaseUrl": "https://lb.example.com:8443/x/y"})
    assert not re.search(TIMESTAMP_SCHEMA["pattern"], "0001-01-01T00:00:00+01:00")
