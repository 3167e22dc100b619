"""AST → closures ``(scope, state) -> str``, specialised per node. No template text becomes code.

Each node is compiled once into the closure that does just its work (paths
and calls: expressions.py); the built-in ``if``/``unless``/``each``/``with``
run inline when the name still means the built-in at render time (else the
registered helper is called as usual); an ``else if`` chain is run by one
loop, however long. Every closure counts the output it makes (State.size) and
tags errors with its line and column.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hub_stream.templating.expressions import (
    NOTHING,
    Getter,
    Params,
    compile_call,
    compile_expr,
    compile_path,
    helper_name,
    too_deep,
)
from hub_stream.templating.parser import (
    Block,
    InlinePartial,
    Mustache,
    Node,
    Partial,
    PathExpr,
    Text,
)
from hub_stream.templating.runtime import (
    BUILTIN_HELPERS,
    MAX_DEPTH,
    RESULT_PRINTERS,
    CompiledProgram,
    DataFrame,
    Options,
    Scope,
    State,
    TemplateRenderError,
    call_helper,
    helper_each,
    helper_if,
    helper_json,
    helper_unless,
    helper_with,
)
from hub_stream.templating.values import UNDEFINED, is_empty, js_string, json_literal, print_escaped

# --- mustaches ---------------------------------------------------------------------


def _compile_mustache(node: Mustache, prefix: str, suffix: str, params: Params) -> CompiledProgram:
    """``prefix`` and ``suffix`` are literal texts around the tag, folded in to save calls per node."""
    call, escaped = node.call, node.escaped
    name = helper_name(call, params)
    printer = RESULT_PRINTERS.get(name) if name is not None else None  # .NET printing of a Net helper's result
    if not call.params and not call.hash and isinstance(call.path, PathExpr):
        resolve = compile_path(call.path, params)
        may_be_helper = name is not None  # {{name}} calls a helper when one is registered under that name
        builtin = name in BUILTIN_HELPERS

        def path_text(scope: Scope, state: State) -> str:
            helper = state.helpers.get(name) if may_be_helper and (builtin or state.custom) else None
            if helper is None:
                value = resolve(scope, state)
            else:
                state.tick()
                value = call_helper(name, helper, [], Options(name, {}, scope, state, None, None))  # type: ignore[arg-type]
                if printer is not None:
                    value = printer(value)
            kind = type(value)
            if kind is str:
                return state.escape(value) if escaped else value
            if kind is int:
                return str(value)
            return print_escaped(value, state.escape) if escaped else js_string(value)

        return _counted(path_text, node, prefix, suffix)

    evaluate = compile_call(call, params)
    if name == "json" and len(call.params) == 1 and not call.hash:
        arg = compile_expr(call.params[0], params)

        def json_text(scope: Scope, state: State) -> str:
            if not state.custom or state.helpers.get("json") is helper_json:
                return json_literal(arg(scope, state))
            return _print(evaluate(scope, state), escaped, state)

        return _counted(json_text, node, prefix, suffix)

    if printer is not None:
        return _counted(lambda scope, state: _print(printer(evaluate(scope, state)), escaped, state), node, prefix, suffix)
    return _counted(lambda scope, state: _print(evaluate(scope, state), escaped, state), node, prefix, suffix)


def _counted(text_of: CompiledProgram, node: Mustache, prefix: str, suffix: str) -> CompiledProgram:
    """A mustache's text between its literal texts, counted as output; its errors say where it is."""
    line, column = node.line, node.column
    fixed = len(prefix) + len(suffix)

    def mustache(scope: Scope, state: State) -> str:
        try:
            text = text_of(scope, state)
            state.size += len(text) + fixed
            if state.size > state.next_check:
                state.grew()
        except TemplateRenderError as exc:
            raise exc.at(line, column) from None
        except RecursionError:
            raise too_deep(line, column) from None
        return prefix + text + suffix

    return mustache


def _print(value: Any, escaped: bool, state: State) -> str:
    return print_escaped(value, state.escape) if escaped else js_string(value)


# --- blocks ------------------------------------------------------------------------

Step = Callable[[Scope, State], "str | None"]  # a link of an else chain: its text, or None for "the next link"


