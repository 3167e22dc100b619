"""schemathesis hooks of the fuzz run (tests/integration/test_api_fuzz.py).

- A pageToken can only come from a previous page, bound to its filters: the
  document cannot describe it so that a generated one is valid, so the run
  leaves the parameter out.
- The run must not revoke its own key: its user id is never sent as a path
  parameter (a well-formed id no key has goes instead).
- DELETE /api/keys/{userId} revokes: the key stays, shown with its
  RevokedUtc (docs/programs-and-keys.md). A GET after it that shows the key
  revoked is that design, not a deleted resource still served.
- The stateful phase infers links from ``Location``: POST /api/events answers
  ``/api/events/{EventId}``, which it then feeds to GET /api/events/{programId}
  (same shape, another parameter). An EventId is no program id: that URL is
  DELETE's, so GET answers 405, and a request whose path parameter breaks the
  document's pattern was never schema-valid.
- The console's static files are left out: the browser test and
  tests/unit/test_console_files.py cover them (GET /console redirects).
- One more check: every 4xx/5xx is a JSON problem (CONTRACT.md "Conventions").
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis

OWN_USER = os.environ.get("HUB_FUZZ_OWN_USER", "")
STAND_IN = "u_" + "0" * 32


@schemathesis.hook
def before_load_schema(ctx: Any, raw_schema: dict[str, Any]) -> None:
    paths = raw_schema.get("paths", {})
    for console in [path for path in paths if path == "/console" or path.startswith("/console/")]:
        del paths[console]  # static files (a redirect to /console/ included): tests/integration/test_console.py
    for item in paths.values():
        for operation in item.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [p for p in operation["parameters"] if p.get("name") != "pageToken"]


@schemathesis.hook
def map_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    if path_parameters and OWN_USER and path_parameters.get("userId") == OWN_USER:
        return {**path_parameters, "userId": STAND_IN}
    return path_parameters


def _breaks_a_path_pattern(case: schemathesis.Case) -> bool:
    """True when a path parameter (from a link) does not match the pattern the document gives it."""
    for name, value in (case.path_parameters or {}).items():
        for param in case.operation.definition.raw.get("parameters", []):
            pattern = param.get("schema", {}).get("pattern") if param.get("name") == name else None
            if pattern and not re.search(pattern, str(value)):
                return True
    return False


@schemathesis.hook
def filter_failure(ctx: Any, failure: Any, case: schemathesis.Case, response: schemathesis.Response) -> bool:
    if type(failure).__name__ == "RejectedPositiveData" and _breaks_a_path_pattern(case):
        return False
    if type(failure).__name__ == "UndefinedStatusCode" and response.status_code == 405 and _breaks_a_path_pattern(case):
        return False  # an EventId sent to GET /api/events/{programId}: that URL is DELETE's (docs/api.md)
    if type(failure).__name__ == "UseAfterFree" and case.operation.path == "/api/keys/{userId}":
        try:
            shown = json.loads(response.content)
        except ValueError:
            return True
        return not (isinstance(shown, dict) and shown.get("RevokedUtc"))
    return True


@schemathesis.check
def problem_shape(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
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
