"""AST → nested Python closures, and the helpers. No template text becomes code.

A compiled node is a function ``(scope, state) -> str``. Lookups reach only
dict keys, list indexes (and ``length``), block parameters and the engine's
own ``@`` data: never an attribute of a Python object.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from hub_stream.templating.parser import (
    Block,
    Call,
    Expr,
    InlinePartial,
    Literal,
    Mustache,
    Node,
    Partial,
    PathExpr,
    SubExpr,
    TemplateError,
    Text,
    parse,
)
from hub_stream.templating.values import (
    NEEDS_HTML_ESCAPE,
    UNDEFINED,
    SafeString,
    escape_html,
    escape_json,
    is_empty,
    is_falsy,
    js_string,
    json_literal,
    needs_json_escape,
)

logger = logging.getLogger(__name__)

MAX_DEPTH = 64
DEFAULT_MAX_OUTPUT = 1024 * 1024
DEFAULT_TIME_LIMIT_S = 1.0
_CHECK_EVERY = 256
CACHE_SIZE = 1024


class TemplateRenderError(TemplateError):
    """Rendering failed: a missing helper or partial, a limit, a helper's own error."""


class DataFrame:
    """The ``@`` variables of one block level; ``@../x`` reads the parent frame."""

    __slots__ = ("vars", "parent")

    def __init__(self, vars: dict[str, Any], parent: DataFrame | None) -> None:
        self.vars = vars
        self.parent = parent

    def get(self, name: str) -> Any:
        frame: DataFrame | None = self
        while frame is not None:
            if name in frame.vars:
                return frame.vars[name]
            frame = frame.parent
        return UNDEFINED


class Scope:
    __slots__ = ("context", "parent", "data", "params", "partials", "depth")

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
    """Per-render settings and budgets."""

    __slots__ = ("helpers", "escape", "max_output", "deadline", "ops")

    def __init__(self, helpers: Mapping[str, Callable[..., Any]], escape: Callable[[str], str], max_output: int, deadline: float) -> None:
        self.helpers = helpers
        self.escape = escape
        self.max_output = max_output
        self.deadline = deadline
        self.ops = 0

    def tick(self) -> None:
        self.ops += 1
        if self.ops % _CHECK_EVERY == 0 and time.monotonic() > self.deadline:
            raise TemplateRenderError("render took longer than its time limit")

    def check_size(self, text: str) -> str:
        if len(text) > self.max_output:
            raise TemplateRenderError(f"output larger than {self.max_output} characters")
        return text


CompiledProgram = Callable[[Scope, State], str]


# --- lookups -------------------------------------------------------------------