def is_true(value: Any, include_zero: bool) -> bool:
    """What ``{{#if value}}`` takes as true (handlebars' isEmpty/falsy rules)."""
    if value is True:
        return True
    if value is False or value is None or value is UNDEFINED:
        return False
    kind = type(value)
    if kind is str or kind is list:
        return len(value) > 0
    if kind is int or kind is float:
        return (value != 0 or include_zero) and not math.isnan(value)
    return not is_empty(value)


def _compile_block(node: Block, params: Params, prefix: str = "", suffix: str = "") -> CompiledProgram:
    """A block and its ``else`` chain: one loop over the links, each one a Step."""
    links: list[Block] = [node]
    while links[-1].inverse is not None and len(links[-1].inverse) == 1 and isinstance(links[-1].inverse[0], Block):
        links.append(links[-1].inverse[0])
    last_inverse = compile_program(links[-1].inverse, params) if links[-1].inverse is not None else None
    steps: list[Step] = []

    def run_from(start: int, scope: Scope, state: State) -> str:
        for k in range(start, len(steps)):
            text = steps[k](scope, state)
            if text is not None:
                return text
        return last_inverse(scope, state) if last_inverse is not None else ""

    def rest_from(start: int) -> CompiledProgram:
        return lambda scope, state: run_from(start, scope, state)

    for k, link in enumerate(links):
        rest = rest_from(k + 1) if k + 1 < len(links) or last_inverse is not None else None
        steps.append(_compile_link(link, params, rest))
    line, column = node.line, node.column
    fixed = len(prefix) + len(suffix)
    only = steps[0] if len(steps) == 1 else None

    def run(scope: Scope, state: State) -> str:
        try:
            if fixed:
                state.size += fixed
            if only is not None:  # one link: no loop
                text = only(scope, state)
                if text is None:
                    text = last_inverse(scope, state) if last_inverse is not None else ""
            else:
                text = run_from(0, scope, state)
        except TemplateRenderError as exc:
            raise exc.at(line, column) from None
        except RecursionError:
            raise too_deep(line, column) from None
        return prefix + text + suffix

    return run


def _compile_link(node: Block, params: Params, inverse: CompiledProgram | None) -> Step:
    names = tuple(node.block_params)
    inner = params | frozenset(names)
    program = compile_program(node.program, inner)
    call = node.call
    name = helper_name(call, params)
    generic = _generic_block(node, params, program, inverse)
    if name in ("if", "unless") and len(call.params) == 1 and set(call.hash) <= {"includeZero"}:
        condition = compile_expr(call.params[0], params)
        include_zero = compile_expr(call.hash["includeZero"], params) if call.hash else None
        builtin, wanted = (helper_if, True) if name == "if" else (helper_unless, False)

        def conditional(scope: Scope, state: State) -> str | None:
            if state.custom and state.helpers.get(name) is not builtin:
                return generic(scope, state)
            zero = include_zero is not None and is_true(include_zero(scope, state), False)
            if is_true(condition(scope, state), zero) is wanted:
                return program(scope, state)
            return None

        return conditional
    if name == "each" and len(call.params) == 1 and not call.hash:
        return _compile_each(compile_expr(call.params[0], params), program, names, generic)
    if name == "with" and len(call.params) == 1 and not call.hash:
        value_of = compile_expr(call.params[0], params)

        def with_block(scope: Scope, state: State) -> str | None:
            if state.custom and state.helpers.get("with") is not helper_with:
                return generic(scope, state)
            value = value_of(scope, state)
            if is_empty(value):
                return None
            if scope.depth >= MAX_DEPTH:
                raise TemplateRenderError(f"blocks nested deeper than {MAX_DEPTH} at render time")
            bound = {**scope.params, names[0]: value} if names else scope.params
            return program(Scope(value, scope, scope.data, bound, scope.partials, scope.depth + 1), state)

        return with_block
    return generic


