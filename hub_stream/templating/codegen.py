"""Native programs: a template of the common language compiled to one Python function.

The rule (ARCHITECTURE.md "Templates"): template text never becomes Python
source. The generator writes only its own fixed constructs; every name,
literal and text that comes from a template enters as ``K[i]``, an entry of
a table of constants, and the generated identifiers are its own counters
(``_v12``, ``_c3``). ``tests/unit/templating/test_codegen.py`` fuzzes template
text against exactly that: no string literal and no name in the generated
source that the generator did not write itself. The function runs with no
builtins but the few handed to it.

Covered: text, path mustaches (``{{a.b}}``, ``{{{x}}}``, ``this``, ``../``,
``@index @key @first @last @root @event…``, block parameters), ``json`` and
``lookup`` (also as subexpressions), and ``if``/``unless`` (with
``includeZero``), ``each`` and ``with`` blocks with their ``else`` chains.
Anything else (other helpers, partials, sections on values, raw blocks) and
any render given helpers that shadow a name the template uses goes to the
closure program, as does a render that passes the output cap (the closure
program then reports it with line and column). Prints with the same
functions as the closure program, so the output is the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from hub_stream.templating.compiler import is_true
from hub_stream.templating.errors import TemplateRenderError
from hub_stream.templating.parser import (
    Block,
    Expr,
    InlinePartial,
    Literal,
    Mustache,
    Node,
    PathExpr,
    SubExpr,
    Text,
)
from hub_stream.templating.runtime import BUILTIN_HELPERS, helper_name_of
from hub_stream.templating.values import (
    UNDEFINED,
    get_key,
    is_empty,
    js_string,
    json_literal,
    print_escaped,
)

MAX_CONSTANTS = 4096
MAX_SOURCE = 32 * 1024


class Unsupported(Exception):
    """The template uses something the native program does not cover."""


class Fallback(Exception):
    """This render is for the closure program (which also reports any error)."""


_CLOCK_EVERY_CHARS = 64 * 1024


def _grew(size: int, cap: int, deadline: float, line: int, column: int) -> int:
    """Output passed its last checkpoint: the cap (the closure program reports it), the clock; the next checkpoint."""
    if size > cap:
        raise Fallback
    if time.monotonic() > deadline:
        raise TemplateRenderError("render took longer than its time limit").at(line, column)
    return min(cap, size + _CLOCK_EVERY_CHARS)


def _late(line: int, column: int) -> None:
    raise TemplateRenderError("render took longer than its time limit").at(line, column)


def _top(data: Mapping[str, Any] | None, root: Any, name: str) -> Any:
    """``@name`` in the top data frame: the data given, then ``@root``."""
    if data is not None and name in data:
        return data[name]
    return root if name == "root" else UNDEFINED


# Everything the generated code can reach: these names and nothing else (no builtins).
RUNTIME: dict[str, Any] = {
    "U": UNDEFINED,
    "_gk": get_key,
    "_pe": print_escaped,
    "_js": js_string,
    "_jl": json_literal,
    "_t": is_true,
    "_empty": is_empty,
    "_top": _top,
    "_grew": _grew,
    "_STEP": _CLOCK_EVERY_CHARS,
    "_late": _late,
    "_now": time.monotonic,
    "_join": "".join,
    "len": len,
    "type": type,
    "range": range,
    "list": list,
    "dict": dict,
    "str": str,
    "int": int,
}

_EACH_VARS = ("index", "key", "first", "last")


class _Scope:
    """What a node sees, statically: context variables (innermost last), each frames, block parameters."""

    def __init__(self, contexts: list[str], frames: list[dict[str, str]], params: dict[str, str]) -> None:
        self.contexts = contexts
        self.frames = frames
        self.params = params


class _Generator:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.indent = 1
        self.constants: list[Any] = []
        self.counter = 0
        self.uses: set[str] = set()

    def const(self, value: Any) -> str:
        self.constants.append(value)
        if len(self.constants) > MAX_CONSTANTS:
            raise Unsupported
        return f"K[{len(self.constants) - 1}]"

    def var(self, kind: str) -> str:
        self.counter += 1
        return f"_{kind}{self.counter}"

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    # --- values ---------------------------------------------------------------------

    def path(self, path: PathExpr, scope: _Scope) -> str:
        if path.data:
            return self.data_path(path, scope)
        parts = list(path.parts)
        if parts and not path.this and path.depth == 0 and parts[0] in scope.params:
            base = scope.params[parts.pop(0)]
        elif path.depth >= len(scope.contexts):
            return "U"
        else:
            base = scope.contexts[-1 - path.depth]
        return self.walk(base, parts)

    def walk(self, base: str, parts: list[str]) -> str:
        if not parts:
            return base
        out = self.var("v")
        self.emit(f"{out} = {base}")
        for part in parts:
            key = self.const(part)
            self.emit(f"{out} = {out}.get({key}, U) if type({out}) is dict else _gk({out}, {key})")
        return out

    def data_path(self, path: PathExpr, scope: _Scope) -> str:
        if not path.parts:
            raise Unsupported
        head, rest = path.parts[0], list(path.parts[1:])
        # the data as given, then the top frame (root + data), then one frame per #each
        frames: list[dict[str, str] | str] = ["data", "top", *scope.frames]
        start = len(frames) - 1 - path.depth
        if start < 0:
            return "U"
        if head == "partial-block":
            raise Unsupported
        if head == "root" and start >= 1:  # the top frame's @root, below any #each frame (they have no root)
            return self.walk("_c0", rest)
        for frame in reversed(frames[: start + 1]):
            if isinstance(frame, dict):
                if head in frame:
                    return self.walk(frame[head], rest)
                continue
            value = self.var("v")
            name = self.const(head)
            if frame == "top":
                self.emit(f"{value} = _top(_data, _c0, {name})")
            else:
                self.emit(f"{value} = _data.get({name}, U) if _data is not None else U")
            return self.walk(value, rest)
        raise Unsupported  # pragma: no cover

    def expr(self, expr: Expr, scope: _Scope) -> str:
        if isinstance(expr, Literal):
            return self.const(expr.value)
        if isinstance(expr, PathExpr):  # an argument is a lookup, never a helper call
            return self.path(expr, scope)
        if isinstance(expr, SubExpr):
            return self.call_value(expr.call.path, expr.call.params, expr.call.hash, scope)
        raise Unsupported

    def helper_name(self, path: Expr, scope: _Scope) -> str | None:
        name = helper_name_of(path)
        if name is None or (isinstance(path, PathExpr) and path.parts[0] in scope.params):
            return None
        return name

    def call_value(self, head: Expr, params: list[Expr], hash_: dict[str, Expr], scope: _Scope) -> str:
        """``json x`` and ``lookup x y``: the only calls a native program makes."""
        name = self.helper_name(head, scope)
        if hash_ or name not in ("json", "lookup") or len(params) != (1 if name == "json" else 2):
            raise Unsupported
        self.uses.add(name)
        args = [self.expr(p, scope) for p in params]
        out = self.var("v")
        if name == "json":
            self.emit(f"{out} = _jl({args[0]})")
        elif isinstance(params[1], Literal):  # lookup x "key": the key's text is a constant
            key = self.const(js_string(params[1].value))
            self.emit(f"{out} = {args[0]}.get({key}, U) if type({args[0]}) is dict else _gk({args[0]}, {key})")
        else:
            self.emit(f"{out} = _gk({args[0]}, _js({args[1]}))")
        return out

    # --- output ---------------------------------------------------------------------

    def count(self, text_var: str, node: Mustache) -> None:
        """Output is counted as it is made; past each checkpoint, the cap and the clock."""
        self.emit(f"_n += len({text_var})")
        self.emit(f"if _n > _next: _next = _grew(_n, _cap, _deadline, {self.const(node.line)}, {self.const(node.column)})")

    def mustache(self, node: Mustache, scope: _Scope) -> str:
        call = node.call
        out = self.var("s")
        if not call.params and not call.hash and isinstance(call.path, PathExpr):
            name = self.helper_name(call.path, scope)
            if name is not None:
                if name in BUILTIN_HELPERS:
                    raise Unsupported
                self.uses.add(name)  # {{name}} calls a helper when one is registered under that name
            value = self.path(call.path, scope)
            self.print(out, value, node.escaped)
        else:
            value = self.call_value(call.path, call.params, call.hash, scope)
            if self.helper_name(call.path, scope) == "json":
                out = value  # json_literal's text: a SafeString prints as it is, escaped or not
            else:
                self.print(out, value, node.escaped)
        self.count(out, node)
        return out

    def print(self, out: str, value: str, escaped: bool) -> None:
        """``{{value}}`` (escaped) or ``{{{value}}}``, as print_escaped and js_string print it."""
        self.emit(f"if type({value}) is str:")
        self.emit(f"    {out} = _esc({value})" if escaped else f"    {out} = {value}")
        self.emit(f"elif type({value}) is int:")
        self.emit(f"    {out} = str({value})")
        self.emit("else:")
        self.emit(f"    {out} = _pe({value}, _esc)" if escaped else f"    {out} = _js({value})")

    def program(self, nodes: list[Node] | None, scope: _Scope) -> str:
        """Statements that leave the program's text in a variable; returns its name."""
        pieces: list[str] = []
        text_length = 0
        for node in nodes or []:
            if isinstance(node, Text):
                pieces.append(self.const(node.value))
                text_length += len(node.value)
            elif isinstance(node, Mustache):
                pieces.append(self.mustache(node, scope))
            elif isinstance(node, Block):
                pieces.append(self.block(node, scope))
            elif isinstance(node, InlinePartial):
                raise Unsupported
            else:
                raise Unsupported
        if text_length and scope.frames:  # outside loops, texts are bounded by the template (the caller checks the total)
            self.emit(f"_n += {self.const(text_length)}")
        if not pieces:
            return self.const("")
        if len(pieces) == 1:
            return pieces[0]
        out = self.var("s")
        joined = " + ".join(pieces) if len(pieces) <= 8 else "_join((" + ", ".join(pieces) + "))"
        self.emit(f"{out} = {joined}")
        return out

    # --- blocks ---------------------------------------------------------------------

    def block(self, node: Block, scope: _Scope) -> str:
        links = [node]
        while links[-1].inverse is not None and len(links[-1].inverse) == 1 and isinstance(links[-1].inverse[0], Block):
            links.append(links[-1].inverse[0])
        if node.inverted:
            raise Unsupported
        out = self.var("s")
        if len(links) == 1 and self.helper_name(node.call.path, scope) in ("if", "unless"):
            self.conditional(node, scope, out)
            return out
        self.emit("while True:")
        self.indent += 1
        for link in links:
            self.link(link, scope, out)
        final = self.program(links[-1].inverse, scope)
        self.emit(f"{out} = {final}")
        self.emit("break")
        self.indent -= 1
        return out

    def condition(self, node: Block, scope: _Scope) -> str:
        """The test of an if/unless block, as a Python expression."""
        call = node.call
        name = self.helper_name(call.path, scope)
        if name not in ("if", "unless") or len(call.params) != 1 or set(call.hash) - {"includeZero"} or node.block_params:
            raise Unsupported
        self.uses.add(name)
        param = call.params[0]
        frame_flag = isinstance(param, PathExpr) and param.data and param.depth == 0 and param.parts in (("first",), ("last",))
        if frame_flag and scope.frames and not call.hash:  # @first/@last of the innermost #each: a bool already
            test = scope.frames[-1][param.parts[0]]  # type: ignore[union-attr]
        else:
            value = self.expr(param, scope)
            zero_expr = call.hash.get("includeZero")
            if isinstance(zero_expr, Literal):  # includeZero=true: decided now
                test = f"_t({value}, {is_true(zero_expr.value, False)})"
            elif zero_expr is not None:
                test = f"_t({value}, _t({self.expr(zero_expr, scope)}, False))"
            else:  # booleans decided without a call
                test = f"({value} is True or ({value} is not False and _t({value}, False)))"
        return test if name == "if" else f"not {test}"

    def conditional(self, node: Block, scope: _Scope, out: str) -> None:
        self.emit(f"if {self.condition(node, scope)}:")
        self.indent += 1
        self.emit(f"{out} = {self.program(node.program, scope)}")
        self.indent -= 1
        self.emit("else:")
        self.indent += 1
        self.emit(f"{out} = {self.program(node.inverse, scope)}")
        self.indent -= 1

    def link(self, node: Block, scope: _Scope, out: str) -> None:
        """One link of a chain: when it applies, its text goes to ``out`` and the chain ends (break)."""
        call = node.call
        name = self.helper_name(call.path, scope)
        if name in ("if", "unless"):
            self.emit(f"if {self.condition(node, scope)}:")
            self.indent += 1
            text = self.program(node.program, scope)
            self.emit(f"{out} = {text}")
            self.emit("break")
            self.indent -= 1
            return
        if name not in ("each", "with") or len(call.params) != 1 or call.hash:
            raise Unsupported
        self.uses.add(name)
        value = self.expr(call.params[0], scope)
        names = node.block_params
        if name == "with":
            if len(names) > 1:
                raise Unsupported
            self.emit(f"if not _empty({value}):")
            self.indent += 1
            context = self.var("c")
            self.emit(f"{context} = {value}")
            params = {**scope.params, **({names[0]: context} if names else {})}
            text = self.program(node.program, _Scope([*scope.contexts, context], scope.frames, params))
            self.emit(f"{out} = {text}")
            self.emit("break")
            self.indent -= 1
            return
        self.each(node, value, scope, out)

    def each(self, node: Block, items: str, scope: _Scope, out: str) -> None:
        names = node.block_params
        if len(names) > 2:
            raise Unsupported
        keys, count, index, key, item, parts = (self.var(k) for k in ("k", "m", "i", "key", "c", "p"))
        self.emit(f"if type({items}) is list:")
        self.emit(f"    {keys} = None")
        self.emit(f"    {count} = len({items})")
        self.emit(f"elif type({items}) is dict:")
        self.emit(f"    {keys} = list({items})")
        self.emit(f"    {count} = len({keys})")
        self.emit("else:")
        self.emit(f"    {count} = 0")
        self.emit(f"if {count}:")
        self.indent += 1
        self.emit(f"{parts} = []")
        self.emit(f"for {index} in range({count}):")
        self.indent += 1
        self.emit(f"if not {index} & 255 and _now() > _deadline:")
        self.emit(f"    _late({self.const(node.line)}, {self.const(node.column)})")
        self.emit(f"if {keys} is None:")
        self.emit(f"    {key} = {index}")
        self.emit(f"    {item} = {items}[{index}]")
        self.emit("else:")
        self.emit(f"    {key} = {keys}[{index}]")
        self.emit(f"    {item} = {items}[{key}]")
        frame = {"index": index, "key": key, "first": f"({index} == 0)", "last": f"({index} == {count} - 1)"}
        params = {**scope.params, **dict(zip(names, (item, key), strict=False))}
        text = self.program(node.program, _Scope([*scope.contexts, item], [*scope.frames, frame], params))
        self.emit(f"{parts}.append({text})")
        self.emit(f"if _n > _next: _next = _grew(_n, _cap, _deadline, {self.const(node.line)}, {self.const(node.column)})")
        self.indent -= 1
        self.emit(f"{out} = _join({parts})")
        self.emit("break")
        self.indent -= 1


