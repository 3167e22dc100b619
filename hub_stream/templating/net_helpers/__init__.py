"""Handlebars.Net.Helpers for the template engine: String, Math, DateTime, Boolean, Enumerable, Regex, Url, Constants.

The vendor's hub renders templates with Handlebars.Net and that library, so
stored templates call ``{{String.Uppercase name}}``, ``{{Math.Add a b}}`` or
``{{#String.StartsWith s "x"}}…{{else}}…{{/String.StartsWith}}``. Each helper
here has the library's name, argument order and result (docs/templates.md
lists them, with what differs). ``register`` adds them to the engine's
built-in helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub_stream.templating.net_helpers import (  # noqa: F401 - each module registers its helpers
    boolean_helpers,
    constants_helpers,
    datetime_helpers,
    enumerable_helpers,
    math_helpers,
    regex_helpers,
    string_helpers,
    url_helpers,
)
from hub_stream.templating.net_helpers.core import HELPERS, net_print

CATEGORIES = ("Boolean", "Constants", "DateTime", "Enumerable", "Math", "Regex", "String", "Url")


def register(helpers: dict[str, Callable[..., Any]], aliases: dict[str, str], printers: dict[str, Callable[[Any], Any]]) -> None:
    """Add the helpers, their names in lower case (Handlebars.Net matches names ignoring case)
    and how a mustache prints their results (True and False, as .NET prints booleans)."""
    for name, helper in HELPERS.items():
        helpers[name] = helper
        aliases[name.lower()] = name
        printers[name] = net_print


def count_by_category() -> dict[str, int]:
    return {c: sum(1 for n in HELPERS if n.startswith(c + ".")) for c in CATEGORIES}
