"""Handlebars source → AST. Template text is only ever data here: nothing is executed.

Two passes: the lexer (lexer.py) cuts the source into text and tags (with
Handlebars' whitespace control ``~`` and standalone-line stripping applied),
then the parser builds nested nodes from the tags' expressions. Every limit
(nesting, subexpression depth, ``else if`` chain length, source size, time)
is a TemplateSyntaxError with line and column; nothing here recurses deeper
than those limits allow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

from hub_stream.templating.errors import TemplateError, TemplateSyntaxError
from hub_stream.templating.lexer import Clock, Tag, Token, apply_whitespace_rules, lex

MAX_SOURCE = 256 * 1024
MAX_NESTING = 100
MAX_SUBEXPRESSION_DEPTH = 50
MAX_ELSE_CHAIN = 1000

__all__ = ["TemplateError", "TemplateSyntaxError", "parse", "parse_call"]


# --- AST ---------------------------------------------------------------------


@dataclass(slots=True)
class PathExpr:
    data: bool  # @-variable
    depth: int  # number of ../
    parts: tuple[str, ...]
    original: str
    this: bool = False  # starts with this or .


@dataclass(slots=True)
class Literal:
    value: Any
    original: str


@dataclass(slots=True)
class SubExpr:
    call: Call


Expr = Union[PathExpr, Literal, SubExpr]


@dataclass(slots=True)
class Call:
    path: Expr
    params: list[Expr] = field(default_factory=list)
    hash: dict[str, Expr] = field(default_factory=dict)


@dataclass(slots=True)
class Text:
    value: str


@dataclass(slots=True)
class Mustache:
    call: Call
    escaped: bool
    line: int
    column: int


@dataclass(slots=True)
class Block:
    call: Call
    program: list[Node]
    inverse: list[Node] | None
    block_params: list[str]
    inverted: bool
    line: int
    column: int


@dataclass(slots=True)
class Partial:
    name: Expr
    context: Expr | None
    hash: dict[str, Expr]
    indent: str
    line: int
    column: int
    block: list[Node] | None = None  # {{#> name}}fallback{{/name}}
    block_params: list[str] = field(default_factory=list)  # {{#> name as |x|}}


@dataclass(slots=True)
class InlinePartial:
    name: str
    program: list[Node]


Node = Union[Text, Mustache, Block, Partial, InlinePartial]


# --- expressions -------------------------------------------------------------

_ID = r"[^\s!\"#%&'()*+,./;<=>@\[\\\]^`{|}~]+"
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>-?\d+(?:\.\d+)?)(?=[\s)}=|]|$)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<params>as\s+\|[^|]*\|)
  | (?P<hashkey>"""
    + _ID
    + r""")\s*=(?!=)
  | (?P<path>@?(?:\.\.?/)*(?:\[[^\]]*\]|"""
    + _ID
    + r"""|\.\.?(?![^\s)]))?(?:[./](?:\[[^\]]*\]|"""
    + _ID
    + r"""))*)
    """,
    re.VERBOSE,
)