def _compile_each(items_of: Getter, program: CompiledProgram, names: tuple[str, ...], generic: Step) -> Step:
    def each(scope: Scope, state: State) -> str | None:
        if state.custom and state.helpers.get("each") is not helper_each:
            return generic(scope, state)
        items = items_of(scope, state)
        if type(items) is list:
            keys: Any = None
            count = len(items)
        elif type(items) is dict:
            keys = list(items)
            count = len(keys)
        else:
            return None
        if not count:
            return None
        if scope.depth >= MAX_DEPTH:
            raise TemplateRenderError(f"blocks nested deeper than {MAX_DEPTH} at render time")
        # One child scope and frame for the whole loop, updated per item: the
        # body runs before the next item, and nothing keeps a scope after it.
        frame = DataFrame({}, scope.data)
        child = Scope(None, scope, frame, scope.params, scope.partials, scope.depth + 1)
        last = count - 1
        out = []
        for i in range(count):
            if not i & 255:
                state.tick()
            if keys is None:
                item = items[i]
                frame.vars = {"index": i, "key": i, "first": i == 0, "last": i == last}
                key: Any = i
            else:
                key = keys[i]
                item = items[key]
                frame.vars = {"key": key, "index": i, "first": i == 0, "last": i == last}
            child.context = item
            if names:
                child.params = {**scope.params, **dict(zip(names, (item, key), strict=False))}
            out.append(program(child, state))
        return "".join(out)

    return each


def _generic_block(node: Block, params: Params, program: CompiledProgram, inverse: CompiledProgram | None) -> Step:
    """A registered helper's block, or (no helper, no arguments) a section on the value."""
    call = node.call
    names = tuple(node.block_params)
    name = helper_name(call, params)
    helper_call = compile_call(call, params, program, inverse, names)
    value_of = compile_expr(call.path, params)
    has_args = bool(call.params or call.hash)
    inverted = node.inverted

    def generic(scope: Scope, state: State) -> str:
        helper = state.helpers.get(name) if name is not None else None
        before = state.size
        if helper is not None or has_args:
            return state.made(js_string(helper_call(scope, state)), before)
        # No helper: a Mustache-style section on the value (handlebars' blockHelperMissing).
        state.tick()
        value = value_of(scope, state)
        options = Options(name or "", {}, scope, state, program, inverse, names)
        if value is True:
            return options.fn(scope.context)
        if value is False or value is None or value is UNDEFINED:
            return options.inverse(scope.context)
        if isinstance(value, list):
            if not value or inverted:  # {{^list}} on a non-empty list: nothing
                return options.inverse(scope.context)
            return state.made(helper_each(value, options), before)
        return options.fn(value)

    return generic


# --- partials ----------------------------------------------------------------------


def _compile_partial(node: Partial, params: Params) -> CompiledProgram:
    data_name = node.name.original if isinstance(node.name, PathExpr) and node.name.data else None
    name_of = compile_expr(node.name, params) if data_name is None else None
    context_of = compile_expr(node.context, params) if node.context is not None else None
    hash_items = [(k, compile_expr(v, params)) for k, v in node.hash.items()]
    fallback = compile_program(node.block, params | frozenset(node.block_params)) if node.block is not None else None
    # {{#*inline}} partials in a partial block's body are there for the partial it calls
    block_inline = {n.name: compile_program(n.program) for n in node.block or [] if isinstance(n, InlinePartial)}
    indent, line, column = node.indent, node.line, node.column

    def render(scope: Scope, state: State) -> str:
        state.tick()
        name = data_name if data_name is not None else js_string(name_of(scope, state))  # type: ignore[misc]
        target = scope.partials.get(name)
        if target is None and fallback is None:
            raise TemplateRenderError(f"The partial {name!r} could not be found")
        if scope.depth >= MAX_DEPTH:
            raise TemplateRenderError(f"partials nested deeper than {MAX_DEPTH} (a partial that includes itself?)")
        context = context_of(scope, state) if context_of is not None else scope.context
        if hash_items:
            extra = {k: v(scope, state) for k, v in hash_items}
            context = {**context, **extra} if isinstance(context, dict) else extra
        partials = scope.partials
        if fallback is not None:
            partials = {**partials, **block_inline, "@partial-block": PartialBlock(fallback, scope)}
            if target is None:
                return fallback(Scope(context, scope, scope.data, scope.params, partials, scope.depth + 1), state)
        if isinstance(target, PartialBlock):
            return target.render(scope, state)
        # a partial starts its own ../ chain at its context, as in handlebars.js (outside compat mode)
        child = Scope(context, None, scope.data, {}, partials, scope.depth + 1)
        text = target(child, state)
        if indent:
            text = "".join(indent + line for line in text.splitlines(keepends=True))
        return text

    def run(scope: Scope, state: State) -> str:
        before = state.size
        try:
            return state.made(render(scope, state), before)
        except TemplateRenderError as exc:
            raise exc.at(line, column) from None
        except RecursionError:
            raise too_deep(line, column) from None

    return run


