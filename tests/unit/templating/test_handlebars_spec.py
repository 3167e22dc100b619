"""handlebars.js's own spec suite, run against our engine.

The cases are data: ``handlebars_spec/*.json`` were made from the public
handlebars.js repository's ``spec/*.js`` by ``handlebars_spec/extract.cjs``
(one case per ``expectTemplate(...)`` chain: template, input, partials,
options, expected output or error). Helpers there are JavaScript; the ones
ported to Python are in ``handlebars_spec/ported_helpers.py``, keyed by their
JavaScript source. Every case that does not run says why (``skip_reason``).

Our one deliberate difference, ``{{expr}}`` escaping for a JSON string, does
not show here: the suite renders with ``escape="html"``, handlebars.js's own
escaping.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from handlebars_spec.ported_helpers import PORTED, normalise

from hub_stream.templating import UNDEFINED, TemplateError, compile_template
from hub_stream.templating.parser import TemplateSyntaxError

SPEC_DIR = Path(__file__).parent / "handlebars_spec"
FILES = ["basic", "blocks", "builtins", "data", "helpers", "partials", "subexpressions", "whitespace-control", "strict", "regressions"]

# Compile and runtime options of handlebars.js that the engine has no equivalent for.
UNSUPPORTED_OPTIONS = {
    "strict": "strict mode (missing names raise) is not offered: rows print missing values as empty",
    "assumeObjects": "assumeObjects belongs to strict mode, not offered",
    "compat": "compat mode (Mustache-style recursive lookup) is not offered: names resolve in the current context only",
    "knownHelpersOnly": "knownHelpersOnly is a compiler optimisation of handlebars.js, not offered",
    "knownHelpers": "knownHelpers is a compiler optimisation of handlebars.js, not offered",
    "noEscape": "noEscape is not offered: the row path always escapes {{expr}} for JSON",
    "ignoreStandalone": "ignoreStandalone is not offered",
    "explicitPartialContext": "explicitPartialContext is not offered",
    "preventIndent": "preventIndent is not offered",
    "data": "data: false (no @ variables) is not offered",
}

# Options that change nothing the case shows: compiler hints, and data: false
# for a template without @ variables. Those cases run as they are.
NEUTRAL_OPTIONS = {"knownHelpers", "data"}

# Cases that differ on purpose or test JavaScript itself, by id, with the reason.
_HELPER_MISSING = "overriding helperMissing/blockHelperMissing is not offered: a missing helper with arguments is an error"
KNOWN_DIFFERENCES: dict[str, str] = {
    "regressions: Regressions / GH-437: Matching escaping #2": (
        "'{{a}}}' is read as {{a}} then the text '}', so a row can close an object right after a mustache"
        " ('{\"n\": {{json n}}}'); handlebars.js refuses it"
    ),
    "regressions: Regressions / GH-1065: Sparse arrays": "a JavaScript array with holes has no JSON form (the holes became null)",
    "helpers: helpers / name field / should include in simple block calls": _HELPER_MISSING,
    "helpers: helpers / name field / should include full id": _HELPER_MISSING,
    "helpers: helpers / name field / should include full id if a hash is passed": _HELPER_MISSING,
}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "$undefined" in value:
            return UNDEFINED
        if "$number" in value:
            return float(value["$number"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def _js_only(value: Any) -> str | None:
    """Why a decoded input cannot be a JSON value, or None."""
    text = json.dumps(value)
    if '"$function"' in text:
        return "the input holds JavaScript functions (our contexts are JSON values)"
    match = re.search(r'"\$class": "(\w+)"', text)
    if match:
        return f"the input holds a JavaScript {match.group(1)} object (our contexts are JSON values)"
    if '"$boxed"' in text or '"$cycle"' in text:
        return "the input holds a boxed primitive or a cycle (not a JSON value)"
    return None


def skip_reason(case: dict[str, Any]) -> str | None:
    if case["id"] in KNOWN_DIFFERENCES:
        return KNOWN_DIFFERENCES[case["id"]]
    if case["decorators"]:
        return "decorators are deprecated in handlebars.js and not offered"
    if case["globalEnv"]:
        return "registers on the global Handlebars environment (there is none: helpers are passed per render)"
    for key, value in (*case["compileOptions"].items(), *case["runtimeOptions"].items()):
        if key == "data" and isinstance(value, dict):  # @ variables given to the render
            continue
        if key in NEUTRAL_OPTIONS and not (key == "data" and "@" in case["template"] + json.dumps(case["partials"])):
            continue
        if key == "knownHelpersOnly" and value is False:
            continue
        if key in UNSUPPORTED_OPTIONS:
            return UNSUPPORTED_OPTIONS[key]
        return f"option {key!r} is not offered"
    why = _js_only(case["input"]) or _js_only(case["partials"]) or _js_only(case["runtimeOptions"])
    if why:
        return why
    for name, helper in case["helpers"].items():
        if name in ("helperMissing", "blockHelperMissing"):
            return _HELPER_MISSING
        if not isinstance(helper, dict) or "$function" not in helper:
            return f"helper {name!r} is not a function"
        if normalise(helper["$function"]) not in PORTED:
            return "a JavaScript helper not ported to Python"
    return None


def _cases() -> list[Any]:
    out = []
    for name in FILES:
        for case in json.loads((SPEC_DIR / f"{name}.json").read_text())["cases"]:
            reason = skip_reason(case)
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            out.append(pytest.param(case, id=case["id"], marks=marks))
    return out


# Helpers the spec registers in a beforeEach, for the cases of that describe block.
BEFORE_EACH_HELPERS = {"builtins: builtin helpers / #each /": {"detectDataInsideEach": lambda options: options.data.get("exclaim")}}


def run_case(case: dict[str, Any]) -> str:
    helpers = {name: PORTED[normalise(h["$function"])] for name, h in case["helpers"].items()}
    for prefix, registered in BEFORE_EACH_HELPERS.items():
        if case["id"].startswith(prefix):
            helpers = {**registered, **helpers}
    data = case["runtimeOptions"].get("data")
    template = compile_template(case["template"])
    return template.render(
        _decode(case["input"]), data=data if isinstance(data, dict) else None, helpers=helpers, partials=case["partials"], escape="html"
    )


@pytest.mark.parametrize("case", _cases())
def test_handlebars_spec(case: dict[str, Any]) -> None:
    if "throws" in case:
        with pytest.raises((TemplateError, TemplateSyntaxError)):
            run_case(case)
    else:
        assert run_case(case) == case["expected"]