NativeRender = Callable[[Any, Any, Callable[[str], str], int, float], str]


class NativeProgram:
    """A template as one generated function; ``uses``: names a render's own helpers must not shadow."""

    __slots__ = ("render", "source", "uses")

    def __init__(self, render: NativeRender, source: str, uses: frozenset[str]) -> None:
        self.render = render
        self.source = source
        self.uses = uses


def generate(nodes: list[Node]) -> tuple[str, list[Any], frozenset[str]]:
    """The Python source of a native program for ``nodes``, its constants and the names it uses; Unsupported if none."""
    gen = _Generator()
    text = gen.program(nodes, _Scope(["_c0"], [], {}))
    gen.emit(f"return {text}")
    head = [
        "def render(_c0, _data, _esc, _cap, _deadline):",
        "    _n = 0",
        "    _next = _cap if _cap < _STEP else _STEP",
    ]
    return "\n".join(head + gen.lines) + "\n", gen.constants, frozenset(gen.uses)


def compile_native(nodes: list[Node], source_length: int = 0) -> NativeProgram | None:
    """A native program for ``nodes``, or None when the template needs the closure program.

    Not for templates over MAX_SOURCE characters: Python compiles the
    generated source in time that grows faster than the template (row
    templates are far smaller).
    """
    if source_length > MAX_SOURCE:
        return None
    try:
        source, constants, uses = generate(nodes)
        code = compile(source, "<template>", "exec")
    except (Unsupported, SyntaxError, RecursionError, MemoryError):
        return None
    namespace: dict[str, Any] = {"__builtins__": {}, "K": tuple(constants), **RUNTIME}
    exec(code, namespace)  # noqa: S102 - generated by this module alone; template text only in K
    return NativeProgram(namespace["render"], source, uses)