class PartialBlock:
    """The body of ``{{#> name}}…{{/name}}``, which the partial renders as ``{{> @partial-block}}``."""

    __slots__ = ("program", "scope")

    def __init__(self, program: CompiledProgram, scope: Scope) -> None:
        self.program = program
        self.scope = scope

    def render(self, at: Scope, state: State) -> str:
        outer = self.scope
        partials = {k: v for k, v in at.partials.items() if k != "@partial-block"}
        if "@partial-block" in outer.partials:
            partials["@partial-block"] = outer.partials["@partial-block"]
        # the block's own block parameters are those around it where it was written
        return self.program(Scope(at.context, at.parent, at.data, outer.params, partials, at.depth + 1), state)


# --- programs ----------------------------------------------------------------------


def _text(value: str) -> CompiledProgram:
    size = len(value)

    def text(scope: Scope, state: State) -> str:
        state.size += size
        if state.size > state.next_check:
            state.grew()
        return value

    return text


def compile_program(nodes: list[Node] | None, params: Params = NOTHING) -> CompiledProgram:
    """One closure that renders a list of nodes.

    Text is folded into the tag after it (or, at the end, the tag before it),
    so a program makes one call per tag and none per text.
    """
    tags: list[Node] = []
    texts: list[str] = [""]  # texts[k] comes before tags[k]; the last one after the last tag
    inline: dict[str, CompiledProgram] = {}
    for node in nodes or []:
        if isinstance(node, Text):
            texts[-1] += node.value
        elif isinstance(node, InlinePartial):
            inline[node.name] = compile_program(node.program)
        else:
            tags.append(node)
            texts.append("")
    parts: list[CompiledProgram] = []
    for k, node in enumerate(tags):
        prefix = texts[k]
        suffix = texts[-1] if k == len(tags) - 1 else ""
        if isinstance(node, Mustache):
            parts.append(_compile_mustache(node, prefix, suffix, params))
        elif isinstance(node, Block):
            parts.append(_compile_block(node, params, prefix, suffix))
        elif isinstance(node, Partial):
            parts.append(_around(_compile_partial(node, params), prefix, suffix))
    if not tags and texts[0]:
        parts.append(_text(texts[0]))
    run = _join(parts)
    if not inline:
        return run

    def run_with_inline(scope: Scope, state: State) -> str:
        scoped = Scope(scope.context, scope.parent, scope.data, scope.params, {**scope.partials, **inline}, scope.depth)
        return run(scoped, state)

    return run_with_inline


def _around(program: CompiledProgram, prefix: str, suffix: str) -> CompiledProgram:
    if not prefix and not suffix:
        return program
    fixed = len(prefix) + len(suffix)

    def around(scope: Scope, state: State) -> str:
        state.size += fixed
        return prefix + program(scope, state) + suffix

    return around


def _join(parts: list[CompiledProgram]) -> CompiledProgram:
    """The parts' texts in order; up to six parts are added, more are joined."""
    if not parts:
        return lambda scope, state: ""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda scope, state: a(scope, state) + b(scope, state)
    if len(parts) == 3:
        a, b, c = parts
        return lambda scope, state: a(scope, state) + b(scope, state) + c(scope, state)
    if len(parts) == 4:
        a, b, c, d = parts
        return lambda scope, state: a(scope, state) + b(scope, state) + c(scope, state) + d(scope, state)
    if len(parts) == 5:
        a, b, c, d, e = parts
        return lambda scope, state: a(scope, state) + b(scope, state) + c(scope, state) + d(scope, state) + e(scope, state)
    if len(parts) == 6:
        a, b, c, d, e, f = parts
        return lambda s, t: a(s, t) + b(s, t) + c(s, t) + d(s, t) + e(s, t) + f(s, t)
    fns = tuple(parts)
    return lambda scope, state: "".join([f(scope, state) for f in fns])
