"""Checks a stored template gets before it is saved, beyond its syntax.

A call with arguments (``{{foo bar}}``, ``{{#foo bar}}``, ``(foo bar)``)
always calls a helper, so a name that is no helper fails every render; it is
refused at save time, with the tag's line and column. A name alone
(``{{foo}}``, ``{{#foo}}``) is a lookup when no helper has it, and is fine.
"""

from __future__ import annotations

from collections.abc import Iterator

from hub_stream.templating.parser import (
    Block,
    Call,
    Expr,
    InlinePartial,
    Mustache,
    Node,
    Partial,
    SubExpr,
    TemplateSyntaxError,
    parse,
)
from hub_stream.templating.runtime import BUILTIN_HELPERS, helper_name_of


def _calls(expr: Expr) -> Iterator[Call]:
    if isinstance(expr, SubExpr):
        yield from _calls_in(expr.call)


def _calls_in(call: Call) -> Iterator[Call]:
    yield call
    for expr in (call.path, *call.params, *call.hash.values()):
        yield from _calls(expr)


def _tags(nodes: list[Node] | None) -> Iterator[tuple[Call, int, int]]:
    """Every call in ``nodes`` with the line and column of its tag."""
    for node in nodes or []:
        if isinstance(node, Mustache):
            yield from ((c, node.line, node.column) for c in _calls_in(node.call))
        elif isinstance(node, Block):
            yield from ((c, node.line, node.column) for c in _calls_in(node.call))
            yield from _tags(node.program)
            yield from _tags(node.inverse)
        elif isinstance(node, Partial):
            exprs = [node.name, *([node.context] if node.context is not None else []), *node.hash.values()]
            yield from ((c, node.line, node.column) for e in exprs for c in _calls(e))
            yield from _tags(node.block)
        elif isinstance(node, InlinePartial):
            yield from _tags(node.program)


def check_helper_names(source: str) -> None:
    """Raise TemplateSyntaxError for the first call with arguments whose name is no built-in helper."""
    for call, line, column in _tags(parse(source)):
        if not call.params and not call.hash:
            continue
        name = helper_name_of(call.path)
        if name is None or name not in BUILTIN_HELPERS:
            shown = name if name is not None else _written(call)
            raise TemplateSyntaxError(f"unknown helper {shown!r}", line, column)


def _written(call: Call) -> str:
    """How the template wrote a call's head, for the message."""
    path = call.path
    if isinstance(path, SubExpr):
        return "(subexpression)"
    return path.original
