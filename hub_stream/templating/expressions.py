"""Expressions → closures ``(scope, state) -> value``: paths, literals, helper calls, subexpressions.

A path becomes a lookup of exactly its depth and length; block parameters are
known from the blocks around it, so a name that is none skips that check. A
call of the built-in ``json`` or ``lookup`` runs inline while the name still
means the built-in at render time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub_stream.templating.parser import Call, Expr, Literal, PathExpr, SubExpr
from hub_stream.templating.runtime import (
    CompiledProgram,
    DataFrame,
    Options,
    Scope,
    State,
    TemplateRenderError,
    call_helper,
    helper_json,
    helper_lookup,
    helper_name_of,
)
from hub_stream.templating.values import UNDEFINED, SafeString, get_key, js_string, json_literal

Getter = Callable[[Scope, State], Any]
Params = frozenset[str]  # block parameter names visible at a node
NOTHING = frozenset[str]()


def too_deep(line: int, column: int) -> TemplateRenderError:
    return TemplateRenderError("template nested too deeply while rendering").at(line, column)


# --- values ------------------------------------------------------------------------


def compile_path(path: PathExpr, params: Params) -> Getter:
    parts = path.parts
    depth = path.depth
    if path.data:
        head, rest = (parts[0], parts[1:]) if parts else ("", ())
        if head == "partial-block" and not rest:  # {{#if @partial-block}}: is there one
            return lambda scope, state: scope.partials.get("@partial-block", UNDEFINED)

        def data_var(scope: Scope, state: State) -> Any:
            frame: DataFrame | None = scope.data
            for _ in range(depth):  # past the top frame: nothing, as in handlebars.js
                frame = frame.parent if frame is not None else None
            value = frame.get(head) if frame is not None else UNDEFINED
            for part in rest:
                value = get_key(value, part)
            return value

        return data_var
    if parts and not path.this and depth == 0 and parts[0] in params:
        first, rest = parts[0], parts[1:]

        def block_param(scope: Scope, state: State) -> Any:
            value = scope.params.get(first, UNDEFINED)
            for part in rest:
                value = get_key(value, part)
            return value

        return block_param
    if depth == 0:
        if not parts:
            return lambda scope, state: scope.context
        if len(parts) == 1:
            (key,) = parts

            def one(scope: Scope, state: State) -> Any:
                context = scope.context
                return context.get(key, UNDEFINED) if type(context) is dict else get_key(context, key)

            return one
        if len(parts) == 2:
            key, second = parts

            def two(scope: Scope, state: State) -> Any:
                context = scope.context
                value = context.get(key, UNDEFINED) if type(context) is dict else get_key(context, key)
                return value.get(second, UNDEFINED) if type(value) is dict else get_key(value, second)

            return two

    def walk(scope: Scope, state: State) -> Any:
        at: Scope | None = scope
        for _ in range(depth):  # past the root: nothing, as in handlebars.js
            at = at.parent if at is not None else None
        if at is None:
            return UNDEFINED
        value = at.context
        for part in parts:
            value = get_key(value, part)
        return value

    return walk


def compile_expr(expr: Expr, params: Params) -> Getter:
    if isinstance(expr, Literal):
        constant = expr.value
        return lambda scope, state: constant
    if isinstance(expr, SubExpr):
        return compile_call(expr.call, params, subexpression=True)
    return compile_path(expr, params)


def helper_name(call: Call, params: Params) -> str | None:
    """The helper name of a call; a block parameter's name is none (handlebars.js: parameters shadow helpers)."""
    name = helper_name_of(call.path)
    if name is not None and isinstance(call.path, PathExpr) and call.path.parts[0] in params:
        return None
    return name


def _shown(call: Call) -> str:
    path = call.path
    return path.original if isinstance(path, PathExpr | Literal) else "(subexpression)"


def compile_call(
    call: Call,
    params: Params,
    program: CompiledProgram | None = None,
    inverse: CompiledProgram | None = None,
    param_names: tuple[str, ...] = (),
    *,
    subexpression: bool = False,
) -> Getter:
    """A helper call's value; a plain value when the name is no helper and has no arguments."""
    name = helper_name(call, params)
    args = [compile_expr(p, params) for p in call.params]
    hash_items = [(k, compile_expr(v, params)) for k, v in call.hash.items()]
    value_of = compile_expr(call.path, params)
    has_args = bool(args or hash_items)
    shown = name if name is not None else _shown(call)

    def generic(scope: Scope, state: State) -> Any:
        helper = state.helpers.get(name) if name is not None else None
        if helper is None:
            if has_args:
                raise TemplateRenderError(f"Missing helper: {shown!r}")
            value = value_of(scope, state)
            if subexpression and value is not UNDEFINED and value is not None:
                raise TemplateRenderError(f"{shown!r} is not a helper: a subexpression (…) calls one")
            return value
        state.tick()
        values = [a(scope, state) for a in args]
        options = Options(name or "", {k: v(scope, state) for k, v in hash_items}, scope, state, program, inverse, param_names)
        return call_helper(shown, helper, values, options)

    if program is None and len(args) == 1 and not hash_items and name == "json":
        (arg,) = args

        def json_value(scope: Scope, state: State) -> Any:
            if state.helpers.get("json") is helper_json:
                return SafeString(json_literal(arg(scope, state)))
            return generic(scope, state)

        return json_value
    if program is None and len(args) == 2 and not hash_items and name == "lookup":
        obj, key = args

        def lookup_value(scope: Scope, state: State) -> Any:
            if state.helpers.get("lookup") is helper_lookup:
                return get_key(obj(scope, state), js_string(key(scope, state)))
            return generic(scope, state)

        return lookup_value
    return generic


