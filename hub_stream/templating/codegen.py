"""Native programs: a template of the common language compiled to one Python function.

The rule (ARCHITECTURE.md "Templates"): template text never becomes Python
source. The generator writes only its own fixed constructs; every name,
literal and text that comes from a template enters as ``_K<i>``, entry i of
a table of constants (bound as a global name of the function: one lookup
where ``K[i]`` took three), and the generated identifiers are its own
counters (``_v12``, ``_c3``). ``tests/unit/templating/test_codegen.py``
fuzzes template text against exactly that: no string literal but the
generator's f-strings of names alone, and no name in the generated source
that the generator did not write itself. The function runs with no builtins
but the few handed to it (native_runtime.RUNTIME).

Covered: text, path mustaches (``{{a.b}}``, ``{{{x}}}``, ``this``, ``../``,
``@index @key @first @last @root @event…``, block parameters), ``json`` and
``lookup`` (also as subexpressions), calls of the Handlebars.Net.Helpers
(mustaches and subexpressions, not their block forms), and ``if``/``unless``
(with ``includeZero``), ``each`` and ``with`` blocks with their ``else``
chains. Anything else (other helpers, partials, sections on values, raw
blocks) and any render given helpers that shadow a name the template uses
goes to the closure program, as does a render that passes the output cap or
a helper that fails (the closure program then reports it with line and
column). Prints with the same functions as the closure program, or inline
code that prints the same (the JSON escape's check, numbers, booleans).

Generated code reads each path prefix once per region where it is surely
assigned (a value is never changed by a render), and counts output a few
mustaches at a time, before any text that holds them is joined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType, FunctionType
from typing import Any

from hub_stream.templating.compiler import is_true
from hub_stream.templating.native_runtime import RUNTIME, Fallback
from hub_stream.templating.parser import (
    Block,
    Expr,
    Literal,
    Mustache,
    Node,
    PathExpr,
    SubExpr,
    Text,
)
from hub_stream.templating.runtime import BUILTIN_HELPERS, RESULT_PRINTERS, helper_name_of
from hub_stream.templating.values import js_string

__all__ = ["RUNTIME", "Fallback", "NativeProgram", "Unsupported", "compile_native", "generate"]

MAX_CONSTANTS = 4096
MAX_SOURCE = 32 * 1024
MAX_FORMAT = 64  # pieces joined by one f-string; more by str.join
COUNT_EVERY = 8  # mustaches whose output is counted together (so at most this many values past the cap)


class Unsupported(Exception):
    """The template uses something the native program does not cover."""


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
        self.known: dict[tuple[str, ...], str] = {}  # a value read already in this region -> its variable
        self.ints: set[str] = set()  # variables that always hold an int (@index)
        self.dict_flags: dict[str, str] = {"_c0": "_d0"}  # context variable -> whether it holds a dict
        self.where = (1, 1)  # the tag being generated: a helper's error is reported there
        self.tail = (1, 1)  # the root program's last mustache: the exit's clock check reports there
        self.uses_data = False  # reads @ names from the data
        self.loops = False  # has an #each loop
        self.pending = 0  # values of the block just generated that its parent program counts (program)

    def const(self, value: Any) -> str:
        self.constants.append(value)
        if len(self.constants) > MAX_CONSTANTS:
            raise Unsupported
        return f"_K{len(self.constants) - 1}"

    def var(self, kind: str) -> str:
        self.counter += 1
        return f"_{kind}{self.counter}"

    def context(self, value: str) -> str:
        """A new context variable holding ``value``, with its flag (is it a dict?) read once."""
        context, flag = self.var("c"), self.var("d")
        self.emit(f"{context} = {value}")
        self.emit(f"{flag} = type({context}) is dict")
        self.dict_flags[context] = flag
        return context

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    @contextmanager
    def region(self, indent: int = 1) -> Iterator[None]:
        """Code that may not run: what it reads is forgotten after it."""
        known = dict(self.known)
        self.indent += indent
        try:
            yield
        finally:
            self.indent -= indent
            self.known = known

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
        """``base`` then each key in turn; a prefix read before in this region is not read again."""
        value = base
        for part in parts:
            value = self.key(value, part)
        return value

    def key(self, value: str, part: str) -> str:
        """``value[part]`` as get_key reads it; read once per region (keyed by the variable, unique per prefix)."""
        seen = (value, part)
        if seen in self.known:
            return self.known[seen]
        out = self.var("v")
        key = self.const(part)
        is_dict = self.dict_flags.get(value) or f"type({value}) is dict"
        if part.isdigit() and part.isascii():  # an index: a list's item read inline (lists first)
            index = self.const(int(part))
            self.emit(
                f"{out} = {value}[{index}] if type({value}) is list and {index} < len({value})"
                f" else {value}.get({key}, U) if {is_dict} else _gk({value}, {key})"
            )
        else:
            self.emit(f"{out} = {value}.get({key}, U) if {is_dict} else _gk({value}, {key})")
        self.known[seen] = out
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
            value = self.known.get(("@top", head))
            if value is None:  # the root, unless the data given names one
                value = self.var("v")
                self.emit(f"{value} = _data[_ROOT] if _data is not None and _ROOT in _data else _c0")
                self.known["@top", head] = value
            return self.walk(value, rest)
        for frame in reversed(frames[: start + 1]):
            if isinstance(frame, dict):
                if head in frame:
                    return self.walk(frame[head], rest)
                continue
            seen = (f"@{frame}", head)
            value = self.known.get(seen)
            if value is None:
                value = self.var("v")
                name = self.const(head)
                self.uses_data = True
                self.emit(f"{value} = _data.get({name}, U) if _data is not None else U")
                if frame == "top":
                    self.emit(f"if {value} is U: {value} = _top(_data, _c0, {name})")
                self.known[seen] = value
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
        """``json x``, ``lookup x y`` and Handlebars.Net.Helpers calls: the calls a native program makes."""
        name = self.helper_name(head, scope)
        if name is not None and name in RESULT_PRINTERS and not hash_:
            return self.net_call(name, params, scope)
        if hash_ or name not in ("json", "lookup") or len(params) != (1 if name == "json" else 2):
            raise Unsupported
        self.uses.add(name)
        args = [self.expr(p, scope) for p in params]
        if name == "lookup" and isinstance(params[1], Literal):  # lookup x "key": as the path x.[key]
            return self.key(args[0], js_string(params[1].value))
        out = self.var("v")
        if name == "json":
            self.emit(f"{out} = _jl({args[0]})")
        else:
            self.emit(f"{out} = _gk({args[0]}, _js({args[1]}))")
        return out

    def net_call(self, name: str, params: list[Expr], scope: _Scope) -> str:
        """A Handlebars.Net.Helpers call (a pure function); when it fails, the closures report it."""
        self.uses.add(name)
        args = [self.expr(p, scope) for p in params]
        helper = self.const(BUILTIN_HELPERS[name])
        out = self.var("v")
        self.emit("try:")
        self.emit(f"    {out} = {helper}({', '.join([*args, '_opts'])})")
        self.emit("except _Err as _err:")
        self.emit(f"    _failed(_err, {self.const(self.where[0])}, {self.const(self.where[1])})")
        return out

    # --- output ---------------------------------------------------------------------

    def mustache(self, node: Mustache, scope: _Scope) -> str:
        call = node.call
        out = self.var("s")
        name = self.helper_name(call.path, scope)
        self.where = (node.line, node.column)
        if not call.params and not call.hash and isinstance(call.path, PathExpr):
            if name is not None and name in RESULT_PRINTERS:  # {{DateTime.Now}}: a call without arguments
                value = self.net_call(name, [], scope)
                self.emit(f"{value} = _np({value})")
            elif name is not None and name in BUILTIN_HELPERS:
                raise Unsupported
            else:
                if name is not None:
                    self.uses.add(name)  # {{name}} calls a helper when one is registered under that name
                value = self.path(call.path, scope)
            self.print(out, value, node.escaped)
        elif name == "json" and len(call.params) == 1 and not call.hash:
            self.uses.add(name)
            self.json_text(out, self.expr(call.params[0], scope))
        else:
            value = self.call_value(call.path, call.params, call.hash, scope)
            if name is not None and name in RESULT_PRINTERS:
                self.emit(f"{value} = _np({value})")
            self.print(out, value, node.escaped)
        return out

    def print(self, out: str, value: str, escaped: bool) -> None:
        """``{{value}}`` (escaped) or ``{{{value}}}``, as print_escaped and js_string print it.

        The JSON escape's check (escape_json: no quote, no backslash, all
        printable) runs inline; any other escape is called.
        """
        if value in self.ints:
            self.emit(f"{out} = str({value})")
            return
        self.emit(f"if type({value}) is str:")
        if escaped:
            self.emit(f"    if _json and _QUOTE not in {value} and _BSLASH not in {value} and {value}.isprintable():")
            self.emit(f"        {out} = {value}")
            self.emit("    else:")  # the JSON escape's check is made: what remains of it
            self.emit(f"        {out} = _ejx({value}) if _json else _esc({value})")
        else:
            self.emit(f"    {out} = {value}")
        self.emit(f"elif type({value}) is int:")
        self.emit(f"    {out} = str({value})")
        self.emit("else:")
        self.emit(f"    {out} = _pe({value}, _esc)" if escaped else f"    {out} = _js({value})")

    def json_text(self, out: str, value: str) -> None:
        """``{{json value}}``: numbers, booleans and plain text inline, as json_literal prints them; the rest by it.

        A double's text comes from a table of the doubles printed before (rows repeat
        the same scores and hours): one dict lookup, where printing one takes a few
        calls and, with a fraction, float.__repr__'s shortest round trip.
        """
        if value in self.ints:
            self.emit(f"{out} = str({value})")
            return
        kind = self.var("t")
        self.emit(f"{kind} = type({value})")
        self.emit(f"if {kind} is float:")  # a double's text, printed once (values.FLOAT_TEXTS)
        self.emit(f"    {out} = _FT.get({value})")
        self.emit(f"    if {out} is None:")
        self.emit(f"        {out} = _ft({value})")
        self.emit(f"elif {kind} is str:")
        self.emit(f"    if _QUOTE not in {value} and _BSLASH not in {value} and {value}.isprintable():")
        self.emit(f"        {out} = {self.joined(['_QUOTE', value, '_QUOTE'])}")
        self.emit("    else:")
        self.emit(f"        {out} = _jl({value})")
        self.emit(f"elif {kind} is int:")
        self.emit(f"    {out} = str({value})")
        self.emit(f"elif {kind} is bool:")
        self.emit(f"    {out} = _TRUE if {value} else _FALSE")
        self.emit(f"elif {kind} is dict or {kind} is list:")
        self.emit(f"    {out} = _jc({value}, True)")  # json_literal's own printer for these
        self.emit("else:")
        self.emit(f"    {out} = _jl({value})")

    @staticmethod
    def joined(pieces: list[str]) -> str:
        """An expression for the concatenation of ``pieces`` (names, constants among them): one f-string, built in one step."""
        if len(pieces) > MAX_FORMAT:
            return "_join((" + ", ".join(pieces) + "))"
        return "f'" + "".join("{" + piece + "}" for piece in pieces) + "'"

    def count(self, texts: list[str], line: int, column: int) -> None:
        """Output is counted before it is joined; past each checkpoint, the cap and the clock."""
        if not texts:
            return
        self.emit(f"_n += {' + '.join(f'len({t})' for t in texts)}")
        self.emit(f"if _n > _next: _next = _grew(_n, _cap, _deadline, {self.const(line)}, {self.const(column)})")

    def program(self, nodes: list[Node] | None, scope: _Scope, top: bool = False, defer: bool = False) -> str:
        """Statements that leave the program's text in a variable; returns its name.

        The root program (``top``) leaves its last mustaches to the render's
        exit, which measures the whole text (ENTRY/EXIT). A program that may
        ``defer`` (a branch of an if/unless outside loops) leaves its mustaches,
        when it has no other count, to the count of the program around it:
        ``self.pending`` says how many values they are.
        """
        pieces: list[str] = []
        uncounted: list[str] = []  # pieces whose text is not counted yet
        weight = 0  # the values they hold
        text_length = 0
        counted = False  # the pieces hold text counted already (a block's, an earlier group's)
        where = (1, 1)
        for node in nodes or []:
            if isinstance(node, Text):
                pieces.append(self.const(node.value))
                text_length += len(node.value)
                continue
            if isinstance(node, Mustache):
                piece, values = self.mustache(node, scope), 1
            elif isinstance(node, Block):
                piece, values = self.block(node, scope), self.pending
                self.pending = 0
            else:
                raise Unsupported
            pieces.append(piece)
            if not values:  # a block that counted its own text
                counted = True
                continue
            if weight + values > COUNT_EVERY:
                self.count(uncounted, *where)
                uncounted, weight, counted = [], 0, True
            uncounted.append(piece)
            weight += values
            where = (node.line, node.column)
        if top:
            self.tail = where
            uncounted = []
        if defer and not counted and not scope.frames:  # left to the caller's count
            self.pending = weight
            return self.joined_piece(pieces)
        if len(pieces) > 1 and uncounted and not counted:
            # texts and at most COUNT_EVERY values: counted as the text they join into
            # (outside loops that adds the template's own text, which is bounded by the template)
            out = self.joined_piece(pieces)
            self.count([out], *where)
            return out
        self.count(uncounted, *where)
        if text_length and scope.frames:  # outside loops, texts are bounded by the template (the caller checks the total)
            self.emit(f"_n += {self.const(text_length)}")
        return self.joined_piece(pieces)

    def joined_piece(self, pieces: list[str]) -> str:
        """A name for the concatenation of ``pieces``."""
        if not pieces:
            return self.const("")
        if len(pieces) == 1:
            return pieces[0]
        out = self.var("s")
        self.emit(f"{out} = {self.joined(pieces)}")
        return out

    # --- blocks ---------------------------------------------------------------------

    def block(self, node: Block, scope: _Scope) -> str:
        links = [node]
        while links[-1].inverse is not None and len(links[-1].inverse) == 1 and isinstance(links[-1].inverse[0], Block):
            links.append(links[-1].inverse[0])
        if node.inverted:
            raise Unsupported
        out = self.var("s")
        self.where = (node.line, node.column)  # a chain's links report at its first tag, as in the closures
        if len(links) == 1 and self.helper_name(node.call.path, scope) in ("if", "unless"):
            self.conditional(node, scope, out)
            return out
        self.emit("while True:")
        with self.region():
            for link in links:
                self.where = (node.line, node.column)
                self.link(link, scope, out)
            final = self.program(links[-1].inverse, scope)
            self.emit(f"{out} = {final}")
            self.emit("break")
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
            if zero_expr is None or isinstance(zero_expr, Literal):  # includeZero=true: decided now
                test = self.truth(value, zero_expr is not None and is_true(zero_expr.value, False))
            else:
                test = f"_t({value}, _t({self.expr(zero_expr, scope)}, False))"
        return test if name == "if" else f"not {test}"

    def truth(self, value: str, include_zero: bool) -> str:
        """is_true(value, include_zero) as an expression: booleans, text and doubles without a call
        (and, past the booleans, one type() call)."""
        kind = self.var("t")
        number = f"{value} == {value}" if include_zero else f"{value} != 0 and {value} == {value}"  # NaN is false
        rest = f"(({number}) if {kind} is float else _t({value}, {include_zero}))"
        return f"({value} is True or ({value} is not False and ({value} if ({kind} := type({value})) is str else {rest})))"

    def conditional(self, node: Block, scope: _Scope, out: str) -> None:
        """An if/unless block; outside loops its branches' values are counted with the text around it."""
        self.emit(f"if {self.condition(node, scope)}:")
        with self.region():
            self.emit(f"{out} = {self.program(node.program, scope, defer=True)}")
        pending, self.pending = self.pending, 0
        self.emit("else:")
        with self.region():
            self.emit(f"{out} = {self.program(node.inverse, scope, defer=True)}")
        self.pending = max(pending, self.pending)

    def link(self, node: Block, scope: _Scope, out: str) -> None:
        """One link of a chain: when it applies, its text goes to ``out`` and the chain ends (break)."""
        call = node.call
        name = self.helper_name(call.path, scope)
        if name in ("if", "unless"):
            self.emit(f"if {self.condition(node, scope)}:")
            with self.region():
                text = self.program(node.program, scope)
                self.emit(f"{out} = {text}")
                self.emit("break")
            return
        if name not in ("each", "with") or len(call.params) != 1 or call.hash:
            raise Unsupported
        self.uses.add(name)
        value = self.expr(call.params[0], scope)
        names = node.block_params
        if name == "with":
            if len(names) > 1:
                raise Unsupported
            self.emit(f"if type({value}) is dict or not _empty({value}):")
            with self.region():
                context = self.context(value)
                params = {**scope.params, **({names[0]: context} if names else {})}
                text = self.program(node.program, _Scope([*scope.contexts, context], scope.frames, params))
                self.emit(f"{out} = {text}")
                self.emit("break")
            return
        self.each(node, value, scope, out)

    def each(self, node: Block, items: str, scope: _Scope, out: str) -> None:
        self.loops = True
        names = node.block_params
        if len(names) > 2:
            raise Unsupported
        keys, count, index, key, parts = (self.var(k) for k in ("k", "m", "i", "key", "p"))
        self.emit(f"if type({items}) is list:")
        self.emit(f"    {count} = len({items})")
        self.emit(f"    {keys} = range({count})")
        self.emit(f"elif type({items}) is dict:")
        self.emit(f"    {keys} = list({items})")
        self.emit(f"    {count} = len({keys})")
        self.emit("else:")
        self.emit(f"    {count} = 0")
        self.emit(f"if {count}:")
        with self.region():
            self.emit(f"{parts} = []")
            self.emit(f"for {index}, {key} in enumerate({keys}):")
            with self.region():
                self.emit(f"if not {index} & 255 and _now() > _deadline:")
                self.emit(f"    _late({self.const(node.line)}, {self.const(node.column)})")
                item = self.context(f"{items}[{key}]")
                self.ints.add(index)
                frame = {"index": index, "key": key, "first": f"({index} == 0)", "last": f"({index} == {count} - 1)"}
                params = {**scope.params, **dict(zip(names, (item, key), strict=False))}
                text = self.program(node.program, _Scope([*scope.contexts, item], [*scope.frames, frame], params))
                self.emit(f"{parts}.append({text})")
                self.emit(f"if _n > _next: _next = _grew(_n, _cap, _deadline, {self.const(node.line)}, {self.const(node.column)})")
            self.emit(f"{out} = _join({parts})")
            self.emit("break")


