"""Handlebars source → text and tags, with whitespace control applied. Nothing is executed.

One pass over the source, in time linear in its length: line and column are
carried along as the scan advances (never recounted from the start), and the
clock is read every few hundred tags so compiling is bounded in time too.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from hub_stream.templating.errors import TemplateSyntaxError

COMPILE_TIME_LIMIT_S = 2.0
_CLOCK_EVERY = 256


@dataclass(slots=True)
class Tag:
    kind: str  # comment raw mustache open inverse else close partial partial_block inline raw_block
    body: str
    strip_left: bool
    strip_right: bool
    line: int
    column: int
    indent: str = ""
    content: str = ""  # the text of a raw block {{{{name}}}}content{{{{/name}}}}


Token = str | Tag

STANDALONE_KINDS = {"comment", "open", "inverse", "else", "close", "partial", "partial_block", "inline"}

# A tag's inside: anything up to its closing braces, where strings and [literal
# segments] may hold braces. Alternatives start with different characters and
# nothing follows the group, so matching never backtracks.
_BODY = re.compile(
    r"""(?:[^"'\[}~]+|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\[[^\]]*\]|~(?!\}\})|\}(?!~?\}))*"""
)
_CLOSE = re.compile(r"(~?)\}\}")
_CLOSE_TRIPLE = re.compile(r"\}(~?)\}\}")
_CLOSE_RAW_BLOCK = re.compile(r"\}\}\}\}")
_RAW_MARK = re.compile(r"\{\{\{\{(/?)([^\s}]*)")


class Positions:
    """Line and column of increasing offsets, counted incrementally."""

    __slots__ = ("line", "line_start", "offset", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.offset = 0
        self.line = 1
        self.line_start = 0

    def at(self, index: int) -> tuple[int, int]:
        if index < self.offset:  # rare: look back without moving
            line = self.line - self.source.count("\n", index, self.offset)
            start = self.source.rfind("\n", 0, index) + 1
            return line, index - start + 1
        newlines = self.source.count("\n", self.offset, index)
        if newlines:
            self.line += newlines
            self.line_start = self.source.rfind("\n", self.offset, index) + 1
        self.offset = index
        return self.line, index - self.line_start + 1


class Clock:
    """Compilation's time budget in CPU time of this thread, read every few hundred steps.

    CPU time, not wall time: a busy machine must not turn a valid template away
    when it is saved; the budget bounds the work a template can cost.
    """

    __slots__ = ("deadline", "steps")

    def __init__(self, limit: float | None = None) -> None:
        self.deadline = time.thread_time() + (COMPILE_TIME_LIMIT_S if limit is None else limit)
        self.steps = 0

    def step(self, line: int, column: int) -> None:
        self.steps += 1
        if self.steps % _CLOCK_EVERY == 0 and time.thread_time() > self.deadline:
            raise TemplateSyntaxError(f"compiling took longer than its time limit ({COMPILE_TIME_LIMIT_S:g} s)", line, column)


def lex(source: str, clock: Clock) -> list[Token]:
    out: list[Token] = []
    pos = Positions(source)
    i = 0
    n = len(source)
    while i < n:
        start = source.find("{{", i)
        if start < 0:
            out.append(source[i:])
            break
        if start > i and source[start - 1] == "\\":
            if start - 1 > i and source[start - 2] == "\\":
                # \\{{x}}: one backslash printed, then the mustache
                out.append(source[i : start - 1])
            else:
                # \{{x}}: the braces and what follows are text, up to the next {{ (or \{{, \\{{)
                out.append(source[i : start - 1])
                nxt = source.find("{{", start + 2)
                stop = n if nxt < 0 else nxt
                for _ in range(2):
                    if stop - 1 >= start + 2 and source[stop - 1] == "\\":
                        stop -= 1
                out.append(source[start:stop])
                i = stop
                continue
        elif start > i:
            out.append(source[i:start])
        line, column = pos.at(start)
        clock.step(line, column)
        i = _tag(source, start, line, column, out)
    merged: list[Token] = []  # adjacent texts (around an escaped \\{{) as one
    for tok in out:
        if isinstance(tok, str) and merged and isinstance(merged[-1], str):
            merged[-1] += tok
        else:
            merged.append(tok)
    return merged


def _tag(source: str, start: int, line: int, column: int, out: list[Token]) -> int:
    """Read the tag at ``start`` into ``out``; return where the text after it begins."""
    if source.startswith("{{{{", start):
        return _raw_block(source, start, line, column, out)
    j = start + 2
    strip_left = source.startswith("~", j)
    if strip_left:
        j += 1
    if source.startswith("!--", j):
        end = re.compile(r"--(~?)\}\}").search(source, j + 3)
        if end is None:
            raise TemplateSyntaxError("unclosed comment {{!-- … --}}", line, column)
        out.append(Tag("comment", "", strip_left, bool(end.group(1)), line, column))
        return end.end()
    if source.startswith("!", j):
        end_at = source.find("}}", j)
        if end_at < 0:
            raise TemplateSyntaxError("unclosed comment {{! … }}", line, column)
        out.append(Tag("comment", "", strip_left, source[end_at - 1] == "~", line, column))
        return end_at + 2
    triple = source.startswith("{", j)
    if triple:
        j += 1
    body = _BODY.match(source, j)
    assert body is not None
    close = (_CLOSE_TRIPLE if triple else _CLOSE).match(source, body.end())
    if close is None:
        what = "unclosed triple-stash {{{ … }}}" if triple else "unclosed tag: '{{' without '}}'"
        raise TemplateSyntaxError(what, line, column)
    text = body.group()
    strip_right = bool(close.group(1))
    if triple:
        out.append(Tag("raw", text.strip(), strip_left, strip_right, line, column))
    else:
        out.append(classify(text, strip_left, strip_right, line, column))
    return close.end()


def _raw_block(source: str, start: int, line: int, column: int, out: list[Token]) -> int:
    """``{{{{name args}}}}content{{{{/name}}}}``: content is text, raw blocks inside it nest."""
    body = _BODY.match(source, start + 4)
    assert body is not None
    close = _CLOSE_RAW_BLOCK.match(source, body.end())
    if close is None:
        raise TemplateSyntaxError("unclosed raw block tag: '{{{{' without '}}}}'", line, column)
    head = body.group().strip()
    name = head.split(None, 1)[0] if head else ""
    depth = 1
    k = close.end()
    while True:
        mark = _RAW_MARK.search(source, k)
        if mark is None:
            raise TemplateSyntaxError(f"unclosed raw block '{name}'", line, column)
        if mark.group(1):
            depth -= 1
            if depth == 0:
                end = _CLOSE_RAW_BLOCK.match(source, mark.end())
                if end is None:
                    raise TemplateSyntaxError(f"unclosed raw block '{name}'", line, column)
                if mark.group(2) != name:
                    raise TemplateSyntaxError(f"'{{{{{{{{/{mark.group(2)}}}}}}}}}' does not close raw block '{name}'", line, column)
                out.append(Tag("raw_block", head, False, False, line, column, content=source[close.end() : mark.start()]))
                return end.end()
        else:
            depth += 1
        k = mark.end()


def classify(body: str, strip_left: bool, strip_right: bool, line: int, column: int) -> Tag:
    text = body.strip()
    for prefix, kind in (("#>", "partial_block"), ("#*", "inline"), ("#", "open"), ("/", "close"), (">", "partial"), ("&", "raw")):
        if text.startswith(prefix):
            return Tag(kind, text[len(prefix) :].strip(), strip_left, strip_right, line, column)
    if text.startswith("^"):
        rest = text[1:].strip()
        return Tag("else" if rest == "" else "inverse", rest, strip_left, strip_right, line, column)
    if text == "else" or re.match(r"else\s", text):
        return Tag("else", text[4:].strip(), strip_left, strip_right, line, column)
    if text.startswith(("{", "=", "*")):
        raise TemplateSyntaxError(f"unsupported tag {{{{{text}}}}}", line, column)
    return Tag("mustache", text, strip_left, strip_right, line, column)


_LINE_START = re.compile(r"(?:^|\n)([ \t]*)\Z")
_LINE_END = re.compile(r"[ \t]*(\r?\n|\Z)")


def _line_start(text: str) -> re.Match[str] | None:
    """The blanks after the last newline of ``text`` (or all of it), when that is all there is."""
    cut = text.rfind("\n") + 1
    return _LINE_START.search(text, max(cut - 1, 0)) if cut else _LINE_START.match(text)


def apply_whitespace_rules(tokens: list[Token]) -> list[Token]:
    """Standalone block/comment/partial lines disappear; ``~`` strips neighbouring whitespace.

    Standalone status is decided on the original tokens, then applied, so two
    standalone tags on consecutive lines are both recognised.
    """
    toks: list[Token] = list(tokens)
    last = len(toks) - 1
    cuts: dict[int, list[int]] = {}  # text index -> [chars to drop at start, chars to drop at end]
    for k, tok in enumerate(toks):
        if not isinstance(tok, Tag) or tok.kind not in STANDALONE_KINDS:
            continue
        before = toks[k - 1] if k > 0 else None
        after = toks[k + 1] if k < last else None
        if isinstance(before, Tag) or isinstance(after, Tag):
            continue
        prefix = ""
        if before is not None:
            m = _line_start(before)
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
        if tok.kind == "partial" and not tok.strip_left:  # {{~> p}} strips the indent too
            tok.indent = prefix
    for idx, (head, tail) in cuts.items():
        text = toks[idx]
        assert isinstance(text, str)
        toks[idx] = text[head : len(text) - tail]
    for k, tok in enumerate(toks):
        if not isinstance(tok, Tag):
            continue
        if tok.strip_left and k > 0 and isinstance(toks[k - 1], str):
            toks[k - 1] = str(toks[k - 1]).rstrip()
        if tok.strip_right and k < last and isinstance(toks[k + 1], str):
            toks[k + 1] = str(toks[k + 1]).lstrip()
    return toks
