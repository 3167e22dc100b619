"""JavaScript semantics for JSON values: printing, truthiness, escaping.

Templates run over decoded JSON (dict, list, str, int, float, bool, None);
``UNDEFINED`` stands for JavaScript's ``undefined`` (a missing key).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from json.encoder import encode_basestring as _encode_json_string
from typing import Any


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()


class SafeString(str):
    """Text a helper returns that must not be escaped again."""


def get_key(value: Any, key: str) -> Any:
    """``value[key]`` as a template reads it: dict keys, list indexes and ``length``, nothing else."""
    if isinstance(value, dict):
        return value.get(key, UNDEFINED)
    if isinstance(value, list):
        if key == "length":
            return len(value)
        if key.isdigit() and key.isascii():
            index = int(key)
            return value[index] if index < len(value) else UNDEFINED
        return UNDEFINED
    if isinstance(value, str) and key == "length":
        return len(value)
    return UNDEFINED


def print_escaped(value: Any, escape: Callable[[str], str]) -> str:
    """What ``{{value}}`` prints: a SafeString as it is, anything else escaped."""
    if type(value) is str:
        return escape(value)
    if isinstance(value, SafeString):
        return js_string(value)
    return escape(js_string(value))


def js_number(value: float) -> str:
    """A number as JavaScript's String(n) prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:  # Python 1e-07 -> JavaScript 1e-7, 1e+21 stays
        mantissa, exponent = text.split("e")
        sign = exponent[0] if exponent[0] in "+-" else "+"
        digits = exponent.lstrip("+-").lstrip("0") or "0"
        text = f"{mantissa}e{sign}{digits}"
    return text