class NativeProgram:
    """A template as generated functions; ``uses``: names a render's own helpers must not shadow.

    ``entry(rest)`` is the render function itself, with Template.render's
    signature: it takes the render when it can and hands it to ``rest``
    otherwise (same arguments, by keyword). ``envelope(...)`` is the same
    program as a function of one argument (Template.renderer), compiled on
    its first use (most templates never need it: it doubles the code to compile).
    """

    __slots__ = ("_available", "_envelope", "_envelope_source", "_namespace", "source", "uses")

    def __init__(
        self, namespace: dict[str, Any], source: str, uses: frozenset[str], envelope_source: str | None, available: dict[str, Any]
    ) -> None:
        self._namespace = namespace
        self.source = source
        self.uses = uses
        self._envelope_source = envelope_source
        self._available = available if envelope_source is not None else None
        self._envelope: CodeType | None = None

    def entry(self, rest: Callable[..., str]) -> Callable[..., str]:
        """The generated render function, handing what it does not take to ``rest``."""
        self._namespace["_rest"] = rest
        render: Callable[..., str] = self._namespace["render"]
        return render

    def envelope(
        self, root_key: str, data_name: str, escape: Callable[[str], str], rest: Callable[[Any], str]
    ) -> Callable[[Any], str] | None:
        """``render(envelope.get(root_key), data={data_name: envelope}, escape=...)`` as one function
        of the envelope (ENVELOPE: no keyword arguments, no data dict unless the template reads @
        names, no checks); it hands what it does not take to ``rest``. None when there is none."""
        if self._envelope is None:
            if self._envelope_source is None or self._available is None:
                return None
            try:
                namespace = _load(self._envelope_source, self._available)
            except (SyntaxError, RecursionError, MemoryError):
                self._envelope_source = None
                return None
            self._namespace.update((name, value) for name, value in namespace.items() if name not in self._namespace)
            self._envelope = namespace["render_envelope"].__code__
            self._envelope_source = self._available = None
        bound = {**self._namespace, "_root_key": root_key, "_data_name": data_name}
        bound.update(_bound_esc=escape, _bound_json=escape is RUNTIME["_ej"], _rest_envelope=rest)
        render: Callable[[Any], str] = FunctionType(self._envelope, bound)
        return render


