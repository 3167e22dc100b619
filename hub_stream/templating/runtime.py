"""Render-time support: scopes, data frames, budgets, helper calls and the built-in helpers.

The compiler (compiler.py) turns the AST into closures ``(scope, state) -> str``
that use what is here. Lookups reach only dict keys, list indexes (and
``length``), block parameters and the engine's own ``@`` data: never an
attribute of a Python object.

Helpers are plain functions ``helper(*args, options)``; BUILTIN_HELPERS maps
names to them, and ``Template.render(helpers=...)`` adds or overrides names
per render.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from hub_stream.templating.errors import TemplateError, TemplateRenderError
from hub_stream.templating.parser import Expr, simple_name
from hub_stream.templating.values import (
    UNDEFINED,
    SafeString,
    get_key,
    is_empty,
    is_falsy,
    js_string,
    json_literal,
)

logger = logging.getLogger(__name__)

MAX_DEPTH = 64
DEFAULT_MAX_OUTPUT = 1024 * 1024
DEFAULT_TIME_LIMIT_S = 1.0
CHECK_EVERY = 256  # helper calls and iterations between two readings of the clock
_CLOCK_EVERY_CHARS = 64 * 1024  # output between two readings of the clock

__all__ = ["BUILTIN_HELPERS", "HELPER_ALIASES", "MAX_DEPTH", "RESULT_PRINTERS", "DataFrame", "Options", "Scope", "State", "TemplateRenderError", "call_helper",
           "helper_name_of"]


class DataFrame:
    """The ``@`` variables of one block level; ``@../x`` reads the parent frame."""

    __slots__ = ("parent", "vars")

    def __init__(self, vars: dict[str, Any], parent: DataFrame | None) -> None:
        self.vars = vars
        self.parent = parent

    def get(self, name: str) -> Any:
        frame: DataFrame | None = self
        while frame is not None:
            value = frame.vars.get(name, UNDEFINED)
            if value is not UNDEFINED or name in frame.vars:
                return value
            frame = frame.parent
        return UNDEFINED


class Scope:
    __slots__ = ("context", "data", "depth", "params", "parent", "partials")

    def __init__(
        self,
        context: Any,
        parent: Scope | None,
        data: DataFrame,
        params: Mapping[str, Any],
        partials: Mapping[str, Any],
        depth: int,
    ) -> None:
        self.context = context
        self.parent = parent
        self.data = data
        self.params = params
        self.partials = partials
        self.depth = depth


class State:
    """Per-render settings and budgets: output size and time.

    Every piece of output is counted as it is made (``size``), so the cap stops
    a render as the output grows, not after; the clock is read every
    CHECK_EVERY helper calls and iterations and every 64 KiB of output.
    """

    __slots__ = ("custom", "deadline", "escape", "helpers", "max_output", "next_check", "ops", "size")

    def __init__(self, helpers: Mapping[str, Callable[..., Any]], escape: Callable[[str], str], max_output: int, deadline: float) -> None:
        self.helpers = helpers
        self.custom = helpers is not BUILTIN_HELPERS  # helpers given to this render: names may mean them
        self.escape = escape
        self.max_output = max_output
        self.deadline = deadline
        self.ops = 0
        self.size = 0
        self.next_check = min(max_output, _CLOCK_EVERY_CHARS)

    def tick(self) -> None:
        self.ops += 1
        if self.ops % CHECK_EVERY == 0 and time.monotonic() > self.deadline:
            raise TemplateRenderError("render took longer than its time limit")

    def grew(self) -> None:
        """``size`` passed ``next_check``: the output cap, then the clock."""
        if self.size > self.max_output:
            raise TemplateRenderError(f"output larger than {self.max_output} characters")
        if time.monotonic() > self.deadline:
            raise TemplateRenderError("render took longer than its time limit")
        self.next_check = min(self.max_output, self.size + _CLOCK_EVERY_CHARS)

    def made(self, text: str, counted_from: int) -> str:
        """Count what a block, partial or helper returned beyond what its parts counted already."""
        extra = len(text) - (self.size - counted_from)
        if extra > 0:
            self.size += extra
            if self.size > self.next_check:
                self.grew()
        return text


CompiledProgram = Callable[[Scope, State], str]


def call_helper(name: str, helper: Callable[..., Any], args: list[Any], options: Options) -> Any:
    """Call a helper; its failure is a TemplateRenderError naming the helper (and the argument, for a wrong count)."""
    try:
        return helper(*args, options)
    except TemplateError:
        raise
    except RecursionError:
        raise TemplateRenderError(f"helper {name!r} recursed too deeply") from None
    except TypeError as exc:
        raise TemplateRenderError(_arity_problem(name, helper, args) or f"helper {name!r} failed: TypeError: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - whatever a helper raises is the template's error
        raise TemplateRenderError(f"helper {name!r} failed: {type(exc).__name__}: {exc}") from None


def _arity_problem(name: str, helper: Callable[..., Any], args: list[Any]) -> str | None:
    """What is wrong with the number of arguments, in the template's terms; None when it is right."""
    try:
        signature = inspect.signature(helper)
    except (TypeError, ValueError):
        return None
    positional = [p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()) or not positional:
        return None
    wanted = positional[:-1]  # the last one receives the options
    required = [p for p in wanted if p.default is p.empty]
    names = ", ".join(p.name for p in wanted) or "none"
    if len(args) < len(required):
        missing = wanted[len(args)]
        return f"helper {name!r}: argument {len(args) + 1} ({missing.name}) is missing; it takes {len(wanted)} ({names})"
    if len(args) > len(wanted):
        return f"helper {name!r}: argument {len(wanted) + 1} is one too many; it takes {len(wanted)} ({names})"
    return None


