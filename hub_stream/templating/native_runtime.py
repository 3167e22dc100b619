"""What a native program (codegen.py) can reach at run time: these names and nothing else.

The generated function runs with no builtins; RUNTIME is its whole global
namespace besides the constants table (``_K0``, ``_K1``…).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from hub_stream.templating.compiler import is_true
from hub_stream.templating.errors import TemplateRenderError
from hub_stream.templating.net_helpers.core import net_print
from hub_stream.templating.runtime import DEFAULT_MAX_OUTPUT, DEFAULT_TIME_LIMIT_S
from hub_stream.templating.values import (
    FLOAT_TEXTS,
    UNDEFINED,
    _compact_literal,
    escape_html,
    escape_json,
    escape_json_unchecked,
    float_json,
    get_key,
    is_empty,
    js_string,
    json_literal,
    print_escaped,
)


class Fallback(Exception):
    """This render is for the closure program (which also reports any error)."""


CLOCK_EVERY_CHARS = 64 * 1024


def _grew(size: int, cap: int, deadline: float, line: int, column: int) -> int:
    """Output passed its last checkpoint: the cap (the closure program reports it), the clock; the next checkpoint."""
    if size > cap:
        raise Fallback
    if time.monotonic() > deadline:
        raise TemplateRenderError("render took longer than its time limit").at(line, column)
    return min(cap, size + CLOCK_EVERY_CHARS)


def _late(line: int, column: int) -> None:
    raise TemplateRenderError("render took longer than its time limit").at(line, column)


def _top(data: Mapping[str, Any] | None, root: Any, name: str) -> Any:
    """``@name`` in the top data frame: the data given, then ``@root``."""
    if data is not None and name in data:
        return data[name]
    return root if name == "root" else UNDEFINED


def _failed(error: Exception, line: int, column: int) -> None:
    """A helper failed: its own error, at the tag; anything else the closures report (naming the argument)."""
    if isinstance(error, TemplateRenderError):
        raise error.at(line, column)
    raise Fallback


class CallOptions:
    """The options a Handlebars.Net.Helpers helper gets from a native program: no hash, not a block."""

    __slots__ = ()
    hash: Mapping[str, Any] = MappingProxyType({})
    is_block = False


RUNTIME: dict[str, Any] = {
    # the render function's head (codegen.ENTRY)
    "_HTML": "html",
    "_JSON": "json",
    "_eh": escape_html,
    "_MAX_OUTPUT": DEFAULT_MAX_OUTPUT,
    "_TIME_LIMIT": DEFAULT_TIME_LIMIT_S,
    "_ROOT": "root",
    "_NEVER": float("inf"),  # the deadline of a program without loops (it reads no clock)
    "Fallback": Fallback,
    "RecursionError": RecursionError,
    # the body
    "U": UNDEFINED,
    "_gk": get_key,
    "_pe": print_escaped,
    "_js": js_string,
    "_jl": json_literal,
    "_jc": _compact_literal,  # {{json}} of an object or array: _jc(value, True) is json_literal(value)
    "_ej": escape_json,  # the JSON escape: its check runs inline (_QUOTE, _BSLASH, isprintable)
    "_ejx": escape_json_unchecked,  # and what remains of it
    "_QUOTE": '"',
    "_BSLASH": "\\",
    "_TRUE": "true",
    "_FALSE": "false",
    "_NULL": "null",
    "_FT": FLOAT_TEXTS,
    "_ft": float_json,
    "_np": net_print,
    "_opts": CallOptions(),
    "_Err": Exception,
    "_failed": _failed,
    "_t": is_true,
    "_empty": is_empty,
    "_top": _top,
    "_grew": _grew,
    "_STEP": CLOCK_EVERY_CHARS,
    "_late": _late,
    "_now": time.monotonic,
    "_join": "".join,
    "len": len,
    "type": type,
    "range": range,
    "enumerate": enumerate,
    "list": list,
    "dict": dict,
    "str": str,
    "int": int,
    "repr": repr,
    "float": float,
    "bool": bool,
}