# The render function's head: Template.render's signature, the checks that send a
# render elsewhere, then the generated body (in a try: a Fallback goes to ``_rest``).
ENTRY = [
    "def render(_c0, *, data=None, helpers=None, partials=None, escape=_HTML, max_output=_MAX_OUTPUT, time_limit=_TIME_LIMIT):",
    "    if data is not None and type(data) is not dict or partials or helpers and not helpers.keys().isdisjoint(_uses):",
    "        return _rest(_c0, data=data, helpers=helpers, partials=partials, escape=escape, max_output=max_output, time_limit=time_limit)",
    "    if escape == _JSON:",
    "        _esc = _ej",
    "        _json = True",
    "    elif escape == _HTML:",
    "        _esc = _eh",
    "        _json = False",
    "    else:",
    "        return _rest(_c0, data=data, helpers=helpers, partials=partials, escape=escape, max_output=max_output, time_limit=time_limit)",
    "    _data = data",
    "    _cap = max_output",
    "    {clock}",
    "    _n = 0",
    "    _d0 = type(_c0) is dict",
    "    try:",
]
REST = "    return _rest(_c0, data=data, helpers=helpers, partials=partials, escape=escape, max_output=max_output, time_limit=time_limit)"
# The same body as a function of an envelope (NativeProgram.envelope binds the names).
ENVELOPE = [
    "def render_envelope(_envelope):",
    "    _c0 = _envelope.get(_root_key)",
    "    _esc = _bound_esc",
    "    _json = _bound_json",
    "    _cap = _MAX_OUTPUT",
    "    {clock}",
    "    _n = 0",
    "    _d0 = type(_c0) is dict",
    "    try:",
]
ENVELOPE_DATA = "    _data = {_data_name: _envelope}"  # only for a template that reads @ names
ENVELOPE_NO_DATA = "    _data = None"  # (@root reads it: there is no root in it)
ENVELOPE_REST = "    return _rest_envelope(_envelope)"
EXIT = [
    "    except (Fallback, RecursionError):",
    "        pass",  # the closure program renders it, or raises its error with line and column
    "    else:",
    "        if len(_out) <= _next:",
    "            return _out",
    "        if len(_out) <= _cap:",  # past a checkpoint: the clock
    "            _grew(len(_out), _cap, _deadline, {line}, {column})",
    "            return _out",
]
MAX_ENVELOPE_SOURCE = 4 * 1024  # templates up to this size get the envelope function too (it doubles the code to compile)


