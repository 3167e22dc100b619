"""Python ports of the JavaScript helpers in handlebars.js's spec, keyed by their source.

``this`` of a JavaScript helper is ``options.context`` here; ``options.fn(ctx)``
and ``options.inverse(ctx)`` are the same; ``options.data`` is the ``@`` data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hub_stream.templating.values import js_string


def normalise(source: str) -> str:
    return re.sub(r"\s+", " ", source).strip()


def _opts(args: tuple[Any, ...]) -> Any:
    return args[-1]


_BY_SOURCE: dict[str, Callable[..., Any]] = {
    "function () { return 'missing: ' + arguments[arguments.length - 1].name; }": lambda *a: "missing: " + _opts(a).name,
    "function () { return 'helper missing: ' + arguments[arguments.length - 1].name; }": lambda *a: "helper missing: " + _opts(a).name,
    "function () { return 'ran: ' + arguments[arguments.length - 1].name; }": lambda *a: "ran: " + _opts(a).name,
    "function (x, y) { return x === y; }": lambda x, y, o: x == y and type(x) is type(y),
    "function (a, b) { return a + '-' + b; }": lambda a, b, o: js_string(a) + "-" + js_string(b),
    "function (options) { return options.fn(); }": lambda o: o.fn(),
    "function () { return 'foo'; }": lambda *a: "foo",
    "function (world) { return 'cruel ' + world.toUpperCase(); }": lambda w, o: "cruel " + w.upper(),
    "function (noun) { return 'Hello ' + noun; }": lambda n, o: "Hello " + js_string(n),
}

PORTED: dict[str, Callable[..., Any]] = {normalise(k): v for k, v in _BY_SOURCE.items()}