def _get(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return value.get(key, UNDEFINED)
    if isinstance(value, list):
        if key == "length":
            return len(value)
        if key.isdigit():
            index = int(key)
            return value[index] if index < len(value) else UNDEFINED
        return UNDEFINED
    if isinstance(value, str) and key == "length":
        return len(value)
    return UNDEFINED


def _resolver(path: PathExpr) -> Callable[[Scope], Any]:
    parts = path.parts
    depth = path.depth
    if path.data:
        head, rest = (parts[0], parts[1:]) if parts else ("", ())

        def resolve_data(scope: Scope) -> Any:
            frame: DataFrame | None = scope.data
            for _ in range(depth):
                frame = frame.parent if frame is not None and frame.parent is not None else frame
            value = frame.get(head) if frame is not None else UNDEFINED
            for part in rest:
                value = _get(value, part)
            return value

        return resolve_data
    can_be_param = not path.this and depth == 0 and bool(parts)
    if len(parts) == 1 and depth == 0:
        key = parts[0]

        def resolve_one(scope: Scope) -> Any:
            if can_be_param and key in scope.params:
                return scope.params[key]
            context = scope.context
            if isinstance(context, dict):
                return context.get(key, UNDEFINED)
            return _get(context, key)

        return resolve_one

    def resolve(scope: Scope) -> Any:
        rest = parts
        if can_be_param and parts[0] in scope.params:
            value = scope.params[parts[0]]
            rest = parts[1:]
        else:
            s = scope
            for _ in range(depth):
                s = s.parent if s.parent is not None else s
            value = s.context
        for part in rest:
            value = _get(value, part)
        return value

    return resolve


# --- helpers -------------------------------------------------------------------


class Options:
    """What a helper gets last: fn, inverse, hash, data and the current context."""

    __slots__ = ("name", "hash", "_scope", "_state", "_program", "_inverse", "_param_names")

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
        return self._state.check_size(program(child, self._state))


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
    return state.check_size("".join(out))


def helper_with(context: Any, options: Options) -> str:
    if is_empty(context):
        return options.inverse(options.context)
    return options.fn(context, block_params=[context])


def helper_lookup(obj: Any, key: Any, options: Options) -> Any:
    return _get(obj, js_string(key)) if not isinstance(key, int) or isinstance(key, bool) else _get(obj, str(key))


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


# --- compiler ------------------------------------------------------------------


def _helper_name(call: Call) -> str | None:
    path = call.path
    if isinstance(path, PathExpr) and not path.data and not path.this and path.depth == 0 and len(path.parts) == 1:
        return path.parts[0]
    return None


# Helper names with dots (String.Append, also written [String.Append]) are
# looked up as one name, ignoring case, before the path is read as a lookup:
# as Handlebars.Net does for Handlebars.Net.Helpers (registered at the end).
HELPER_ALIASES: dict[str, str] = {}  # a dotted name in lower case -> the registered name
# How a mustache prints a helper's result, for helpers that print the .NET way.
RESULT_PRINTERS: dict[str, Callable[[Any], Any]] = {}


def call_name(call: Call) -> str | None:
    """The helper name a call looks up: ``name``, or the registered spelling of a dotted one."""
    path = call.path
    if not isinstance(path, PathExpr) or path.data or path.this or path.depth or not path.parts:
        return None
    name = ".".join(path.parts)
    return HELPER_ALIASES.get(name.lower(), name) if "." in name else name


def _compile_expr(expr: Expr) -> Callable[[Scope, State], Any]:
    if isinstance(expr, Literal):
        value = expr.value
        return lambda scope, state: value
    if isinstance(expr, SubExpr):
        return _compile_call(expr.call, None, None)
    resolve = _resolver(expr)
    return lambda scope, state: resolve(scope)


def _call_helper(name: str, helper: Callable[..., Any], args: list[Any], options: Options) -> Any:
    try:
        return helper(*args, options)
    except TemplateError:
        raise
    except RecursionError:
        raise TemplateRenderError(f"helper {name!r} recursed too deeply") from None
    except Exception as exc:
        raise TemplateRenderError(f"helper {name!r} failed: {type(exc).__name__}: {exc}") from None


def _compile_call(
    call: Call, program: CompiledProgram | None, inverse: CompiledProgram | None, param_names: tuple[str, ...] = ()
) -> Callable[[Scope, State], Any]:
    """A helper call (or a plain value when the name is no helper and has no arguments)."""
    name = call_name(call)
    params = [_compile_expr(p) for p in call.params]
    hash_items = [(k, _compile_expr(v)) for k, v in call.hash.items()]
    value_of = _compile_expr(call.path)
    has_args = bool(params or hash_items)

    def run(scope: Scope, state: State) -> Any:
        state.tick()
        helper = state.helpers.get(name) if name is not None else None
        if helper is None:
            if has_args:
                shown = name if name is not None else (call.path.original if isinstance(call.path, PathExpr | Literal) else "(subexpression)")
                raise TemplateRenderError(f"Missing helper: {shown!r}")
            return value_of(scope, state)
        args = [p(scope, state) for p in params]
        options = Options(name or "", {k: v(scope, state) for k, v in hash_items}, scope, state, program, inverse, param_names)
        return _call_helper(name or "", helper, args, options)

    return run


def print_escaped(value: Any, escape: Callable[[str], str]) -> str:
    """What ``{{value}}`` prints: a SafeString as it is, anything else escaped."""
    if type(value) is str:
        return escape(value)
    if isinstance(value, SafeString):
        return js_string(value)
    return escape(js_string(value))


def _compile_mustache(node: Mustache, prefix: str = "") -> CompiledProgram:
    """``prefix`` is literal text just before the tag, folded in to save a call per node."""
    call = node.call
    escaped = node.escaped
    name = _helper_name(call)
    if name is not None and name == call_name(call) and not call.params and not call.hash:
        path = call.path
        assert isinstance(path, PathExpr)
        resolve = _resolver(path)
        key = name
        plain_key = not path.this and path.depth == 0 and not path.data

        def simple(scope: Scope, state: State) -> str:
            helper = state.helpers.get(key)
            if helper is None:
                if plain_key and key not in scope.params and type(scope.context) is dict:
                    value = scope.context.get(key, UNDEFINED)
                else:
                    value = resolve(scope)
            else:
                state.tick()
                value = _call_helper(key, helper, [], Options(key, {}, scope, state, None, None))
            if type(value) is str:
                return prefix + (state.escape(value) if escaped else value)
            return prefix + (print_escaped(value, state.escape) if escaped else js_string(value))

        return simple
    evaluate = _compile_call(call, None, None)
    printer = RESULT_PRINTERS.get(call_name(call) or "")

    def full(scope: Scope, state: State) -> str:
        value = evaluate(scope, state)
        if printer is not None:
            value = printer(value)
        return prefix + (print_escaped(value, state.escape) if escaped else js_string(value))

    return full


def _compile_block(node: Block) -> CompiledProgram:
    program = compile_program(node.program)
    inverse = compile_program(node.inverse) if node.inverse is not None else None
    param_names = tuple(node.block_params)
    call = node.call
    name = call_name(call)
    helper_call = _compile_call(call, program, inverse, param_names)
    value_of = _compile_expr(call.path)
    has_args = bool(call.params or call.hash)
    inverted = node.inverted

    def run(scope: Scope, state: State) -> str:
        helper = state.helpers.get(name) if name is not None else None
        if helper is not None or has_args:
            return js_string(helper_call(scope, state))
        # No helper: a Mustache-style section on the value (handlebars' blockHelperMissing).
        state.tick()
        value = value_of(scope, state)
        options = Options(name or "", {}, scope, state, program, inverse, param_names)
        if value is True:
            return options.fn(scope.context)
        if value is False or value is None or value is UNDEFINED:
            return options.inverse(scope.context)
        if isinstance(value, list):
            if not value:
                return options.inverse(scope.context)
            if inverted:  # {{^list}}: the list is not empty, so nothing
                return options.inverse(scope.context)
            return helper_each(value, options)
        return options.fn(value)

    return run


def _compile_partial(node: Partial) -> CompiledProgram:
    name_of = _compile_expr(node.name) if not (isinstance(node.name, PathExpr) and node.name.data) else None
    data_name = node.name.original if isinstance(node.name, PathExpr) and node.name.data else None
    context_of = _compile_expr(node.context) if node.context is not None else None
    hash_items = [(k, _compile_expr(v)) for k, v in node.hash.items()]
    fallback = compile_program(node.block) if node.block is not None else None
    indent = node.indent

    def run(scope: Scope, state: State) -> str:
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
            block_scope = scope
            partials = {**partials, "@partial-block": _PartialBlock(fallback, block_scope)}
            if target is None:
                return fallback(Scope(context, scope, scope.data, scope.params, partials, scope.depth + 1), state)
        if isinstance(target, _PartialBlock):
            return target.render(scope, state)
        program = target if callable(target) else compile_template(str(target))._program
        child = Scope(context, scope if context is not scope.context else scope.parent, scope.data, {}, partials, scope.depth + 1)
        text = state.check_size(program(child, state))
        if indent:
            text = "".join(indent + line for line in text.splitlines(keepends=True))
        return text

    return run


class _PartialBlock:
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
        return self.program(Scope(at.context, at.parent, at.data, at.params, partials, at.depth + 1), state)


def compile_program(nodes: list[Node] | None) -> CompiledProgram:
    """One closure that renders a list of nodes."""
    parts: list[Callable[[Scope, State], str]] = []
    inline: dict[str, CompiledProgram] = {}
    pending = ""  # text waiting to be folded into the next mustache
    for node in nodes or []:
        if isinstance(node, Text):
            pending += node.value
            continue
        if isinstance(node, Mustache):
            parts.append(_compile_mustache(node, pending))
            pending = ""
            continue
        if pending:
            parts.append(lambda scope, state, value=pending: value)
            pending = ""
        if isinstance(node, Block):
            parts.append(_compile_block(node))
        elif isinstance(node, Partial):
            parts.append(_compile_partial(node))
        elif isinstance(node, InlinePartial):
            inline[node.name] = compile_program(node.program)
    if pending:
        parts.append(lambda scope, state, value=pending: value)
    fns = tuple(parts)

    if inline:
        def run_with_inline(scope: Scope, state: State) -> str:
            scoped = Scope(scope.context, scope.parent, scope.data, scope.params, {**scope.partials, **inline}, scope.depth)
            return "".join([f(scoped, state) for f in fns])
        return run_with_inline

    if len(fns) == 1:
        only = fns[0]

        def run_one(scope: Scope, state: State) -> str:
            return only(scope, state)
        return run_one

    def run(scope: Scope, state: State) -> str:
        return "".join([f(scope, state) for f in fns])
    return run


# --- flat programs: the common row template, without Scope, State or frames -----
#
# Row templates are nearly always text, path mustaches and {{json path}}. Such a
# template renders here by lookups and one join: the root's keys come from one
# itemgetter call per kind of slot, the other values from small closures, one
# search tells whether any value needs escaping at all, and another itemgetter
# interleaves texts and literals. It prints exactly as the general program (the
# same printing functions); whatever it does not cover (a root that is no dict,
# helpers that shadow a name it uses, partials, a value that fails to print) is
# rendered by the general program instead. Nothing here is reached by template
# text other than as dict keys, list indexes and @-data names, as there.


class _Fallback(Exception):
    """This render is for the general program (which also reports any error)."""


Data = Mapping[str, Any] | None
Escape = Callable[[str], str]
FlatLookup = Callable[[dict[str, Any], Data], Any]


def _flat_lookup(expr: Expr) -> FlatLookup | None:
    """A lookup from the root (a dict) and the ``@`` data, as _resolver does at the top level."""
    if isinstance(expr, Literal):
        constant = expr.value
        return lambda root, data: constant
    if not isinstance(expr, PathExpr):
        return None
    parts = expr.parts
    if expr.data:  # the top frame holds {"root": root, **data}; @../ stays there
        head, rest = (parts[0], parts[1:]) if parts else ("", ())

        def data_var(data: Data, root: dict[str, Any]) -> Any:
            if data is not None and head in data:
                return data[head]
            return root if head == "root" else UNDEFINED

        if len(rest) == 1:  # @event.Field: the usual
            key = rest[0]

            def data_field(root: dict[str, Any], data: Data) -> Any:
                value = data[head] if data is not None and head in data else data_var(data, root)
                return value.get(key, UNDEFINED) if type(value) is dict else _get(value, key)

            return data_field

        def data_lookup(root: dict[str, Any], data: Data) -> Any:
            value = data_var(data, root)
            for part in rest:
                value = _get(value, part)
            return value

        return data_lookup
    if not parts:  # this, . and ../ (which stays at the root at the top level)
        return lambda root, data: root
    first, rest = parts[0], parts[1:]
    if len(rest) == 1:  # a.b: the usual nested field, without the loop
        second = rest[0]

        def pair_lookup(root: dict[str, Any], data: Data) -> Any:
            value = root.get(first, UNDEFINED)
            return value.get(second, UNDEFINED) if type(value) is dict else _get(value, second)

        return pair_lookup

    def path_lookup(root: dict[str, Any], data: Data) -> Any:
        value = root.get(first, UNDEFINED)
        for part in rest:
            value = _get(value, part)
        return value

    return path_lookup


class _Slot:
    """One mustache of a flat program: what it prints (kind) and where its value comes from."""

    __slots__ = ("key", "kind", "lookup", "uses")

    def __init__(self, kind: str, key: str | None, lookup: FlatLookup | None, uses: str | None) -> None:
        self.kind = kind  # escaped ({{x}}), raw ({{{x}}}) or json ({{json x}})
        self.key = key  # a key of the root, fetched with the others in one call...
        self.lookup = lookup  # ...or a lookup of its own (a.b, @event.X, this)
        self.uses = uses  # a name that must not be a registered helper


def _top_key(expr: Expr) -> str | None:
    """``name``: a key of the root, as resolve_one reads it at the top level (no block params there)."""
    if isinstance(expr, PathExpr) and not expr.data and not expr.this and expr.depth == 0 and len(expr.parts) == 1:
        return expr.parts[0]
    return None


def _flat_slot(node: Mustache) -> _Slot | None:
    """How a mustache prints in a flat program; None when it needs the general program."""
    call = node.call
    kind = "escaped" if node.escaped else "raw"
    if not call.params and not call.hash:
        called = call_name(call)
        if called is not None and called in BUILTIN_HELPERS:
            return None
        name = _helper_name(call)
        if name is not None:  # {{name}} calls a helper when one is registered under that name
            return _Slot(kind, name, None, name)
        lookup = _flat_lookup(call.path) if not isinstance(call.path, Literal) else None
        return _Slot(kind, None, lookup, called) if lookup is not None else None
    if _helper_name(call) == "json" and len(call.params) == 1 and not call.hash:
        # The helper returns a SafeString: {{json x}} and {{{json x}}} print the same.
        param = call.params[0]
        key = _top_key(param)
        if key is not None:
            return _Slot("json", key, None, "json")
        lookup = _flat_lookup(param)
        return _Slot("json", None, lookup, "json") if lookup is not None else None
    return None


FlatValues = Callable[[dict[str, Any], Data], Sequence[Any]]


def _values_of(slots: list[_Slot]) -> FlatValues | None:
    """The values of ``slots`` in order: keys first, in one C call (itemgetter), then lookups."""
    keys = [s.key for s in slots if s.key is not None]
    lookups = [s.lookup for s in slots if s.lookup is not None]
    if not slots:
        return None
    def grab_each(root: dict[str, Any]) -> Sequence[Any]:  # itemgetter(k) gives no tuple
        return tuple(root[key] for key in keys)

    grab: Callable[[dict[str, Any]], Sequence[Any]] = itemgetter(*keys) if len(keys) >= 2 else grab_each

    def keyed(root: dict[str, Any], data: Data = None) -> Sequence[Any]:
        # A missing key reads as None here, UNDEFINED there: both print the same.
        try:
            return grab(root)
        except KeyError:
            return tuple(map(root.get, keys))

    # Rows have few lookups besides keys: one or two are called without a loop.
    if not lookups:
        return keyed
    if len(lookups) == 1:
        (first,) = lookups
        return lambda root, data: (*keyed(root), first(root, data))
    if len(lookups) == 2:
        first, second = lookups
        return lambda root, data: (*keyed(root), first(root, data), second(root, data))
    return lambda root, data: (*keyed(root), *[lookup(root, data) for lookup in lookups])


class _FlatProgram:
    """Literals and slots, rendered as ``literal0 text0 literal1 text1 … literalN``.

    The slots' texts are computed by kind (escaped, raw, json), each kind in as
    few calls as possible, and put between the literals by a slice assignment:
    C calls instead of a Python loop over the slots. ``render`` is a closure.
    """

    __slots__ = ("render", "uses")

    def __init__(self, literals: list[str], slots: list[_Slot]) -> None:
        self.uses = frozenset(s.uses for s in slots if s.uses is not None)
        self.render = _flat_renderer(literals, slots)


FlatRender = Callable[[dict[str, Any], Data, Escape, Callable[[str], Any]], str]


def _flat_renderer(literals: list[str], slots: list[_Slot]) -> FlatRender:
    """``literals`` has one entry before each slot and one after the last."""
    by_kind = {
        kind: [s for s in slots if s.kind == kind and s.key is not None] + [s for s in slots if s.kind == kind and s.key is None]
        for kind in ("escaped", "raw", "json")
    }
    escaped_values, raw_values, json_values = (_values_of(by_kind[kind]) for kind in ("escaped", "raw", "json"))
    # The texts come by kind; `in_order` puts them in template order (None when
    # they already are, as in a row whose {{json}} fields come last), and they
    # go into the odd places of a copy of `skeleton`, between the literals.
    computed = [*by_kind["escaped"], *by_kind["raw"], *by_kind["json"]]
    index = {id(slot): i for i, slot in enumerate(computed)}
    order = [index[id(slot)] for slot in slots]
    in_order: Callable[[list[Any]], Sequence[Any]] | None = itemgetter(*order) if order != sorted(order) else None
    skeleton: list[Any] = [None] * (2 * len(slots) + 1)
    skeleton[::2] = literals

    def render(root: dict[str, Any], data: Data, escape: Escape, needs_escape: Callable[[str], Any]) -> str:
        escaped: Sequence[Any] = ()
        if escaped_values is not None:
            escaped = escaped_values(root, data)
            try:
                clean = not needs_escape("".join(escaped))  # one pass over all the values
            except TypeError:  # a value that is no string
                clean = False
            if not clean:
                escaped = [print_escaped(value, escape) for value in escaped]
        raw: Sequence[Any] = ()
        if raw_values is not None:
            raw = raw_values(root, data)
            try:
                "".join(raw)
            except TypeError:
                raw = [js_string(value) for value in raw]
        as_json: Sequence[str] = ()
        if json_values is not None:
            try:
                as_json = list(map(json_literal, json_values(root, data)))
            except Exception:  # noqa: BLE001 - the general program reports it as helper 'json' failing
                raise _Fallback from None
        texts = [*escaped, *raw, *as_json]
        parts = skeleton.copy()
        parts[1::2] = texts if in_order is None else in_order(texts)
        return "".join(parts)

    return render


def compile_flat(nodes: list[Node]) -> _FlatProgram | None:
    """A flat program for a top level of only text and simple mustaches, else None.

    The general program checks the clock every _CHECK_EVERY helper calls; a flat
    program has fewer than that, so like the general one it never needs to.
    """
    literals: list[str] = []
    slots: list[_Slot] = []
    pending = ""
    for node in nodes:
        if isinstance(node, Text):
            pending += node.value
            continue
        slot = _flat_slot(node) if isinstance(node, Mustache) else None
        if slot is None:
            return None
        literals.append(pending)
        slots.append(slot)
        pending = ""
    if not slots or sum(s.kind == "json" for s in slots) >= _CHECK_EVERY:
        return None
    literals.append(pending)
    return _FlatProgram(literals, slots)


ESCAPES: dict[str, Callable[[str], str]] = {"html": escape_html, "json": escape_json}
NEEDS_ESCAPE: dict[str, Callable[[str], Any]] = {"html": NEEDS_HTML_ESCAPE, "json": needs_json_escape}
_MODES = {name: (ESCAPES[name], NEEDS_ESCAPE[name]) for name in ESCAPES}


class Template:
    """A compiled template: render it as often as you like."""

    __slots__ = ("_flat", "_program", "source")

    def __init__(self, source: str, program: CompiledProgram, flat: _FlatProgram | None = None) -> None:
        self.source = source
        self._program = program
        self._flat = flat  # the same template for the common case, when it has that shape

    def render(
        self,
        context: Any,
        *,
        data: Mapping[str, Any] | None = None,
        helpers: Mapping[str, Callable[..., Any]] | None = None,
        partials: Mapping[str, str | Template] | None = None,
        escape: str = "html",
        max_output: int = DEFAULT_MAX_OUTPUT,
        time_limit: float = DEFAULT_TIME_LIMIT_S,
    ) -> str:
        """Render with ``context`` as the root; ``data`` adds ``@`` variables."""
        mode = _MODES.get(escape)
        if mode is None:
            raise ValueError(f"escape must be one of {sorted(ESCAPES)}, not {escape!r}")
        flat = self._flat
        if (
            flat is not None
            and type(context) is dict
            and not partials  # the general program compiles (and so checks) the partials given
            and (data is None or type(data) is dict)
            and (not helpers or helpers.keys().isdisjoint(flat.uses))
        ):
            try:
                text = flat.render(context, data, mode[0], mode[1])
            except (_Fallback, RecursionError):
                pass  # the general program renders it, or raises its error
            else:
                if len(text) > max_output:
                    raise TemplateRenderError(f"output larger than {max_output} characters")
                return text
        return self._render_general(context, data, helpers, partials, mode[0], max_output, time_limit)

    def _render_general(
        self,
        context: Any,
        data: Mapping[str, Any] | None,
        helpers: Mapping[str, Callable[..., Any]] | None,
        partials: Mapping[str, str | Template] | None,
        escape: Escape,
        max_output: int,
        time_limit: float,
    ) -> str:
        all_helpers = {**BUILTIN_HELPERS, **helpers} if helpers else BUILTIN_HELPERS
        compiled_partials: dict[str, Any] = {}
        for name, partial in (partials or {}).items():
            compiled_partials[name] = (partial if isinstance(partial, Template) else compile_template(partial))._program
        frame = DataFrame({"root": context, **(data or {})}, None)
        scope = Scope(context, None, frame, {}, compiled_partials, 0)
        state = State(all_helpers, escape, max_output, time.monotonic() + time_limit)
        try:
            return state.check_size(self._program(scope, state))
        except RecursionError:
            raise TemplateRenderError("template nesting too deep") from None


_CACHE: OrderedDict[str, Template] = OrderedDict()


def compile_template(source: str) -> Template:
    """Parse and compile ``source`` (cached by its hash); raises TemplateSyntaxError."""
    if not isinstance(source, str):
        raise TemplateError("a template must be a string")
    key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    cached = _CACHE.get(key)
    if cached is not None:
        _CACHE.move_to_end(key)
        return cached
    nodes = parse(source)
    template = Template(source, compile_program(nodes), compile_flat(nodes))
    _CACHE[key] = template
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return template


# Handlebars.Net.Helpers (String.*, Math.*, DateTime.*, ...): built in, as in the vendor's engine.
from hub_stream.templating.net_helpers import register as _register_net_helpers  # noqa: E402 - they use this module

_register_net_helpers(BUILTIN_HELPERS, HELPER_ALIASES, RESULT_PRINTERS)