def _generate(nodes: list[Node], envelope: bool) -> tuple[str, str | None, list[Any], frozenset[str]]:
    """The sources of render and (with ``envelope``) render_envelope for ``nodes``, the constants and the names used."""
    gen = _Generator()
    gen.indent = 2
    text = gen.program(nodes, _Scope(["_c0"], [], {}), top=True)
    gen.emit(f"_out = {text}")
    line, column = (gen.const(n) for n in gen.tail)
    exit_ = [row.format(line=line, column=column) for row in EXIT]
    # The deadline, and the first checkpoint (the cap, or the first 64 KiB where the clock is read).
    # Without a loop, and under the default cap, a program's work is bounded by the output it
    # counts against that cap: it reads no clock (as the flat program), its one checkpoint the cap.
    clock = "_deadline = _now() + time_limit; _next = _cap if _cap < _STEP else _STEP"
    if not gen.loops:
        clock = f"if _cap > _MAX_OUTPUT: {clock}\n    else: _deadline = _NEVER; _next = _cap"
    entry = [row.format(clock=clock) for row in ENTRY]
    render = "\n".join([*entry, *gen.lines, *exit_, REST]) + "\n"
    if not envelope:
        return render, None, gen.constants, frozenset(gen.uses)
    clock = "_deadline = _now() + _TIME_LIMIT; _next = _STEP" if gen.loops else "_deadline = _NEVER; _next = _cap"
    head = [row.format(clock=clock) for row in ENVELOPE]
    head.insert(2, ENVELOPE_DATA if gen.uses_data else ENVELOPE_NO_DATA)
    return render, "\n".join([*head, *gen.lines, *exit_, ENVELOPE_REST]) + "\n", gen.constants, frozenset(gen.uses)