def js_string(value: Any) -> str:
    """``value`` as JavaScript prints it into a template (null/undefined: empty)."""
    if isinstance(value, str):
        return value
    if value is None or value is UNDEFINED:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, list):
        return ",".join("" if v is None or v is UNDEFINED else js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return ""  # anything else is not template data


def is_falsy(value: Any) -> bool:
    """JavaScript falsiness (0, "", null, undefined, false, NaN)."""
    if value is None or value is UNDEFINED or value is False:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == 0 or (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value == ""
    return False


def is_empty(value: Any) -> bool:
    """Handlebars' isEmpty: falsy but not 0, or an empty array."""
    if isinstance(value, list):
        return len(value) == 0
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return False
    return is_falsy(value)


_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}
_HTML_RE = re.compile(r"[&<>\"'`=]")


def escape_html(text: str) -> str:
    """handlebars.js escapeExpression."""
    if not _HTML_RE.search(text):
        return text
    return _HTML_RE.sub(lambda m: _HTML[m.group()], text)


_JSON_RE = re.compile(r'["\\\x00-\x1f\ud800-\udfff]')
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _escape_surrogates(text: str) -> str:
    """Lone surrogates (no UTF-8 for them) as JSON escapes: the text then always encodes."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

# Which text an escape would change: a search that finds nothing means the text
# prints as it is, so callers can check many values in one pass (see runtime).
NEEDS_HTML_ESCAPE = _HTML_RE.search


def needs_json_escape(text: str) -> bool:
    """Whether escape_json would change ``text``: _JSON_RE.search, faster on the usual text.

    Quote and backslash are found by memchr; every control character is
    unprintable, so printable text without them needs nothing.
    """
    if '"' in text or "\\" in text:
        return True
    return not text.isprintable() and _JSON_RE.search(text) is not None


def escape_json(text: str) -> str:
    """Text safe inside a JSON string: quote, backslash and control characters escaped.

    The json module's own string encoder (C) escapes exactly those characters
    (``\\n``, ``\\u0001``...) and leaves everything else, non-ASCII too, as it is.
    """
    if not needs_json_escape(text):
        return text
    escaped = _encode_json_string(text)[1:-1]
    return escaped if escaped.isascii() or not _SURROGATE.search(escaped) else _escape_surrogates(escaped)


def escape_json_unchecked(text: str) -> str:
    """escape_json(text) without its first check, for callers that made it (and found text to escape)."""
    escaped = _encode_json_string(text)[1:-1]
    return escaped if escaped.isascii() or not _SURROGATE.search(escaped) else _escape_surrogates(escaped)


# The escapes a render may name (Template.render's ``escape``).
ESCAPES: dict[str, Callable[[str], str]] = {"html": escape_html, "json": escape_json}

# One encoder, built once: json.dumps with these arguments builds a new one per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_INFINITIES = (math.inf, -math.inf)


def json_literal(value: Any) -> str:
    """``value`` as a compact JSON literal (undefined as null, 100.0 as 100)."""
    kind = type(value)
    # Scalars are most of what rows hold: print them as _plain + the encoder would.
    if kind is str:
        text = _encode_json_string(value)
        return text if text.isascii() or not _SURROGATE.search(text) else _escape_surrogates(text)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None or value is UNDEFINED:
        return "null"
    if kind is float:
        if value.is_integer():  # not for NaN and infinities
            return str(int(value)) if abs(value) < 1e21 else repr(value)
        return "null" if math.isnan(value) or value in _INFINITIES else repr(value)
    if kind is dict or kind is list:
        text = _compact_literal(value)
    else:
        text = _COMPACT_JSON.encode(_plain(value))
    return text if text.isascii() or not _SURROGATE.search(text) else _escape_surrogates(text)


# A double's JSON text, for the doubles printed so far (finite ones: NaN is never found
# again). Rows repeat the same scores and hours; printing a double takes a few calls and,
# with a fraction, float.__repr__'s shortest round trip. Bounded: emptied when full, so a
# stream of ever new doubles costs one lookup more. 0.0 and -0.0 share an entry: both print 0.
FLOAT_TEXTS: dict[float, str] = {}
MAX_FLOAT_TEXTS = 4096


def float_json(value: float) -> str:
    """json_literal(value) of a double, kept in FLOAT_TEXTS."""
    text = json_literal(value)
    if value - value == 0:
        if len(FLOAT_TEXTS) >= MAX_FLOAT_TEXTS:
            FLOAT_TEXTS.clear()
        FLOAT_TEXTS[value] = text
    return text


def _member(value: Any) -> str:
    """An array item or object value, as json_literal prints it (before the surrogate check)."""
    kind = type(value)
    if kind is str:
        return _encode_json_string(value)
    if kind is int:
        return str(value)
    if kind is dict or kind is list:
        return _compact_literal(value)
    if kind is float and value - value == 0 and not value.is_integer():  # finite, with a fraction
        return repr(value)
    return json_literal(value)


# '"key":' for the object keys printed so far: rows print objects of the same few keys
# again and again. Bounded in count and key length (keys come from events).
_KEY_TEXTS: dict[str, str] = {}
MAX_KEY_TEXTS = 4096
MAX_CACHED_KEY = 64


def _key_text(key: Any) -> str:
    text = _encode_json_string(key if type(key) is str else str(key)) + ":"
    if type(key) is str and len(key) <= MAX_CACHED_KEY and len(_KEY_TEXTS) < MAX_KEY_TEXTS:
        _KEY_TEXTS[key] = text
    return text


def _compact_literal(value: dict[Any, Any] | list[Any], whole: bool = False) -> str:
    """An object or array as compact JSON, built directly: a row's small objects print faster so than
    through _plain and the encoder. Scalars are printed in the loop (a call per member costs more
    than the printing), keys' texts come from _KEY_TEXTS. ``whole``: the literal a caller prints
    (json_literal's surrogate check made here, not on each member)."""
    parts: list[str] = []
    append = parts.append
    if type(value) is list:
        if not value:
            return "[]"
        for item in value:
            kind = type(item)
            if kind is str:
                append(_encode_json_string(item))
            elif kind is int:
                append(str(item))
            elif kind is float:
                append(FLOAT_TEXTS.get(item) or float_json(item))
            else:
                append(_member(item))
            append(",")
        parts[-1] = "]"
        text = "[" + "".join(parts)
        return text if not whole or text.isascii() or not _SURROGATE.search(text) else _escape_surrogates(text)
    if not value:
        return "{}"
    key_text = _KEY_TEXTS.get  # holds str keys only: no other key is found there
    for key, item in value.items():
        append(key_text(key) or _key_text(key))
        kind = type(item)
        if kind is str:
            append(_encode_json_string(item))
        elif kind is int:
            append(str(item))
        elif kind is float:
            append(FLOAT_TEXTS.get(item) or float_json(item))
        else:
            append(_member(item))
        append(",")
    parts[-1] = "}"
    text = "{" + "".join(parts)
    return text if not whole or text.isascii() or not _SURROGATE.search(text) else _escape_surrogates(text)


def _plain(value: Any) -> Any:
    if value is UNDEFINED:
        return None
    if isinstance(value, float) and not math.isnan(value) and not math.isinf(value) and value == int(value) and abs(value) < 1e21:
        return int(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return None
