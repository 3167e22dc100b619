"""Handlebars source → AST. Template text is only ever data here: nothing is executed.

Two passes: the lexer cuts the source into text and tags (with Handlebars'
whitespace control ``~`` and standalone-line stripping applied), then the
parser builds nested nodes from the tags' expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

MAX_SOURCE = 256 * 1024
MAX_NESTING = 100


class TemplateError(ValueError):
    """Any problem with a template."""


class TemplateSyntaxError(TemplateError):
    """The source is not a valid template; ``line`` and ``column`` are 1-based."""

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column


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


@dataclass(slots=True)
class InlinePartial:
    name: str
    program: list[Node]


Node = Union[Text, Mustache, Block, Partial, InlinePartial]


# --- lexer -------------------------------------------------------------------


@dataclass(slots=True)
class _Tag:
    kind: str  # comment raw mustache open inverse else close partial partial_block inline
    body: str
    strip_left: bool
    strip_right: bool
    line: int
    column: int
    indent: str = ""


_STANDALONE_KINDS = {"comment", "open", "inverse", "else", "close", "partial", "partial_block", "inline"}


def _position(source: str, index: int) -> tuple[int, int]:
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, column


def _lex(source: str) -> list[str | _Tag]:
    out: list[str | _Tag] = []
    i = 0
    n = len(source)
    while i < n:
        start = source.find("{{", i)
        if start < 0:
            out.append(source[i:])
            break
        # \{{ escapes a mustache: the braces are text.
        if start > 0 and source[start - 1] == "\\" and not (start > 1 and source[start - 2] == "\\"):
            out.append(source[i : start - 1])
            nxt = source.find("{{", start + 2)
            stop = n if nxt < 0 else nxt
            out.append(source[start:stop])
            i = stop
            continue
        if start > i:
            out.append(source[i:start])
        line, column = _position(source, start)
        j = start + 2
        strip_left = j < n and source[j] == "~"
        if strip_left:
            j += 1
        if source.startswith("!--", j):
            end = source.find("--", j + 3)
            while end >= 0 and not re.match(r"--~?}}", source[end:]):
                end = source.find("--", end + 1)
            if end < 0:
                raise TemplateSyntaxError("unclosed comment {{!-- … --}}", line, column)
            close = re.match(r"--(~?)}}", source[end:])
            assert close is not None
            out.append(_Tag("comment", "", strip_left, bool(close.group(1)), line, column))
            i = end + close.end()
            continue
        if j < n and source[j] == "{":
            end = source.find("}}}", j + 1)
            if end < 0:
                raise TemplateSyntaxError("unclosed triple-stash {{{ … }}}", line, column)
            body = source[j + 1 : end]
            strip_right = body.endswith("~")
            if strip_right:
                body = body[:-1]
            # {{~{x}~}}: the ~ sits before the last brace
            if body.endswith("}") and False:  # pragma: no cover
                pass
            out.append(_Tag("raw", body.rstrip("}").strip(), strip_left, strip_right, line, column))
            i = end + 3
            continue
        end = source.find("}}", j)
        if end < 0:
            raise TemplateSyntaxError("unclosed tag: '{{' without '}}'", line, column)
        body = source[j:end]
        strip_right = body.endswith("~")
        if strip_right:
            body = body[:-1]
        i = end + 2
        out.append(_classify(body, strip_left, strip_right, line, column))
    return out


def _classify(body: str, strip_left: bool, strip_right: bool, line: int, column: int) -> _Tag:
    text = body.strip()
    if text.startswith("!"):
        return _Tag("comment", "", strip_left, strip_right, line, column)
    if text.startswith("#>"):
        return _Tag("partial_block", text[2:].strip(), strip_left, strip_right, line, column)
    if text.startswith("#*"):
        return _Tag("inline", text[2:].strip(), strip_left, strip_right, line, column)
    if text.startswith("#"):
        return _Tag("open", text[1:].strip(), strip_left, strip_right, line, column)
    if text.startswith("^"):
        rest = text[1:].strip()
        kind = "else" if rest == "" else "inverse"
        return _Tag(kind, rest, strip_left, strip_right, line, column)
    if text.startswith("/"):
        return _Tag("close", text[1:].strip(), strip_left, strip_right, line, column)
    if text.startswith(">"):
        return _Tag("partial", text[1:].strip(), strip_left, strip_right, line, column)
    if text == "else" or re.match(r"else\s", text):
        return _Tag("else", text[4:].strip(), strip_left, strip_right, line, column)
    if text.startswith("&"):
        return _Tag("raw", text[1:].strip(), strip_left, strip_right, line, column)
    if text.startswith("{") or text.startswith("="):
        raise TemplateSyntaxError(f"unsupported tag {{{{{text}}}}}", line, column)
    return _Tag("mustache", text, strip_left, strip_right, line, column)


_LINE_START = re.compile(r"(?:^|\n)([ \t]*)$")
_LINE_END = re.compile(r"^[ \t]*(\r?\n|$)")


def _apply_whitespace_rules(tokens: list[str | _Tag]) -> list[str | _Tag]:
    """Standalone block/comment/partial lines disappear; ``~`` strips neighbouring whitespace.

    Standalone status is decided on the original tokens, then applied, so two
    standalone tags on consecutive lines are both recognised.
    """
    toks: list[str | _Tag] = list(tokens)
    last = len(toks) - 1
    cuts: dict[int, list[int]] = {}  # text index -> [chars to drop at start, chars to drop at end]
    for k, tok in enumerate(toks):
        if not isinstance(tok, _Tag) or tok.kind not in _STANDALONE_KINDS:
            continue
        before = toks[k - 1] if k > 0 else None
        after = toks[k + 1] if k < last else None
        if isinstance(before, _Tag) or isinstance(after, _Tag):
            continue
        prefix = ""
        if before is not None:
            m = _LINE_START.search(before)
            if m is None or ("\n" not in before and k - 1 != 0):
                continue
            prefix = m.group(1)
        drop_after = 0
        if after is not None:
            m2 = _LINE_END.match(after)
            if m2 is None or (m2.group(1) == "" and k + 1 != last):
                continue
            drop_after = m2.end()
        if before is not None:
            cuts.setdefault(k - 1, [0, 0])[1] = len(prefix)
        if after is not None:
            cuts.setdefault(k + 1, [0, 0])[0] = drop_after
        if tok.kind == "partial":
            tok.indent = prefix
    for idx, (head, tail) in cuts.items():
        text = toks[idx]
        assert isinstance(text, str)
        toks[idx] = text[head : len(text) - tail]
    for k, tok in enumerate(toks):
        if not isinstance(tok, _Tag):
            continue
        if tok.strip_left and k > 0 and isinstance(toks[k - 1], str):
            toks[k - 1] = str(toks[k - 1]).rstrip()
        if tok.strip_right and k < last and isinstance(toks[k + 1], str):
            toks[k + 1] = str(toks[k + 1]).lstrip()
    return toks


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
    if kind == "string":
        body = raw[1:-1]
        # As handlebars.js: only an escaped quote loses its backslash ("\d+" stays \d+).
        return Literal(body.replace("\\" + raw[0], raw[0]), raw)
    return Literal(float(raw) if "." in raw else int(raw), raw)


_KEYWORDS = {"true": True, "false": False, "null": None}


class _ExprParser:
    def __init__(self, text: str, line: int, column: int) -> None:
        self.toks = _tokens(text, line, column)
        self.i = 0
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
            call = self.call(closing=True)
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
    def __init__(self, tokens: list[str | _Tag]) -> None:
        self.tokens = tokens
        self.i = 0

    def program(self, depth: int, stop: set[str]) -> tuple[list[Node], _Tag | None]:
        nodes: list[Node] = []
        while self.i < len(self.tokens):
            tok = self.tokens[self.i]
            if isinstance(tok, str):
                self.i += 1
                if tok:
                    if nodes and isinstance(nodes[-1], Text):
                        nodes[-1] = Text(nodes[-1].value + tok)
                    else:
                        nodes.append(Text(tok))
                continue
            if tok.kind in ("else", "close"):
                if tok.kind not in stop:
                    what = "{{/" + tok.body + "}}" if tok.kind == "close" else "{{else}}"
                    raise TemplateSyntaxError(f"{what} without an open block", tok.line, tok.column)
                return nodes, tok
            self.i += 1
            if depth > MAX_NESTING:
                raise TemplateSyntaxError(f"blocks nested deeper than {MAX_NESTING}", tok.line, tok.column)
            node = self.node(tok, depth)
            if node is not None:
                nodes.append(node)
        return nodes, None

    def node(self, tok: _Tag, depth: int) -> Node | None:
        if tok.kind == "comment":
            return None
        if tok.kind in ("mustache", "raw"):
            call, _ = parse_call(tok.body, tok.line, tok.column)
            return Mustache(call, tok.kind == "mustache", tok.line, tok.column)
        if tok.kind == "partial":
            name, context, hash_ = self.partial_parts(tok)
            return Partial(name, context, hash_, tok.indent, tok.line, tok.column)
        if tok.kind == "partial_block":
            name, context, hash_ = self.partial_parts(tok)
            program, end = self.program(depth + 1, {"close"})
            self.expect_close(tok, end, _expr_name(name))
            return Partial(name, context, hash_, "", tok.line, tok.column, block=program)
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

    def partial_parts(self, tok: _Tag) -> tuple[Expr, Expr | None, dict[str, Expr]]:
        call, _ = parse_call(tok.body, tok.line, tok.column)
        if len(call.params) > 1:
            raise TemplateSyntaxError("a partial takes at most one context argument", tok.line, tok.column)
        name: Expr = call.path
        if isinstance(name, PathExpr) and not name.data:
            name = Literal(name.original, name.original)  # {{> foo.bar}} names a partial, it is not a lookup
        return name, (call.params[0] if call.params else None), call.hash

    def block(self, tok: _Tag, depth: int) -> Block:
        call, params = parse_call(tok.body, tok.line, tok.column, allow_block_params=True)
        program, end = self.program(depth + 1, {"else", "close"})
        inverse: list[Node] | None = None
        if end is not None and end.kind == "else":
            self.i += 1
            if end.body:  # {{else if x}}: a chained block that ends with the outer close
                chained_call, chained_params = parse_call(end.body, end.line, end.column, allow_block_params=True)
                chained = self.chained(chained_call, chained_params, end, depth + 1)
                inverse = [chained]
                end = self.tokens[self.i - 1] if False else self.current_close()
            else:
                inverse, end = self.program(depth + 1, {"close"})
        self.expect_close(tok, end, _expr_name(call.path))
        inverted = tok.kind == "inverse"
        if inverted:
            program, inverse = inverse or [], program
        return Block(call, program, inverse, params, inverted, tok.line, tok.column)

    def chained(self, call: Call, params: list[str], tok: _Tag, depth: int) -> Block:
        program, end = self.program(depth + 1, {"else", "close"})
        inverse: list[Node] | None = None
        if end is not None and end.kind == "else":
            self.i += 1
            if end.body:
                c2, p2 = parse_call(end.body, end.line, end.column, allow_block_params=True)
                inverse = [self.chained(c2, p2, end, depth + 1)]
            else:
                inverse, end = self.program(depth + 1, {"close"})
        if end is None:
            raise TemplateSyntaxError("unclosed {{else}} chain", tok.line, tok.column)
        return Block(call, program, inverse, params, False, tok.line, tok.column)

    def current_close(self) -> _Tag | None:
        tok = self.tokens[self.i] if self.i < len(self.tokens) else None
        return tok if isinstance(tok, _Tag) and tok.kind == "close" else None

    def expect_close(self, open_tag: _Tag, end: _Tag | None, name: str) -> None:
        if end is None or end.kind != "close":
            raise TemplateSyntaxError(f"unclosed block '{name}'", open_tag.line, open_tag.column)
        if end.body.strip() != name:
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
    tokens = _apply_whitespace_rules(_lex(source))
    parser = _Parser(tokens)
    nodes, end = parser.program(0, set())
    assert end is None
    return nodes