class Options:
    """What a helper gets last: fn, inverse, hash, data and the current context."""

    __slots__ = ("_inverse", "_param_names", "_program", "_scope", "_state", "hash", "name")

    def __init__(
        self,
        name: str,
        hash: dict[str, Any],
        scope: Scope,
        state: State,
        program: CompiledProgram | None,
        inverse: CompiledProgram | None,
        param_names: tuple[str, ...] = (),
    ) -> None:
        self._param_names = param_names
        self.name = name
        self.hash = hash
        self._scope = scope
        self._state = state
        self._program = program
        self._inverse = inverse

    @property
    def context(self) -> Any:
        return self._scope.context

    @property
    def data(self) -> DataFrame:
        return self._scope.data

    @property
    def is_block(self) -> bool:
        return self._program is not None

    def fn(self, context: Any = UNDEFINED, *, data: dict[str, Any] | None = None, block_params: list[Any] | None = None) -> str:
        return self._run(self._program, context, data, block_params)

    def inverse(self, context: Any = UNDEFINED, *, data: dict[str, Any] | None = None) -> str:
        return self._run(self._inverse, context, data, None)

    def _run(self, program: CompiledProgram | None, context: Any, data: dict[str, Any] | None, block_params: list[Any] | None) -> str:
        if program is None:
            return ""
        scope = self._scope
        if context is UNDEFINED:
            context = scope.context
        if scope.depth >= MAX_DEPTH:
            raise TemplateRenderError(f"blocks nested deeper than {MAX_DEPTH} at render time")
        parent = scope if context is not scope.context else scope.parent
        frame = DataFrame(data, scope.data) if data else scope.data
        params = scope.params
        names = self._param_names
        if block_params and names:
            params = {**params, **dict(zip(names, block_params, strict=False))}
        child = Scope(context, parent, frame, params, scope.partials, scope.depth + 1)
        return program(child, self._state)


def helper_if(conditional: Any, options: Options) -> str:
    if is_empty(conditional) or (is_falsy(conditional) and not options.hash.get("includeZero")):
        return options.inverse(options.context)
    return options.fn(options.context)


def helper_unless(conditional: Any, options: Options) -> str:
    if is_empty(conditional) or (is_falsy(conditional) and not options.hash.get("includeZero")):
        return options.fn(options.context)
    return options.inverse(options.context)


def helper_each(items: Any, options: Options) -> str:
    out: list[str] = []
    state = options._state
    if isinstance(items, list) and items:
        last = len(items) - 1
        for i, item in enumerate(items):
            state.tick()
            out.append(options.fn(item, data={"index": i, "key": i, "first": i == 0, "last": i == last}, block_params=[item, i]))
    elif isinstance(items, dict) and items:
        keys = list(items)
        last = len(keys) - 1
        for i, key in enumerate(keys):
            state.tick()
            out.append(options.fn(items[key], data={"key": key, "index": i, "first": i == 0, "last": i == last}, block_params=[items[key], key]))
    if not out:
        return options.inverse(options.context)
    return "".join(out)


def helper_with(context: Any, options: Options) -> str:
    if is_empty(context):
        return options.inverse(options.context)
    return options.fn(context, block_params=[context])


def helper_lookup(value: Any, key: Any, options: Options) -> Any:
    return get_key(value, js_string(key))


def helper_log(*args: Any) -> str:
    options = args[-1]
    level = options.hash.get("level", "info") if isinstance(options, Options) else "info"
    logger.log(logging.getLevelName(str(level).upper()) if isinstance(level, str) else logging.INFO,
               "template log: %s", " ".join(js_string(a) for a in args[:-1]))
    return ""


def helper_json(value: Any = UNDEFINED, options: Options | None = None) -> SafeString:
    return SafeString(json_literal(value))


BUILTIN_HELPERS: dict[str, Callable[..., Any]] = {
    "if": helper_if,
    "unless": helper_unless,
    "each": helper_each,
    "with": helper_with,
    "lookup": helper_lookup,
    "log": helper_log,
    "json": helper_json,
}



# Helper names with dots (String.Append, also written [String.Append]) are
# looked up as one name, ignoring case, before the path is read as a lookup:
# as Handlebars.Net does for Handlebars.Net.Helpers (registered at the end).
HELPER_ALIASES: dict[str, str] = {}  # a dotted name in lower case -> the registered name
# How a mustache prints a helper's result, for helpers that print the .NET way.
RESULT_PRINTERS: dict[str, Callable[[Any], Any]] = {}


def helper_name_of(head: Expr) -> str | None:
    """The helper name a call's head looks up: ``name``, or the registered spelling of a dotted one; else None.

    Every program kind (closures, flat, native) and the save-time check resolve names here.
    """
    name = simple_name(head)
    if name is None or "." not in name:
        return name
    return HELPER_ALIASES.get(name.lower(), name)


# Handlebars.Net.Helpers (String.*, Math.*, DateTime.*, ...): built in, as in the vendor's engine.
# Registered on import, before any template compiles (compiling checks names against BUILTIN_HELPERS).
from hub_stream.templating.net_helpers import register as _register_net_helpers  # here: they use this module

_register_net_helpers(BUILTIN_HELPERS, HELPER_ALIASES, RESULT_PRINTERS)