def _tokens(text: str, line: int, column: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None or m.end() == i:
            raise TemplateSyntaxError(f"cannot read {text[i:i + 20]!r} in {{{{{text}}}}}", line, column)
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            out.append((kind, m.group(kind)))
        i = m.end()
    return out


def _parse_path(text: str, line: int, column: int) -> PathExpr:
    data = text.startswith("@")
    rest = text[1:] if data else text
    if "[" not in rest and "/" not in rest and not rest.startswith(".") and not rest.endswith("."):
        parts = rest.split(".")  # the usual a.b.c: no segment literals, ../ or ./
        if "" not in parts and "this" not in parts and ".." not in rest:
            return PathExpr(data=data, depth=0, parts=tuple(parts), original=text)
    if rest in (".", ".."):
        return PathExpr(data=data, depth=len(rest) - 1, parts=(), original=text, this=rest == ".")
    parts: list[str] = []
    depth = 0
    this = False
    i = 0
    while i < len(rest):
        if rest[i] == "[":
            end = rest.find("]", i)
            parts.append(rest[i + 1 : end])
            i = end + 1
        else:
            m = re.match(r"[^./\[]*", rest[i:])
            assert m is not None
            seg = m.group()
            i += len(seg)
            if seg == "..":
                if parts:
                    raise TemplateSyntaxError(f"invalid path {text!r}: '..' only at the start", line, column)
                depth += 1
            elif seg in (".", "this") and not parts and not data:
                this = True
            elif seg == "" and i < len(rest) and rest[i] in "./":
                if rest.startswith("..", i):
                    seg = ".."
            elif seg:
                if seg == "this" and parts:
                    raise TemplateSyntaxError(f"invalid path {text!r}: 'this' only at the start", line, column)
                parts.append(seg)
        if i < len(rest) and rest[i] in "./":
            if rest.startswith("../", i) and not parts:
                depth += 1
                i += 3
                continue
            if rest.startswith("./", i) and not parts and i == 0:
                this = True
                i += 2
                continue
            i += 1
    return PathExpr(data=data, depth=depth, parts=tuple(parts), original=text, this=this)


def _literal(kind: str, raw: str) -> Literal:
    if kind == "string":  # as handlebars.js: only the escaped quote loses its backslash
        quote = raw[0]
        return Literal(raw[1:-1].replace("\\" + quote, quote), raw)
    return Literal(float(raw) if "." in raw else int(raw), raw)


_KEYWORDS = {"true": True, "false": False, "null": None}


class _ExprParser:
    def __init__(self, text: str, line: int, column: int) -> None:
        self.toks = _tokens(text, line, column)
        self.i = 0
        self.depth = 0
        self.line = line
        self.column = column
        self.text = text

    def error(self, reason: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(f"{reason} in {{{{{self.text}}}}}", self.line, self.column)

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end of expression")
        self.i += 1
        return tok

    def value(self) -> Expr:
        kind, raw = self.take()
        if kind in ("string", "number"):
            return _literal(kind, raw)
        if kind == "open":
            self.depth += 1
            if self.depth > MAX_SUBEXPRESSION_DEPTH:
                raise self.error(f"subexpressions nested deeper than {MAX_SUBEXPRESSION_DEPTH}")
            call = self.call(closing=True)
            self.depth -= 1
            return SubExpr(call)
        if kind == "path":
            if raw in _KEYWORDS:
                return Literal(_KEYWORDS[raw], raw)
            if raw == "undefined":
                from hub_stream.templating.values import UNDEFINED

                return Literal(UNDEFINED, raw)
            return _parse_path(raw, self.line, self.column)
        raise self.error(f"unexpected {raw!r}")

    def call(self, *, closing: bool = False) -> Call:
        head = self.value()
        if isinstance(head, Literal):  # {{"foo bar"}}, {{12}}, {{true}}: names, as in handlebars.js
            name = head.value if isinstance(head.value, str) else head.original
            head = PathExpr(data=False, depth=0, parts=(name,), original=name)
        params: list[Expr] = []
        hash_: dict[str, Expr] = {}
        while True:
            tok = self.peek()
            if tok is None:
                if closing:
                    raise self.error("unclosed subexpression '('")
                break
            kind, raw = tok
            if kind == "close":
                if not closing:
                    raise self.error("unexpected ')'")
                self.i += 1
                break
            if kind == "params":
                break
            if kind == "hashkey":
                self.i += 1
                hash_[raw] = self.value()
                continue
            if hash_:
                raise self.error("positional argument after hash arguments")
            params.append(self.value())
        return Call(head, params, hash_)

    def block_params(self) -> list[str]:
        tok = self.peek()
        if tok is None:
            return []
        kind, raw = tok
        if kind != "params":
            raise self.error(f"unexpected {raw!r}")
        self.i += 1
        if self.peek() is not None:
            raise self.error("text after block parameters")
        names = raw[raw.index("|") + 1 : -1].split()
        if not names:
            raise self.error("empty block parameters")
        return names


def parse_call(text: str, line: int, column: int, *, allow_block_params: bool = False) -> tuple[Call, list[str]]:
    if not text.strip():
        raise TemplateSyntaxError("empty tag", line, column)
    p = _ExprParser(text, line, column)
    call = p.call()
    params = p.block_params() if allow_block_params else []
    if p.peek() is not None:
        raise p.error(f"unexpected {p.peek()[1]!r}")  # type: ignore[index]
    return call, params


# --- parser ------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[Token], clock: Clock) -> None:
        self.tokens = tokens
        self.i = 0
        self.clock = clock

    def program(self, depth: int, stop: set[str]) -> tuple[list[Node], Tag | None]:
        nodes: list[Node] = []
        texts: list[str] = []  # adjacent texts, joined once
        while self.i < len(self.tokens):
            tok = self.tokens[self.i]
            if isinstance(tok, str):
                self.i += 1
                if tok:
                    texts.append(tok)
                continue
            if texts:
                nodes.append(Text("".join(texts)))
                texts = []
            if tok.kind in ("else", "close"):
                if tok.kind not in stop:
                    what = "{{/" + tok.body + "}}" if tok.kind == "close" else "{{else}}"
                    raise TemplateSyntaxError(f"{what} without an open block", tok.line, tok.column)
                return nodes, tok
            self.i += 1
            self.clock.step(tok.line, tok.column)
            if depth > MAX_NESTING:
                raise TemplateSyntaxError(f"blocks nested deeper than {MAX_NESTING}", tok.line, tok.column)
            node = self.node(tok, depth)
            if node is not None:
                nodes.append(node)
        if texts:
            nodes.append(Text("".join(texts)))
        return nodes, None

    def node(self, tok: Tag, depth: int) -> Node | None:
        if tok.kind == "comment":
            return None
        if tok.kind in ("mustache", "raw"):
            call, _ = parse_call(tok.body, tok.line, tok.column)
            return Mustache(call, tok.kind == "mustache", tok.line, tok.column)
        if tok.kind == "raw_block":
            call, _ = parse_call(tok.body, tok.line, tok.column)
            content: list[Node] = [Text(tok.content)] if tok.content else []
            return Block(call, content, None, [], False, tok.line, tok.column)
        if tok.kind == "partial":
            name, context, hash_ = self.partial_parts(tok)
            return Partial(name, context, hash_, tok.indent, tok.line, tok.column)
        if tok.kind == "partial_block":
            name, context, hash_, params = self.partial_parts(tok, allow_block_params=True)
            program, end = self.program(depth + 1, {"close"})
            self.expect_close(tok, end, _expr_name(name))
            return Partial(name, context, hash_, "", tok.line, tok.column, block=program, block_params=params)
        if tok.kind == "inline":
            call, _ = parse_call(tok.body, tok.line, tok.column)
            if not (isinstance(call.path, PathExpr) and call.path.parts == ("inline",)) or len(call.params) != 1 or not isinstance(call.params[0], Literal):
                raise TemplateSyntaxError('inline partials are written {{#*inline "name"}}', tok.line, tok.column)
            program, end = self.program(depth + 1, {"close"})
            self.expect_close(tok, end, "inline")
            return InlinePartial(str(call.params[0].value), program)
        if tok.kind in ("open", "inverse"):
            return self.block(tok, depth)
        raise TemplateSyntaxError(f"unexpected tag {tok.kind}", tok.line, tok.column)  # pragma: no cover

    def partial_parts(self, tok: Tag, *, allow_block_params: bool = False) -> Any:
        call, params = parse_call(tok.body, tok.line, tok.column, allow_block_params=allow_block_params)
        if len(call.params) > 1:
            raise TemplateSyntaxError("a partial takes at most one context argument", tok.line, tok.column)
        name: Expr = call.path
        if isinstance(name, PathExpr) and not name.data:
            # {{> foo.bar}} and {{> [my-partial]}} name a partial, they are no lookups
            plain = re.sub(r"\[([^\]]*)\]", r"\1", name.original)
            name = Literal(plain, plain)
        parts = (name, (call.params[0] if call.params else None), call.hash)
        return (*parts, params) if allow_block_params else parts

    def block(self, tok: Tag, depth: int) -> Block:
        """A block and its ``{{else if …}}`` chain, read in a loop (a chain is as long as it likes, up to MAX_ELSE_CHAIN)."""
        call, params = parse_call(tok.body, tok.line, tok.column, allow_block_params=True)
        program, end = self.program(depth + 1, {"else", "close"})
        root = Block(call, program, None, params, tok.kind == "inverse", tok.line, tok.column)
        current = root
        chained = 0
        while end is not None and end.kind == "else":
            self.i += 1
            if not end.body:
                current.inverse, end = self.program(depth + 1, {"close"})
                break
            chained += 1
            if chained > MAX_ELSE_CHAIN:
                raise TemplateSyntaxError(f"more than {MAX_ELSE_CHAIN} {{{{else …}}}} in one block", end.line, end.column)
            next_call, next_params = parse_call(end.body, end.line, end.column, allow_block_params=True)
            next_program, next_end = self.program(depth + 1, {"else", "close"})
            link = Block(next_call, next_program, None, next_params, False, end.line, end.column)
            current.inverse = [link]
            current, end = link, next_end
        self.expect_close(tok, end, _expr_name(call.path))
        if root.inverted:
            root.program, root.inverse = root.inverse or [], root.program
        return root

    def expect_close(self, open_tag: Tag, end: Tag | None, name: str) -> None:
        if end is None or end.kind != "close":
            raise TemplateSyntaxError(f"unclosed block '{name}'", open_tag.line, open_tag.column)
        closing = end.body.strip()
        if closing != name:
            try:
                closing = _expr_name(parse_call(closing, end.line, end.column)[0].path)
            except TemplateSyntaxError:
                pass
        if closing != name:
            raise TemplateSyntaxError(
                f"'{{{{/{end.body.strip()}}}}}' does not close '{name}' (opened at line {open_tag.line})",
                end.line,
                end.column,
            )
        self.i += 1


def _expr_name(expr: Expr) -> str:
    if isinstance(expr, PathExpr):
        return expr.original
    if isinstance(expr, Literal):
        return str(expr.original if not isinstance(expr.value, str) else expr.value)
    return "(subexpression)"


def parse(source: str) -> list[Node]:
    """The AST of ``source``; raises TemplateSyntaxError with line and column."""
    if not isinstance(source, str):
        raise TemplateSyntaxError("a template must be a string", 1, 1)
    if len(source) > MAX_SOURCE:
        raise TemplateSyntaxError(f"template longer than {MAX_SOURCE} characters", 1, 1)
    clock = Clock()
    tokens = apply_whitespace_rules(lex(source, clock))
    parser = _Parser(tokens, clock)
    nodes, end = parser.program(0, set())
    assert end is None
    return nodes


def simple_name(expr: Expr) -> str | None:
    """The name a call's head may be a helper under: ``foo``, or dotted ``String.ToUpper``; else None."""
    if isinstance(expr, PathExpr) and not expr.data and not expr.this and expr.depth == 0 and expr.parts:
        return expr.parts[0] if len(expr.parts) == 1 else ".".join(expr.parts)
    return None