def generate(nodes: list[Node], envelope: bool = True) -> tuple[str, list[Any], frozenset[str]]:
    """The Python source of a native program for ``nodes`` (both functions), its constants and the names it uses; Unsupported if none."""
    render, envelope_source, constants, uses = _generate(nodes, envelope)
    return render + (envelope_source or ""), constants, uses


def _load(source: str, available: dict[str, Any]) -> dict[str, Any]:
    """Compile generated ``source`` and run it; the functions' globals are the names they read
    from ``available`` and no other (a small dict: a render reads it often)."""
    code = compile(source, "<template>", "exec")
    functions = [code, *(function for function in code.co_consts if isinstance(function, CodeType))]
    names = {name for function in functions for name in function.co_names}
    namespace: dict[str, Any] = {"__builtins__": {}, **{name: available[name] for name in sorted(names) if name in available}}
    exec(code, namespace)  # noqa: S102 - generated by this module alone; template text only in the _K<i>
    return namespace


def compile_native(nodes: list[Node], source_length: int = 0) -> NativeProgram | None:
    """A native program for ``nodes``, or None when the template needs the closure program.

    Not for templates over MAX_SOURCE characters: Python compiles the
    generated source in time that grows faster than the template (row
    templates are far smaller).
    """
    if source_length > MAX_SOURCE:
        return None
    try:
        render, envelope, constants, uses = _generate(nodes, source_length <= MAX_ENVELOPE_SOURCE)
        available = {"_uses": uses, **RUNTIME, **{f"_K{i}": value for i, value in enumerate(constants)}}
        namespace = _load(render, available)
    except (Unsupported, SyntaxError, RecursionError, MemoryError):
        return None
    return NativeProgram(namespace, render, uses, envelope, available)
