"""The one JSON decoder for text from outside: HTTP bodies, stream records, requests.

CONTRACT.md "Conventions": UTF-8 text that is real Unicode (no lone
surrogate: 400 ``invalid_text``), nested at most ``MAX_DEPTH`` levels (400
``too_deep``), and plain JSON numbers only: ``NaN``, ``Infinity`` and numbers
beyond a double are not JSON (400 ``invalid_json``). What this accepts the hub
can store, render with its own helpers (``{{json}}``) and serve back as JSON.

The depth is measured before parsing, without recursion (the C decoder
recurses, and Python's recursion limit then answers for the hub), and cheaply:
text with at most ``MAX_DEPTH`` brackets in all cannot be too deep.
"""

from __future__ import annotations

import json
import math
import re
import sys
from array import array
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64
"""Arrays and objects nested deeper than this are refused (a body object is level 1)."""

_MAX_INT = int(sys.float_info.max)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class JsonRefused(ValueError):
    """Text that is not JSON the hub accepts; ``code`` is the problem code of CONTRACT.md."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in JSON text nest deeper than ``limit`` (strings skipped), without recursion."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    return max(accumulate(array("b", brackets.translate(_STEPS))), default=0) > limit


def _refuse_constant(name: str) -> Any:
    raise JsonRefused("invalid_json", f"{name} is not a JSON number; send a finite number or null.")


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonRefused("invalid_json", f"The number {text[:40]} is beyond the range of a double.")
    return value


def _int(text: str) -> int:
    if len(text) > 320:  # also keeps int() under Python's digit limit
        raise JsonRefused("invalid_json", f"The number {text[:40]}... is beyond the range of a double.")
    value = int(text)
    if abs(value) > _MAX_INT:
        raise JsonRefused("invalid_json", f"The number {text[:40]}... is beyond the range of a double.")
    return value


_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_int, parse_constant=_refuse_constant)
_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def plainly_safe(raw: bytes) -> bool:
    """Whether ``raw`` has no nesting too deep and no surrogate escape (cheap: no parsing).

    Such text parsed by a lenient parser (pydantic's, on the stream path)
    gives what ``loads`` would, once ``numbers_fit`` says its numbers are
    plain doubles. False only means "ask ``loads``" (the text may be fine).
    """
    if too_deep(raw):
        return False
    return b"\\u" not in raw or _SURROGATE_ESCAPE.search(raw) is None


def numbers_fit(doc: Any) -> bool:
    """Whether every number in a parsed document is finite and within a double (no recursion)."""
    stack = [doc]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif kind is int and abs(value) > _MAX_INT:
            return False
    return True


def loads(raw: bytes | bytearray | memoryview | str) -> Any:
    """``raw`` parsed as JSON, or JsonRefused (code ``invalid_json``, ``invalid_text`` or ``too_deep``)."""
    if isinstance(raw, str):
        data = raw.encode("utf-8", "surrogatepass")
    else:
        data = bytes(raw)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRefused("invalid_json", f"The text is not UTF-8 (byte {exc.start}).") from None
    if too_deep(data):
        raise JsonRefused("too_deep", f"The JSON is nested deeper than {MAX_DEPTH} levels.")
    try:
        doc = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise JsonRefused("invalid_json", f"The text is not valid JSON: {exc}.") from None
    if _SURROGATE_ESCAPE.search(data):
        try:
            _ENCODER.encode(doc).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonRefused(
                "invalid_text", "The text has a lone surrogate (such as \\ud800): not real Unicode."
            ) from None
    return doc
